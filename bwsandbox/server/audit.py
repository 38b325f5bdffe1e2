"""The audit log: one JSON object per line in DATA_DIR/audit.log (issue #3).

Events: connect, auth (ok / failed / locked-out / too-many), session start and
end, open/close/rename/remove/setstat of interest, pickup, incomplete.
Records are buffered and flushed within FLUSH_SECONDS (and at close), whole
lines at a time: one write(2) per burst instead of one per record keeps the
log off the upload hot path; readers (`tail -f`) may lag by that much.
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

FLUSH_SECONDS = 0.2


class AuditLog:
    def __init__(self, path: Path, clock: Clock) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._clock = clock
        self._fh = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._scheduled = False

    def event(self, event: str, **fields: Any) -> None:
        record = {"ts": self._clock.now().isoformat(timespec="milliseconds"), "event": event}
        record.update(fields)
        line = json.dumps(record, default=str, ensure_ascii=False) + "\n"
        with self._lock:
            self._lines.append(line)
            if self._scheduled:
                return
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is None:
                self._flush_locked()
            else:
                self._scheduled = True
                loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._scheduled = False
        if self._lines and not self._fh.closed:
            self._fh.write("".join(self._lines))
            self._fh.flush()
        self._lines.clear()

    def close(self) -> None:
        with self._lock:
            self._flush_locked()
            self._fh.close()


def read(path: Path) -> list[dict[str, Any]]:
    """All records (tests and tools); tolerates a missing file."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
