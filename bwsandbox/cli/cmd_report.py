"""`bwsandbox report [--tenant T] NAME|ID [--format text|json]`: the
report of one processed file (the latest upload with that name, or its id:
`7` or `#7`). `--tenant` is needed only when the sandbox has several tenants
and NAME does not say which."""

from __future__ import annotations

import argparse
import difflib
import json
from typing import Any

from bwsandbox import store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import shown_state
from bwsandbox.errors import UsageError
from bwsandbox.ingest import files, reports
from bwsandbox.ingest.files import FileRecord
from bwsandbox.ingest.queue import MARKER_DETAIL
from bwsandbox.textsafe import one_line


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="show what happened to one processed file")
    add_data_dir(p)
    p.add_argument("--tenant", metavar="T", help="the tenant (needed only when there are several)")
    p.add_argument("name", metavar="NAME", help="the uploaded file name (latest upload), or its id (7 or #7)")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_run)


def _by_id(text: str) -> int | None:
    """The id NAME spells, if it spells one the store could hold (a longer
    number is no file's id: not found, as any other)."""
    bare = text[1:] if text.startswith("#") else text
    if not (bare.isascii() and bare.isdigit()):
        return None
    file_id = int(bare)
    return file_id if store.fits(file_id) else None


def find(conn: Any, tenant: str | None, name: str) -> FileRecord | None:
    """The file NAME (its latest upload) or with id NAME (`7`, `#7`), of
    `tenant` or of any tenant; a name wins over an id that is all digits."""
    if not name.startswith("#"):
        row = files.latest(conn, name, tenant=tenant)
        if row is not None:
            return row
    file_id = _by_id(name)
    if file_id is None:
        return None
    return files.get(conn, file_id, tenant=tenant)


def _not_found(conn: Any, tenant: str | None, name: str) -> UsageError:
    close = difflib.get_close_matches(name, files.names(conn, tenant), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    whose = f"tenant {one_line(tenant)}" if tenant is not None else "this sandbox"
    return UsageError(
        f"{whose} has no file named {name!r} and none with that id{hint} (see `bwsandbox files`)"
    )


def _locate(conn: Any, tenant_name: str | None, name: str) -> FileRecord:
    if tenant_name is not None:
        tenant = tenants_mod.require(conn, tenant_name)
        row = find(conn, tenant.name, name)
        if row is None:
            raise _not_found(conn, tenant.name, name)
        return row
    row = find(conn, None, name)
    if row is None:
        raise _not_found(conn, None, name)
    if _by_id(name) is None or row.name == name:  # a name: is it one tenant's only?
        owners = files.tenants_named(conn, name)
        if len(owners) > 1:
            shown = ", ".join(one_line(owner) for owner in sorted(owners))
            raise UsageError(f"{name!r} was uploaded by several tenants ({shown}): "
                             "say which with --tenant NAME, or give the file's id (see `bwsandbox files`)")
    return row


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        row = _locate(conn, args.tenant, args.name)
        tenant = tenants_mod.get(conn, row.tenant)
    if row.report_json is None and row.detail == MARKER_DETAIL:
        raise UsageError(
            f"{row.name} is an engage .done marker: it releases its data file and has no report"
        )
    if row.report_json is None:
        state = shown_state(row.state)
        detail = f" ({row.detail})" if row.detail else ""
        raise UsageError(f"file #{row.id} {row.name} is {state}{detail}: no report yet")
    report = json.loads(row.report_json)
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        from bwsandbox.cli import render_server

        contact = tenant.contact if tenant is not None else ""
        render_server.print_report(report, tenant=row.tenant, contact=contact,
                                   reports_folder=settings.reports_folder)
    # Like `bwsandbox validate`: 1 when the file had any error (GUIDE convention 5).
    return 1 if reports.has_errors(report) or report.get("verdict") == "rejected" else 0
