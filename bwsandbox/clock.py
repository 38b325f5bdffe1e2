"""Injected time (GUIDE convention 3): tests and `clock advance` never sleep.

The sandbox clock is wall-clock time plus a persisted offset in days, so a
user can move "today" forward to see future deactivations take effect
(docs/production.md §3 `deactivation_date`).

The offset's range is one rule, here: at most `MAX_OFFSET_DAYS` either way
of the real date, checked by `check_offset` for every setter (CLI, API,
`advance`). A century either way is more than any deactivation date needs,
and keeps "today" far from the calendar's ends (years 1 and 9999), which a
date near them would cross at some midnight, failing every reader then.
A stored offset outside the range (an older version's store, a hand edit)
is read as 0, the real date, with a `warning`: reading never fails.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field

from bwsandbox.errors import UsageError

MAX_OFFSET_DAYS = 36500


class ClockRangeError(UsageError):
    """A date or a move the sandbox clock may not take."""


@dataclass(slots=True)
class Clock:
    """Wall clock shifted by `offset_days`; `fixed` pins it for tests.
    `warning` says why a stored offset was ignored (see `load`)."""

    offset_days: int = 0
    fixed: dt.datetime | None = field(default=None)
    warning: str | None = None

    def wall(self) -> dt.datetime:
        """Real UTC time, without the offset (what the audit log stamps)."""
        return self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        base = self.wall()
        return base + dt.timedelta(days=self.offset_days) if self.offset_days else base

    def today(self) -> dt.date:
        return self.now().date()

    def iso(self) -> str:
        return self.now().isoformat(timespec="seconds")


def allowed_dates(base: Clock | None = None) -> tuple[dt.date, dt.date]:
    """The first and last date the sandbox's today may be, from the real date."""
    real = (base or Clock()).wall().date()
    span = dt.timedelta(days=MAX_OFFSET_DAYS)
    return real - span, real + span


def check_offset(days: int, what: str, base: Clock | None = None) -> int:
    """`days` if the clock may take that offset; else ClockRangeError saying
    `what` was asked and which dates are allowed."""
    if abs(days) > MAX_OFFSET_DAYS:
        first, last = allowed_dates(base)
        raise ClockRangeError(
            f"{what} is {days:+d} days from the real date: the sandbox clock goes at most "
            f"{MAX_OFFSET_DAYS} days either way, {first.isoformat()} to {last.isoformat()}"
        )
    return days


def offset_for(today: str, base: Clock | None = None) -> int:
    """The offset that makes the sandbox's today `today` (YYYY-MM-DD), checked."""
    try:
        target = dt.date.fromisoformat(today)
    except ValueError:
        raise ClockRangeError(f"today must be a date as YYYY-MM-DD, not {today!r}") from None
    real = (base or Clock()).wall().date()
    return check_offset((target - real).days, f"today {target.isoformat()}", base)


def advanced(current: Clock, days: int) -> int:
    """The offset that moves `current`'s today by `days`, checked."""
    what = f"today {current.today().isoformat()} moved by {days:+d} days"
    return check_offset(current.offset_days + days, what, current)


# The offset lives in the store (meta table), so `bwsandbox clock advance`
# in one process moves "today" for a sandbox already running in another.
OFFSET_KEY = "clock_offset_days"


def load(conn: sqlite3.Connection, base: Clock | None = None) -> Clock:
    """The sandbox clock: `base` (wall clock by default) plus the persisted offset.

    Never raises for what is stored: an offset that is not a whole number
    within the range is read as 0 (the real date), and `warning` says so."""
    from bwsandbox.store import get_meta

    fixed = base.fixed if base is not None else None
    raw = get_meta(conn, OFFSET_KEY, "0") or "0"
    try:
        return Clock(offset_days=check_offset(int(raw), "the stored clock", base), fixed=fixed)
    except ClockRangeError as exc:
        why = str(exc)
    except ValueError:
        why = f"the stored clock offset {raw[:40]!r} is not a whole number of days"
    warning = f"{why}; the clock reads the real date until `bwsandbox clock reset` (or `clock set`)"
    return Clock(offset_days=0, fixed=fixed, warning=warning)


def set_offset(conn: sqlite3.Connection, days: int) -> None:
    """Store `days` (checked: a setter's own check said what was asked)."""
    from bwsandbox.store import set_meta

    set_meta(conn, OFFSET_KEY, str(check_offset(days, "the offset")))
