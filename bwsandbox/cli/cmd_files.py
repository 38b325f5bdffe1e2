"""`bwsandbox files`: every upload seen, oldest first."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import shown_state
from bwsandbox.ingest import files
from bwsandbox.ingest.queue import MARKER_DETAIL, marker_note

FIELDS = ("tenant", "name", "bytes", "sha256", "received_at", "state", "verdict")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("files", help="list every upload seen and its state")
    add_data_dir(p)
    p.add_argument("--tenant", metavar="NAME")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(handler=_run)


def list_files(conn: Any, tenant: str | None = None) -> list[dict[str, Any]]:
    """`[{"tenant","name","bytes","sha256","received_at","state","verdict"}]` (+ "id", "detail")."""
    out = []
    for row in files.listing(conn, tenant):
        record: dict[str, Any] = {"id": row.id, **{k: getattr(row, k) for k in FIELDS}}
        record["state"] = shown_state(row.state)
        record["detail"] = row.detail
        if row.detail == MARKER_DETAIL:  # an engage .done marker: is its data file there?
            record["detail"] = marker_note(conn, row.tenant, row.name)
        if row.counts_json:
            record["counts"] = json.loads(row.counts_json)
        out.append(record)
    return out


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        if args.tenant is not None:
            tenants_mod.require(conn, args.tenant)
        rows = list_files(conn, args.tenant)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return 0
    from bwsandbox.cli import layout, render_server, safe

    out = layout.stdout()
    if not rows:
        out.print("no uploads yet" + (f" for tenant {safe.plain(args.tenant)}" if args.tenant else ""),
                  markup=False)
        return 0
    # Most useful first; at a narrow width the last ones go (`layout.print_records`).
    several = len({r["tenant"] for r in rows}) > 1
    columns = ["#", *(["tenant"] if several else []), "name", "state", "verdict", "applied", "received",
               "bytes", "detail"]
    table = []
    for r in rows:  # once done, what was applied (files.counts_json)
        counts = r.get("counts") or {}
        applied = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
        table.append([r["id"], *([r["tenant"]] if several else []), r["name"], r["state"], r["verdict"],
                      applied, render_server.when(r["received_at"]), f"{r['bytes']:,}", r["detail"]])
    render_server.print_table(out, columns, table, drop=("detail", "bytes", "received", "applied"),
                              head=("#", "name"))
    if not several:
        out.print(f"tenant {safe.plain(rows[0]['tenant'])}: {len(rows)} upload(s)", style="dim", markup=False)
    return 0
