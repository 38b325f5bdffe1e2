"""`bwsandbox directory --tenant T [--format table|json|csv] [--departments]
[--history [EMAIL]]` (issue #4): the simulated Betterworks user directory
(users, or departments), as the last processed file left it."""

from __future__ import annotations

import argparse
import csv
import json
import sys

from rich.console import Console

from bwsandbox import clock as clock_mod
from bwsandbox import store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.cli.render_server import print_table
from bwsandbox.ingest import directory, notify

# The contract's columns first; other fields (location, phone, custom keys...) follow.
COLUMNS = (
    "email", "first_name", "last_name", "employee_id", "manager_email", "department_name",
    "title", "status", "deactivation_date",
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("directory", help="show a tenant's user directory")
    add_data_dir(p)
    p.add_argument("--tenant", required=True, metavar="T")
    p.add_argument("--format", choices=["table", "json", "csv"], default="table")
    p.add_argument("--history", metavar="EMAIL", nargs="?", const="",
                   help="show the change history instead (of one user, or of all)")
    p.add_argument("--departments", action="store_true",
                   help="list the departments (name, parent, active) instead of the users")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        tenant = tenants_mod.require(conn, args.tenant)
        clock = clock_mod.load(conn)
        # Deactivation dates the clock has reached take effect before we show anything.
        with store.transaction(conn):
            deactivated = directory.sweep(conn, tenant.name, clock.today().isoformat(), clock.iso())
        if deactivated:  # their managers' notifications (SPEC §7) go now
            notify.deliver_pending(conn, smtp=settings.smtp, outbox=settings.data_dir / "outbox")
        if args.history is not None:
            return _history(list(directory.history(conn, tenant.name, args.history or None)), args.format)
        if args.departments:
            return _departments(directory.departments_listing(conn, tenant.name), args.format)
        users = directory.users_listing(conn, tenant.name)
    extra = sorted({k for u in users for k in u} - set(COLUMNS))
    columns = [*COLUMNS, *extra]
    rows = [{c: u.get(c, "") for c in columns} for u in users]
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    else:
        print_table(Console(), COLUMNS, [[r[c] for c in COLUMNS] for r in rows])
        print(f"{len(rows)} user(s), {sum(1 for r in rows if r['status'] == 'active')} active")
    return 0


def _departments(rows: list[dict[str, object]], fmt: str) -> int:
    columns = ("name", "parent", "active")
    if fmt == "json":
        print(json.dumps(rows, indent=2))
    elif fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({**r, "active": "true" if r["active"] else "false"} for r in rows)
    else:
        table = [[r["name"], r["parent"], "yes" if r["active"] else "no"] for r in rows]
        print_table(Console(), columns, table)
        print(f"{len(rows)} department(s), {sum(1 for r in rows if r['active'])} active")
    return 0


def _history(entries: list[dict[str, object]], fmt: str) -> int:
    if fmt == "json":
        print(json.dumps(entries, indent=2))
        return 0
    columns = ("at", "subject", "action", "changes", "source", "row")
    print_table(
        Console(), columns,
        [[e["at"], e["subject"], e["action"], json.dumps(e["changes"]), e["source"], e["row"]]
         for e in entries],
    )
    return 0
