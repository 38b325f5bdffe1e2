"""`bwsandbox emails [--tenant T] [--kind K] [ID] [--format table|json]`
(docs/production.md §5, §8): the emails production would send, as sent over SMTP or
written to DATA/outbox (.eml): the Technical Contact's error emails and the
notices to a deactivated user's manager. With ID, that one email in full.
`--format json` gives every email with its plain-text `body` and its
`attachment_files` (name, content type, size)."""

from __future__ import annotations

import argparse
import json

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.errors import UsageError
from bwsandbox.ingest import notify
from bwsandbox.textsafe import one_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("emails", help="list the emails sent: Technical Contact errors, manager notices")
    add_data_dir(p)
    p.add_argument("--tenant", metavar="T", help="the tenant (needed only when there are several)")
    p.add_argument("--kind", choices=notify.KINDS, help="only emails of this kind")
    p.add_argument("id", nargs="?", metavar="ID", help="show this email in full (its number, 3 or #3)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require_or_only(conn, args.tenant)
        rows = notify.listing(conn, tenant.name, bodies=True, kind=args.kind)
    if args.id is not None:
        wanted = args.id.removeprefix("#")
        match = [r for r in rows if str(r["id"]) == wanted]
        if not match:
            raise UsageError(
                f"tenant {one_line(tenant.name)} has no email #{one_line(wanted)} (see `bwsandbox emails`)"
            )
        rows = match
    if args.format == "json":
        print(json.dumps(rows[0] if args.id is not None else rows, indent=2))
        return 0
    from bwsandbox.cli import layout, render_server, safe

    if args.id is not None:
        render_server.print_email(rows[0])
        return 0
    out = layout.stdout()
    if not rows:
        out.print(f"no emails for tenant {safe.plain(tenant.name)}", markup=False)
        return 0
    columns = ("#", "kind", "to", "subject", "state", "attachments", "created", "detail")
    render_server.print_table(
        out, columns,
        [[r["id"], r["kind"], r["to"], r["subject"], r["state"], ", ".join(r["attachments"]),  # type: ignore[arg-type]
          render_server.when(r["created_at"]), r["detail"]] for r in rows],
        drop=("detail", "created", "attachments", "kind"), head=("#", "subject"),
    )  # fmt: skip
    out.print("`bwsandbox emails ID` shows one in full (body, attachments)", style="dim", markup=False)
    return 0
