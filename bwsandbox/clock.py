"""Injected time (GUIDE convention 3): tests and `clock advance` never sleep.

The sandbox clock is wall-clock time plus a persisted offset in days, so a
user can move "today" forward to see future deactivations take effect
(docs/production.md §3 `deactivation_date`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, field


@dataclass(slots=True)
class Clock:
    """Wall clock shifted by `offset_days`; `fixed` pins it for tests."""

    offset_days: int = 0
    fixed: dt.datetime | None = field(default=None)

    def now(self) -> dt.datetime:
        base = self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)
        return base + dt.timedelta(days=self.offset_days) if self.offset_days else base

    def today(self) -> dt.date:
        return self.now().date()

    def iso(self) -> str:
        return self.now().isoformat(timespec="seconds")


# The offset lives in the store (meta table), so `bwsandbox clock advance`
# in one process moves "today" for a sandbox already running in another.
OFFSET_KEY = "clock_offset_days"


def load(conn: sqlite3.Connection, base: Clock | None = None) -> Clock:
    """The sandbox clock: `base` (wall clock by default) plus the persisted offset."""
    from bwsandbox.store import get_meta

    fixed = base.fixed if base is not None else None
    return Clock(offset_days=int(get_meta(conn, OFFSET_KEY, "0") or 0), fixed=fixed)


def set_offset(conn: sqlite3.Connection, days: int) -> None:
    from bwsandbox.store import set_meta

    set_meta(conn, OFFSET_KEY, str(days))
