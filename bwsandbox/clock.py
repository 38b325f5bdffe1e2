"""Injected time (GUIDE convention 3): tests and `clock advance` never sleep.

The sandbox clock is wall-clock time plus a persisted offset in days, so a
user can move "today" forward to see future deactivations take effect
(SPEC §3 `deactivation_date`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(slots=True)
class Clock:
    """Wall clock shifted by `offset_days`; `fixed` pins it for tests."""

    offset_days: int = 0
    fixed: dt.datetime | None = field(default=None)

    def now(self) -> dt.datetime:
        base = self.fixed if self.fixed is not None else dt.datetime.now(dt.UTC)
        return base + dt.timedelta(days=self.offset_days)

    def today(self) -> dt.date:
        return self.now().date()

    def iso(self) -> str:
        return self.now().isoformat(timespec="seconds")
