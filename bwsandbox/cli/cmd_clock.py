"""`bwsandbox clock advance DAYS | set --today YYYY-MM-DD | show | reset`.

The sandbox clock is the wall clock plus a persisted offset, so future
deactivation dates (docs/production.md §3) can be seen taking effect without waiting.
Moving the clock makes every reached deactivation effective at once.
"""

from __future__ import annotations

import argparse
import sys

from bwsandbox import clock as clock_mod
from bwsandbox import control
from bwsandbox.cli.main import add_data_dir, open_store
from bwsandbox.errors import UsageError


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


def _days(text: str) -> int:
    """A whole number; how far the clock may go is `clock.check_offset`'s rule."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of days: {text!r}") from None


def _no_action(args: argparse.Namespace) -> int:
    raise UsageError("clock: give an action: advance DAYS, set --today YYYY-MM-DD, show or reset")


def _run(args: argparse.Namespace) -> int:
    if args.data_dir is None:
        args.data_dir = args.clock_data_dir
    # Setting the clock before the first `serve` is fine; showing it needs a sandbox.
    with open_store(args, create=args.action != "show") as (settings, conn):
        stored = clock_mod.load(conn)
        if stored.warning and args.action in ("show", "advance"):  # set and reset replace it
            print(f"bwsandbox: warning: {stored.warning}", file=sys.stderr)
        if args.action == "show":  # read-only: no write lock behind the worker
            state = control.clock_state(conn)
        else:
            if args.action == "advance":
                offset = clock_mod.advanced(stored, args.days)
            elif args.action == "set":
                offset = clock_mod.offset_for(args.today)
            else:
                offset = 0
            state = control.set_clock(conn, settings, offset)
    print(f"today is {state['today']} (offset {state['offset_days']:+d} days)")
    if state.get("deactivated"):
        print(f"{state['deactivated']} user(s) reached their deactivation date and are now deactivated")
    return 0
