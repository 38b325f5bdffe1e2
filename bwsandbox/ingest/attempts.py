"""How often a file's processing was cut off or put back, and which errors
put it back (docs/security.md: no crash loops, a full disk is no
verdict).

- A crash: the server died while the file was `processing` (killed, OOM,
  power). At the next start `recover_crashed` counts it in the store
  (`file_attempts.crashes`); a file cut off `max_processing_attempts` times
  is `failed` ("processing crashed N times"), so a poison file cannot kill
  every restart. Below that it goes back to the queue, as before.
- A retryable error: the disk (or the user's quota) is full, or the store
  stayed locked past its timeout. Nothing of the file was committed (one
  transaction), so it goes back to the queue with a backoff
  (`retry_backoff_seconds`, doubling per retry up to MAX_BACKOFF), never
  `failed` for it (`PutBack`).
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable

from bwsandbox.ingest import files
from bwsandbox.ingest.files import FileState
from bwsandbox.store import retryable as retryable  # what is retryable is the store's call
from bwsandbox.store import transaction

log = logging.getLogger("bwsandbox.ingest")

MAX_BACKOFF = 300.0


def backoff(retries: int, base: float) -> float:
    """Seconds before retry number `retries` (1, 2, ...): base, 2 base, 4 base... capped."""
    return min(base * 2 ** max(retries - 1, 0), MAX_BACKOFF) if base > 0 else 0.0


def bump(conn: sqlite3.Connection, file_id: int, column: str) -> int:
    """Add one to a file's `crashes` or `retries` (in the caller's transaction); the new count."""
    assert column in ("crashes", "retries")
    conn.execute("INSERT OR IGNORE INTO file_attempts (file_id) VALUES (?)", (file_id,))
    conn.execute(f"UPDATE file_attempts SET {column} = {column} + 1 WHERE file_id = ?", (file_id,))
    row = conn.execute(f"SELECT {column} FROM file_attempts WHERE file_id = ?", (file_id,)).fetchone()
    return int(row[0])


def recover_crashed(conn: sqlite3.Connection, max_attempts: int) -> tuple[list[int], list[int]]:
    """Files left `processing` by a server that died: each counts a crash,
    then goes back to the queue or, at `max_attempts` crashes, fails.
    Returns (requeued ids, failed ids)."""
    requeued: list[int] = []
    failed: list[int] = []
    with transaction(conn):
        for cut in files.in_state(conn, FileState.PROCESSING):
            file_id = cut.id
            crashes = bump(conn, file_id, "crashes")
            if crashes >= max_attempts:
                files.fail(
                    conn, file_id,
                    f"processing crashed {crashes} times (the server stopped while processing it each "
                    f"time, max_processing_attempts = {max_attempts}); not tried again",
                )
                failed.append(file_id)
                log.error("file #%d %s/%s: processing crashed %d times; failed, not tried again",
                          file_id, cut.tenant, cut.name, crashes)
            else:
                files.requeue(conn, file_id)
                requeued.append(file_id)
                log.warning("file #%d %s/%s: processing was cut off by a crash (%d of %d); back in the queue",
                            file_id, cut.tenant, cut.name, crashes, max_attempts)
    return requeued, failed


class PutBack:
    """Files a retryable error sent back to the queue, due after the backoff.
    If the store cannot even take that, the file is put back from memory once
    the backoff has passed (it stays `processing` meanwhile, which holds its
    tenant's later files back: arrival order)."""

    def __init__(self) -> None:
        self._stranded: dict[int, float] = {}  # file id -> when to put it back (the store was full too)

    def later(
        self, conn: sqlite3.Connection, file_id: int, why: str, exc: BaseException, *,
        base: float, now: Callable[[], dt.datetime],
    ) -> float:
        """Nothing of the file was committed: back to the queue, due after the
        backoff (`base` seconds, doubling per retry); the seconds until then."""
        try:
            with transaction(conn):
                retries = bump(conn, file_id, "retries")
                delay = backoff(retries, base)
                due = now() + dt.timedelta(seconds=delay)
                files.requeue(conn, file_id, due_at=due.isoformat(timespec="microseconds"))
        except Exception as again:
            if retryable(again) is None:
                raise
            delay = backoff(1, base)
            self._stranded[file_id] = time.monotonic() + delay
            retries = 0
        log.warning("file #%d: %s (%s: %s); not processed, back in the queue in %.0f s (retry %s)",
                    file_id, why, type(exc).__name__, exc, delay, retries or "?")
        return delay

    def retry_stranded(self, conn: sqlite3.Connection, *, base: float) -> None:
        """Files a full store could not put back in the queue: try again."""
        now = time.monotonic()
        for file_id, at in list(self._stranded.items()):
            if at > now:
                continue
            try:
                with transaction(conn):
                    bump(conn, file_id, "retries")
                    files.requeue(conn, file_id)
            except Exception as exc:
                if retryable(exc) is None:
                    raise
                self._stranded[file_id] = now + backoff(2, base)
                continue
            del self._stranded[file_id]
            log.warning("file #%d: back in the queue", file_id)
