"""`bwsandbox report --tenant T NAME [--format text|json]` (issue #4): the
report of one processed file (the latest upload with that name, or `#ID`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.console import Console

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_findings, print_table, shown_state
from bwsandbox.errors import UsageError
from bwsandbox.ingest import reports
from bwsandbox.ingest.queue import MARKER_DETAIL
from bwsandbox.ingest.reports import applied_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="show what happened to one processed file")
    add_data_dir(p)
    p.add_argument("--tenant", required=True, metavar="T")
    p.add_argument("name", metavar="NAME", help="the uploaded file name (latest upload), or #ID")
    p.add_argument("--format", choices=["text", "json"], default="text")
    p.set_defaults(handler=_run)


def find(conn: Any, tenant: str, name: str) -> Any:
    if name.startswith("#") and name[1:].isdigit():
        return conn.execute(
            "SELECT * FROM files WHERE tenant = ? AND id = ?", (tenant, int(name[1:]))
        ).fetchone()
    return conn.execute(
        "SELECT * FROM files WHERE tenant = ? AND name = ? ORDER BY id DESC LIMIT 1", (tenant, name)
    ).fetchone()


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require(conn, args.tenant)
        row = find(conn, tenant.name, args.name)
    if row is None:
        raise UsageError(f"tenant {tenant.name} has no file named {args.name!r} (see `bwsandbox files`)")
    if row["report_json"] is None and row["detail"] == MARKER_DETAIL:
        raise UsageError(
            f"{row['name']} is an engage .done marker: it releases its data file and has no report"
        )
    if row["report_json"] is None:
        state = shown_state(row["state"])
        detail = f" ({row['detail']})" if row["detail"] else ""
        raise UsageError(f"file #{row['id']} {row['name']} is {state}{detail}: no report yet")
    report = json.loads(row["report_json"])
    if args.format == "json":
        print(json.dumps(report, indent=2))
    else:
        _text(report)
    # Like `bwsandbox validate`: 1 when the file had any error (GUIDE convention 5).
    return 1 if reports.has_errors(report) or report.get("verdict") == "rejected" else 0


def _text(report: dict[str, Any]) -> None:
    console = Console()
    console.print(f"[bold]{report['file']}[/bold] (file #{report.get('file_id')}): {report['verdict']}")
    if report.get("repeat"):
        console.print(f"note: {report['repeat']}")
    console.print("applied: " + applied_text(report, zeros=True))
    print_findings(console, report)
    edits = report.get("overwritten_manual_edits", [])
    if edits:
        console.print("[bold]manual edits this file overwrote[/bold]")
        print_table(
            console, ("row", "email", "field", "manual value", "file value", "edited by"),
            [[e["row"], e["email"], e["field"], e["manual_value"], e["file_value"], e["edited_by"]]
             for e in edits],
        )
