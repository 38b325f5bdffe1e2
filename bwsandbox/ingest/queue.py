"""The durable queue's front door: the one narrow interface the SFTP server
hands uploads to (issue #3 -> issue #4).

The server calls exactly two methods, from any thread:

    Inbox.received(tenant, name, path)    a COMPLETE upload; the inbox takes
                                          ownership of the file at `path`
                                          (moves it into the store) and
                                          returns the file id
    Inbox.incomplete(tenant, name, path, bytes_received, reason)
                                          a cut-off upload (SPEC §2: "a
                                          cut-off upload must never be
                                          processed"): recorded, never queued

Everything after that (engage `.done` markers, validation, apply, emails) is
the ingest side's business.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import threading
from pathlib import Path

from bwsandbox.clock import Clock
from bwsandbox.store import transaction
from bwsandbox.tenants import Tenant


def sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class Inbox:
    def __init__(self, conn: sqlite3.Connection, data_dir: Path, clock: Clock) -> None:
        self._conn = conn
        self._data_dir = data_dir
        self._clock = clock
        self._lock = threading.Lock()
        self._listeners: list[threading.Event] = []

    def tenant_dir(self, tenant: Tenant) -> Path:
        return self._data_dir / "tenants" / str(tenant.region) / tenant.name

    def received(self, tenant: Tenant, name: str, path: Path) -> int:
        """Queue a complete upload; returns its file id."""
        return self._record(tenant, name, path, state="queued", detail="")

    def incomplete(
        self, tenant: Tenant, name: str, path: Path, bytes_received: int, reason: str
    ) -> int:
        """Record a cut-off upload; it is kept for inspection, never processed."""
        return self._record(tenant, name, path, state="incomplete", detail=reason)

    def _record(self, tenant: Tenant, name: str, path: Path, *, state: str, detail: str) -> int:
        size, digest = sha256_file(path)
        folder = self.tenant_dir(tenant) / ("received" if state != "incomplete" else "incomplete")
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock, transaction(self._conn):
            cur = self._conn.execute(
                "INSERT INTO files (tenant, name, bytes, sha256, received_at, state, detail)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tenant.name, name, size, digest, self._clock.iso(), state, detail),
            )
            file_id = int(cur.lastrowid or 0)
            stored = folder / f"{file_id:06d}-{name}"
            # Move first, then commit: a crash in between leaves no queued row
            # (rollback) and at worst an orphan file, never a lost upload.
            shutil.move(str(path), stored)
            self._conn.execute(
                "UPDATE files SET stored_path = ? WHERE id = ?", (str(stored), file_id)
            )
        return file_id
