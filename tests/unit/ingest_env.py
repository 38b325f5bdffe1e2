"""A real store, inbox and worker on a fixed clock, for the queue worker's
tests (test_ingest_bounds.py, test_ingest_hostile.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest.queue import Inbox
from bwsandbox.ingest.worker import Worker
from bwsandbox.spec.fields import Profile

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


class Env:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.tmp = tmp_path
        self.settings = load({"data_dir": tmp_path / "data", **settings}, env={})
        self.conn = store.connect(self.settings.db_path)
        self.clock = Clock(fixed=T0)
        self.inbox = Inbox(self.conn, self.settings.data_dir, self.clock)
        self.worker = Worker(self.settings, clock=self.clock)
        self.n = 0

    def tenant(self, name: str, profile: Profile = Profile.CORE, licenses: int = 1000) -> tenants.Tenant:
        with store.transaction(self.conn):
            return tenants.add(self.conn, name=name, username=name, password="pw", profile=profile,
                               contact=f"it@{name}.com", created_at=T0.isoformat(), licenses=licenses)

    def put(self, tenant: tenants.Tenant, name: str, content: str | bytes) -> int:
        self.n += 1
        path = self.tmp / f"spool-{self.n}"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return self.inbox.received(tenant, name, path)

    def row(self, file_id: int) -> dict[str, Any]:
        return dict(self.conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone())

    def report(self, file_id: int) -> dict[str, Any]:
        return dict(json.loads(self.row(file_id)["report_json"]))

    def attempts(self, file_id: int) -> tuple[int, int]:
        row = self.conn.execute("SELECT crashes, retries FROM file_attempts WHERE file_id = ?",
                                (file_id,)).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)
