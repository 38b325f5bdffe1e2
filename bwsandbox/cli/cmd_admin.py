"""`bwsandbox admin set-user|upload [--tenant T] ...`: the Admin
module's manual changes, which a later SFTP file overrides (docs/production.md §5).

    bwsandbox admin set-user [--tenant T] EMAIL field=value...
    bwsandbox admin upload [--tenant T] FILE    errors shown now, no email

`--tenant` is needed only when the sandbox has several tenants.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli import layout
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_findings
from bwsandbox.ingest import admin
from bwsandbox.ingest.process import Processed
from bwsandbox.ingest.reports import applied_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("admin", help="simulate manual edits in the Betterworks Admin module")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    su = actions.add_parser("set-user", help="update one user by hand (field=value ...)")
    su.add_argument("email", metavar="EMAIL")
    su.add_argument("fields", nargs="+", metavar="FIELD=VALUE")
    up = actions.add_parser("upload", help="a manual CSV upload: errors shown now, no email")
    up.add_argument("file", type=Path, metavar="FILE")
    for q in (su, up):
        add_data_dir(q)
        q.add_argument("--tenant", metavar="T", help="the tenant (needed only when there are several)")
        q.add_argument("--format", choices=["text", "json"], default="text")
        q.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require_or_only(conn, args.tenant).name
        if args.action == "set-user":
            fields = admin.parse_assignments(args.fields)
            done = admin.set_user(conn, settings, tenant, args.email, fields)
        else:
            done = admin.upload(conn, settings, tenant, args.file)
    _show(done, args.format)
    return 1 if done.has_errors else 0


def _show(done: Processed, fmt: str) -> None:
    report = done.report
    if fmt == "json":
        print(json.dumps(report, indent=2))
        return
    console = layout.stdout()
    console.print(f"{report['verdict']}: " + (applied_text(report) or "nothing applied"), markup=False)
    print_findings(console, report)
