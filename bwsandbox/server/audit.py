"""The audit log: one JSON object per line in DATA_DIR/audit.log (docs/server.md).

`ts` is real UTC time (`Clock.wall()`), never the sandbox clock: an audit
log lines up with the client's and the network's logs, and moving the
sandbox's "today" (`bwsandbox clock`) must not rewrite when things happened.

Events: connect, auth (ok / failed / locked-out / too-many), session start and
end, open/close/rename/remove/setstat of interest, pickup, incomplete.

Created on the server's event loop, the log writes what one turn of the loop
recorded in one write(2) at the start of the next turn: after the replies of
that turn went out, so encoding and writing the records never delay an SFTP
reply (about 8 % of a small request's time when written at once), yet
readers such as `tail -f` and `bwsandbox certify` see a record microseconds
after it happened, in order. Records from other threads join the same queue.
Closing (a clean stop) writes what is queued; a killed server loses at most
that one turn's records. Created off any loop (tools, tests), it writes each
record at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from pathlib import Path
from typing import Any

from bwsandbox.clock import Clock

log = logging.getLogger("bwsandbox.server")


class AuditLog:
    def __init__(self, path: Path, clock: Clock) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._fh = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()
        self._queued: list[dict[str, Any]] = []
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._loop_thread = threading.get_ident()

    def event(self, event: str, **fields: Any) -> None:
        record = {"ts": self._clock.wall().isoformat(timespec="milliseconds"), "event": event, **fields}
        loop = self._loop
        with self._lock:
            self._queued.append(record)
            scheduled = len(self._queued) > 1
        try:
            if loop is None or loop.is_closed():
                raise RuntimeError("no loop")  # also a write scheduled on a loop that closed first
            if scheduled:
                return  # that write takes this record too
            if threading.get_ident() == self._loop_thread:
                loop.call_soon(self.flush)
            else:
                loop.call_soon_threadsafe(self.flush)
        except RuntimeError:  # no loop, or it just closed: write at once, in order
            self.flush()

    def flush(self) -> None:
        """Write what is queued now (from any thread; records keep their order)."""
        with self._lock:
            records, self._queued = self._queued, []
            if not records or self._fh.closed:
                return
            try:
                self._fh.write("".join(_line(r) for r in records))
            except (OSError, ValueError) as exc:  # a full disk must not stop the server
                log.error("audit log: %d record(s) could not be written: %s", len(records), exc)

    def close(self) -> None:
        self.flush()
        with self._lock:
            self._loop = None
            self._fh.close()


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, default=str, ensure_ascii=False) + "\n"


def read(path: Path, since: int = 0) -> list[dict[str, Any]]:
    """The records (tests and tools) from byte `since` on (a `mark`, default
    all); tolerates a missing file."""
    if not path.exists():
        return []
    with path.open("rb") as fh:
        fh.seek(since)
        return [json.loads(line) for line in fh if line.strip()]


def mark(path: Path) -> int:
    """Where the next record will start, for `read(path, since=...)`."""
    return path.stat().st_size if path.exists() else 0
