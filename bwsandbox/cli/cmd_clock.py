"""`bwsandbox clock advance DAYS | set --today YYYY-MM-DD | show | reset`.

The sandbox clock is the wall clock plus a persisted offset, so future
deactivation dates (docs/production.md §3) can be seen taking effect without waiting.
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
from bwsandbox.ingest import directory, notify


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("clock", help="show or move the sandbox's 'today'")
    # --data-dir is accepted before the action too (`clock --data-dir D show`);
    # without it argparse took D for the action ("invalid choice: 'D'").
    p.add_argument("--data-dir", dest="clock_data_dir", metavar="DIR", default=None, help=argparse.SUPPRESS)
    p.set_defaults(handler=_no_action)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    adv = actions.add_parser("advance", help="move today forward (or back, if negative) by DAYS")
    adv.add_argument("days", type=_days, metavar="DAYS")
    st = actions.add_parser("set", help="pin today to a date")
    st.add_argument("--today", required=True, metavar="YYYY-MM-DD")
    show = actions.add_parser("show", help="print the sandbox's today")
    reset = actions.add_parser("reset", help="back to the real date")
    for q in (adv, st, show, reset):
        add_data_dir(q)
        q.set_defaults(handler=_run)


MAX_DAYS = 36500  # a century either way is more than any deactivation date needs


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None
    if abs(days) > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"at most {MAX_DAYS} days either way, not {days}")
    return days


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("clock: give an action: advance DAYS, set --today YYYY-MM-DD, show or reset")


def _run(args: argparse.Namespace) -> int:
    if args.data_dir is None:
        args.data_dir = args.clock_data_dir
    # Setting the clock before the first `serve` is fine; showing it needs a sandbox.
    with open_store(args, create=args.action != "show") as (settings, conn):
        offset = clock_mod.load(conn).offset_days
        if args.action == "advance":
            offset += args.days
            try:
                clock_mod.Clock().today() + dt.timedelta(days=offset)
            except OverflowError:
                raise UsageError(f"advancing {args.days} days leaves the calendar") from None
        elif args.action == "set":
            try:
                target = dt.date.fromisoformat(args.today)
            except ValueError as exc:
                raise UsageError(f"--today must be YYYY-MM-DD, not {args.today!r}") from exc
            offset = (target - clock_mod.Clock().today()).days
        elif args.action == "reset":
            offset = 0
        deactivated = 0
        if args.action == "show":  # read-only: no write lock behind the worker
            clock = clock_mod.load(conn)
        else:
            with store.transaction(conn):
                clock_mod.set_offset(conn, offset)
                clock = clock_mod.load(conn)
                for tenant in tenants_mod.all_tenants(conn):
                    deactivated += directory.sweep(conn, tenant.name, clock.today().isoformat(), clock.iso())
            if deactivated:  # their managers' notifications (docs/production.md §5) go now
                notify.deliver_pending(conn, smtp=settings.smtp, outbox=settings.data_dir / "outbox")
    print(f"today is {clock.today().isoformat()} (offset {offset:+d} days)")
    if deactivated:
        print(f"{deactivated} user(s) reached their deactivation date and are now deactivated")
    return 0
