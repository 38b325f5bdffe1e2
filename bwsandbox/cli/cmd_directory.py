"""`bwsandbox directory [--tenant T] [--format table|json|csv] [--departments]
[--history [EMAIL]]`: the simulated Betterworks user directory
(users, or departments), as the last processed file left it. `--tenant` is
needed only when the sandbox has several tenants."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Iterable, Mapping
from typing import TextIO

from bwsandbox import clock as clock_mod
from bwsandbox import store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli import export, layout, render_server
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_table
from bwsandbox.ingest import directory, notify
from bwsandbox.validator.formulas import safe_cell, safe_row

# The contract's columns first; other fields (location, phone, custom keys...) follow.
COLUMNS = (
    "email", "first_name", "last_name", "employee_id", "manager_email", "department_name",
    "title", "status", "deactivation_date",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("directory", help="show a tenant's user directory")
    add_data_dir(p)
    p.add_argument("--tenant", metavar="T", help="the tenant (needed only when there are several)")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--history", metavar="EMAIL", nargs="?", const="",
                   help="show the change history instead (of one user, or of all)")
    p.add_argument("--departments", action="store_true",
                   help="list the departments (name, parent, active) instead of the users")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require_or_only(conn, args.tenant)
        clock = clock_mod.load(conn)
        # Deactivation dates the clock has reached take effect before we show anything.
        with store.transaction(conn):
            deactivated = directory.sweep(conn, tenant.name, clock.today().isoformat(), clock.iso())
        if deactivated:  # their managers' notifications (docs/production.md §5) go now
            notify.deliver_pending(conn, smtp=settings.smtp, outbox=settings.data_dir / "outbox")
        if args.history is not None:
            return _history(list(directory.history(conn, tenant.name, args.history or None)), args.format)
        if args.departments:
            return _departments(directory.departments_listing(conn, tenant.name), args.format)
        if args.format in ("json", "csv"):
            # Streamed: a million users are written as they are read, a batch
            # at a time, within one read of the store (the columns first).
            with directory.read_snapshot(conn):
                columns = _columns(directory.user_field_names(conn, tenant.name))
                stream = ({c: u.get(c, "") for c in columns} for u in directory.iter_users(conn, tenant.name))
                if args.format == "json":
                    _write_json_list(stream, sys.stdout)
                else:
                    writer = csv.DictWriter(export.csv_stdout(), fieldnames=columns, lineterminator="\n")
                    writer.writeheader()
                    writer.writerows(_safe(r) for r in stream)
            return 0
        users = directory.users_listing(conn, tenant.name)
    extra = sorted({k for u in users for k in u} - set(COLUMNS))
    rows = [{c: u.get(c, "") for c in (*COLUMNS, *extra)} for u in users]
    # On a terminal: the most useful first, the rest left out as the width
    # asks (`layout.print_records`); every field is in --format csv/json.
    out = layout.stdout()
    shown = ("email", "name", "status", "manager", "department", "title", "employee id", "deactivation")
    table = [[r["email"], " ".join(p for p in (r["first_name"], r["last_name"]) if p), r["status"],
              r["manager_email"], r["department_name"], r["title"], r["employee_id"],
              r["deactivation_date"]] for r in rows]
    print_table(out, shown, table, drop=("deactivation", "employee id", "title", "department", "manager"),
                head=("email", "name", "status"))
    more = f"; {len(extra)} more field(s) in --format csv/json: {', '.join(extra)}" if extra else ""
    active = sum(1 for r in rows if r["status"] == "active")
    out.print(f"{len(rows)} user(s), {active} active{more}", markup=False, style="dim")
    return 0


def _columns(fields: set[str]) -> list[str]:
    return [*COLUMNS, *sorted(fields - set(COLUMNS))]


def _write_json_list(rows: Iterable[Mapping[str, str]], out: TextIO) -> None:
    """The bytes of `print(json.dumps(list(rows), indent=2))`, written one row
    at a time instead of holding the list (a JSON string never holds a raw
    newline, so indenting each line is indenting the item)."""
    out.write("[")
    sep = "\n  "
    for row in rows:
        out.write(sep + json.dumps(row, indent=2).replace("\n", "\n  "))
        sep = ",\n  "
    out.write("]\n" if sep == "\n  " else "\n]\n")


def _departments(rows: list[dict[str, object]], fmt: str) -> int:
    columns = ("name", "parent", "active")
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(export.csv_stdout(), fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_safe({**r, "active": "true" if r["active"] else "false"}) for r in rows)
    else:
        table = [[r["name"], r["parent"], "yes" if r["active"] else "no"] for r in rows]
        out = layout.stdout()
        print_table(out, columns, table, keep=columns)  # the same columns, parents or not
        out.print(f"{len(rows)} department(s), {sum(1 for r in rows if r['active'])} active", markup=False)
    return 0


def _history(entries: list[dict[str, object]], fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(entries, indent=2))
        return 0
    if fmt == "csv":  # one line per changed field: spreadsheet-friendly
        writer = csv.writer(export.csv_stdout(), lineterminator="\n")
        writer.writerow(["at", "subject", "action", "field", "old", "new", "source", "row"])
        for e in entries:
            changes = e["changes"] if isinstance(e["changes"], dict) else {}
            for name, (old, new) in changes.items():
                writer.writerow(safe_row(
                    str(x) if x is not None else "" for x in
                    (e["at"], e["subject"], e["action"], name, old, new, e["source"], e["row"])
                ))
        return 0
    render_server.print_history(entries)
    return 0


def _safe(row: Mapping[str, object]) -> dict[str, object]:
    """A spreadsheet never runs a cell of ours: formula-leading text gets
    OWASP's leading ' (validator.formulas), as in the error file."""
    return {k: safe_cell(v) if isinstance(v, str) else v for k, v in row.items()}
