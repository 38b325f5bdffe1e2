"""Waiting for the worker is an event: `Sandbox.settle` (the pytest
plugin's reset, certify after each run) wakes when a file changes state,
not on a timer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import FAST

from bwsandbox import sandbox as sandbox_mod
from bwsandbox import store, tenants
from bwsandbox.config import load
from bwsandbox.ingest import files
from bwsandbox.ingest.files import FileState
from bwsandbox.sandbox import Sandbox


def test_settle_returns_when_the_last_file_is_finished_not_at_its_next_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Were settle to rely on looking again, it would now look only after a minute.
    monkeypatch.setattr(sandbox_mod, "UNANNOUNCED_CHECK_SECONDS", 60.0)
    settings = load({**FAST, "data_dir": tmp_path}, env={})
    looked = threading.Event()
    looks: list[int] = []
    count = files.pending_count

    def pending_count(conn: object) -> int:
        looks.append(count(conn))  # type: ignore[arg-type]
        looked.set()
        return looks[-1]

    monkeypatch.setattr(files, "pending_count", pending_count)
    with Sandbox(settings, ingest=False) as sb:  # no worker: this test plays it
        conn = store.connect(settings.db_path)
        with store.transaction(conn):
            tenants.add(conn, name="t", username="t", password="pw-123456", created_at="now",
                        password_hash="x")
            file_id = files.insert(conn, tenant="t", name="a.csv", size=1, sha256="h", received_at="now",
                                   state=FileState.QUEUED, detail="")

        def worker() -> None:  # finishes the file once settle has seen it queued
            assert looked.wait(30)
            time.sleep(0.5)  # the file takes its time: a poll would look at the store meanwhile
            own = store.connect(settings.db_path)
            with store.transaction(own):
                files.fail(own, file_id, "played by the test")
            own.close()
            sb.file_events.notify()

        thread = threading.Thread(target=worker)
        thread.start()
        started = time.monotonic()
        sb.settle(conn, timeout=60.0)
        elapsed = time.monotonic() - started
        thread.join()
        assert looks == [1, 0], "settle looks at the store once, then once after the event"
        assert elapsed < 30, f"settle took {elapsed:.1f} s: it waited for its next look, not the event"
        assert count(conn) == 0
        conn.close()
