"""Which queued file goes next (docs/security.md "Fairness").

Each tenant's files go in arrival order, one at a time: only a tenant's
oldest queued file may go, and only when none of its files is being
processed (by the other lane). Between tenants the worker takes turns: of
the tenants with a due file, the one served least recently goes first, so a
tenant that sent a hundred files does not make the next tenant wait for all
of them. The fast lane takes only files up to `fast_lane_bytes`, so one
tenant's big file never holds up another tenant's small one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence

from bwsandbox.ingest.files import FileRecord


class Turns:
    """When each tenant was last served; kept in memory by the worker."""

    def __init__(self) -> None:
        self._count = itertools.count()
        self._served: dict[str, int] = {}  # tenant -> turn it was last served (round-robin)

    def served(self, tenant: str) -> None:
        """A file of `tenant` was just claimed: the tenant goes to the back."""
        self._served[tenant] = next(self._count)

    def pick(
        self, queued: Sequence[FileRecord], busy: set[str], now: dt.datetime, *,
        max_bytes: int | None = None, force: bool = False,
    ) -> tuple[int | None, float | None]:
        """(file id to process now, or None; seconds until the next one is due).

        `queued`: the queued files in arrival order; `busy`: the tenants with
        a file being processed. `max_bytes`: only files up to that size (the
        fast lane); `force`: due times are ignored (tests)."""
        heads: set[str] = set()
        ready: list[tuple[int, int, str]] = []
        wait: float | None = None
        for row in queued:
            tenant = row.tenant
            if tenant in heads:
                continue  # arrival order per tenant: only its oldest file may go
            heads.add(tenant)
            if tenant in busy or (max_bytes is not None and row.bytes > max_bytes):
                continue
            due = dt.datetime.fromisoformat(row.due_at) if row.due_at and not force else now
            if due <= now:
                ready.append((self._served.get(tenant, -1), row.id, tenant))
                continue
            seconds = (due - now).total_seconds()
            wait = seconds if wait is None else min(wait, seconds)
        if not ready:
            return None, wait
        return min(ready)[1], 0.0
