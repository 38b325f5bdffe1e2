"""The audit log: one JSON object per line in DATA_DIR/audit.log (issue #3).

Events: connect, auth (ok / failed / locked-out / too-many), session start and
end, open/close/rename/remove/setstat of interest, pickup, incomplete.
Written from the event loop with a line-buffered append: each record is one
small write(2), so concurrent readers (`tail -f`) never see half a line.
"""

from __future__ import annotations

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

    def event(self, event: str, **fields: Any) -> None:
        record = {"ts": self._clock.now().isoformat(timespec="milliseconds"), "event": event}
        record.update(fields)
        line = json.dumps(record, default=str, ensure_ascii=False)
        with self._lock:
            if not self._fh.closed:
                self._fh.write(line + "\n")

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read(path: Path) -> list[dict[str, Any]]:
    """All records (tests and tools); tolerates a missing file."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
