"""`bwsandbox clock advance DAYS | set --today YYYY-MM-DD | show | reset` (issue #4).

The sandbox clock is the wall clock plus a persisted offset, so future
deactivation dates (SPEC §3) can be seen taking effect without waiting.
Moving the clock makes every reached deactivation effective at once.
"""

from __future__ import annotations

import argparse
import datetime as dt

from bwsandbox import clock as clock_mod
from bwsandbox import store
from bwsandbox import tenants as tenants_mod
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.errors import UsageError
from bwsandbox.ingest import directory


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("clock", help="show or move the sandbox's 'today'")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    adv = actions.add_parser("advance", help="move today forward (or back, if negative) by DAYS")
    adv.add_argument("days", type=int, metavar="DAYS")
    st = actions.add_parser("set", help="pin today to a date")
    st.add_argument("--today", required=True, metavar="YYYY-MM-DD")
    show = actions.add_parser("show", help="print the sandbox's today")
    reset = actions.add_parser("reset", help="back to the real date")
    for q in (adv, st, show, reset):
        add_data_dir(q)
        q.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    with open_store(args) as (settings, conn):
        offset = clock_mod.load(conn).offset_days
        if args.action == "advance":
            offset += args.days
        elif args.action == "set":
            try:
                target = dt.date.fromisoformat(args.today)
            except ValueError as exc:
                raise UsageError(f"--today must be YYYY-MM-DD, not {args.today!r}") from exc
            offset = (target - clock_mod.Clock().today()).days
        elif args.action == "reset":
            offset = 0
        deactivated = 0
        with store.transaction(conn):
            clock_mod.set_offset(conn, offset)
            clock = clock_mod.load(conn)
            if args.action != "show":
                for tenant in tenants_mod.all_tenants(conn):
                    deactivated += directory.sweep(conn, tenant.name, clock.today().isoformat(), clock.iso())
    print(f"today is {clock.today().isoformat()} (offset {offset:+d} days)")
    if deactivated:
        print(f"{deactivated} user(s) reached their deactivation date and are now deactivated")
    return 0
