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
  `failed` for it.
"""

from __future__ import annotations

import logging
import sqlite3

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
