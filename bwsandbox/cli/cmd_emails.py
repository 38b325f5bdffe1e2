"""`bwsandbox emails --tenant T [--format table|json]` (issue #4): the
Technical Contact emails sent (SMTP) or written to DATA/outbox (.eml)."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_table
from bwsandbox.ingest import notify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("emails", help="list the error emails sent to a tenant's Technical Contact")
    add_data_dir(p)
    p.add_argument("--tenant", required=True, metavar="T")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require(conn, args.tenant)
        rows = notify.listing(conn, tenant.name)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    columns = ("id", "created_at", "to", "subject", "attachments", "state", "detail")
    print_table(
        Console(), columns,
        [[r["id"], r["created_at"], r["to"], r["subject"], ", ".join(r["attachments"]),  # type: ignore[arg-type]
          r["state"], r["detail"]] for r in rows],
    )
    return 0
