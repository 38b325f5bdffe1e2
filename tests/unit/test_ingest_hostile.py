"""The queue worker under hostile and broken input (docs/security.md), with
a real SQLite store: a file stretched past `max_file_bytes` is refused
unread; a file that keeps crashing the worker is failed after
`max_processing_attempts` (no crash loop); a full disk puts a file back in
the queue with a backoff, never `failed`; tenants take turns and small files
have a lane of their own."""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from ingest_env import T0, Env

from bwsandbox import store
from bwsandbox.ingest import attempts
from bwsandbox.ingest import worker as worker_mod
from bwsandbox.ingest.worker import Worker

CSV = "email,first_name,last_name\n{}@x.com,A,B\n"


# -- a file stretched past max_file_bytes --------------------------------------------------


def test_a_file_stretched_past_max_file_bytes_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: 28 bytes uploaded, then SFTP setstat makes the file
    3 GiB (sparse). The worker must not read it; it fails with the reason."""
    env = Env(tmp_path, max_file_bytes=50 * 1024**2)
    t = env.tenant("acme")
    big = env.put(t, "users_20260301.csv", "email,first_name,last_name\n")
    os.truncate(env.row(big)["stored_path"], 3 * 1024**3)
    reads: list[int] = []
    real_open = Path.open

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        if str(self) == env.row(big)["stored_path"]:
            reads.append(1)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    ok = env.put(t, "users_20260302.csv", CSV.format("ann"))
    assert env.worker.process_pending() == [big, ok]
    row = env.row(big)
    assert row["state"] == "failed"
    assert "3,221,225,472 bytes, over max_file_bytes (52,428,800)" in row["detail"]
    assert reads == []  # refused on its stat: never opened
    assert env.row(ok)["state"] == "done"  # the queue goes on


def test_the_bounded_read_stops_one_byte_past_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert worker_mod.read_bounded(path, 100) == b"x" * 100
    with pytest.raises(worker_mod.Refused, match="100 bytes, over max_file_bytes \\(99\\)"):
        worker_mod.read_bounded(path, 99)


# -- no crash loop ------------------------------------------------------------------------


def _crash_while_processing(env: Env, file_id: int) -> None:
    """What a kill -9 mid-file leaves: the file `processing`, nothing committed."""
    with store.transaction(env.conn):
        env.conn.execute("UPDATE files SET state = 'processing' WHERE id = ?", (file_id,))


def test_a_file_that_crashes_the_worker_is_failed_after_max_processing_attempts(tmp_path: Path) -> None:
    env = Env(tmp_path, max_processing_attempts=3)
    t = env.tenant("acme")
    poison = env.put(t, "poison.csv", CSV.format("p"))
    after = env.put(t, "after.csv", CSV.format("q"))
    for crash in (1, 2):
        _crash_while_processing(env, poison)
        assert Worker(env.settings, clock=env.clock).recover() == 1  # a restart
        assert env.row(poison)["state"] == "queued" and env.attempts(poison) == (crash, 0)
    _crash_while_processing(env, poison)
    restarted = Worker(env.settings, clock=env.clock)
    assert restarted.recover() == 0
    row = env.row(poison)
    assert row["state"] == "failed"
    assert row["detail"].startswith("processing crashed 3 times")
    assert restarted.process_pending() == [after]  # the queue is not blocked behind it
    assert env.row(after)["state"] == "done"


def test_a_clean_run_counts_no_crash(tmp_path: Path) -> None:
    env = Env(tmp_path, max_processing_attempts=1)
    t = env.tenant("acme")
    ids = [env.put(t, f"f{i}.csv", CSV.format(f"u{i}")) for i in range(3)]
    assert env.worker.process_pending() == ids
    assert Worker(env.settings, clock=env.clock).recover() == 0
    assert [env.row(i)["state"] for i in ids] == ["done"] * 3


# -- a full disk --------------------------------------------------------------------------


def test_enospc_puts_the_file_back_with_a_backoff_and_a_log_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env = Env(tmp_path, retry_backoff_seconds=5)
    t = env.tenant("acme")
    file_id = env.put(t, "users_20260301.csv", CSV.format("ann"))
    real = worker_mod.read_bounded
    failures = [OSError(errno.ENOSPC, "No space left on device")] * 2

    def full_disk(path: Path, limit: int) -> bytes:
        if failures:
            raise failures.pop()
        return real(path, limit)

    monkeypatch.setattr(worker_mod, "read_bounded", full_disk)
    with caplog.at_level(logging.WARNING, logger="bwsandbox.ingest"):
        assert env.worker.process_pending() == [file_id]
    row = env.row(file_id)
    assert row["state"] == "queued" and env.attempts(file_id) == (0, 1)
    assert dt.datetime.fromisoformat(row["due_at"]) == T0 + dt.timedelta(seconds=5)
    assert "the disk is full" in caplog.text and "back in the queue in 5 s" in caplog.text
    assert env.worker.process_pending() == []  # not before its backoff
    env.clock.fixed = T0 + dt.timedelta(seconds=5)
    env.worker.process_pending()
    row = env.row(file_id)
    assert row["state"] == "queued" and env.attempts(file_id) == (0, 2)
    assert dt.datetime.fromisoformat(row["due_at"]) == T0 + dt.timedelta(seconds=5 + 10)  # doubled
    env.clock.fixed = T0 + dt.timedelta(seconds=15)
    assert env.worker.process_pending() == [file_id]
    assert env.row(file_id)["state"] == "done"


def test_sqlite_full_is_retried_never_failed(tmp_path: Path) -> None:
    """A real SQLITE_FULL: the worker's store may not grow (max_page_count),
    so applying the file fails; it stays in the queue until there is room."""
    env = Env(tmp_path, retry_backoff_seconds=0)
    t = env.tenant("acme")
    rows = "".join(f"u{i}@x.com,U,{i},{'t' * 200}\n" for i in range(300))
    body = "email,first_name,last_name,title\n" + rows
    file_id = env.put(t, "users_20260301.csv", body)
    conn = env.worker.conn  # this thread's: process_pending runs here
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 2}")
    env.worker.process_pending()
    assert env.row(file_id)["state"] in ("queued", "processing")  # processing: put back from memory
    assert env.row(file_id)["state"] != "failed"
    conn.execute("PRAGMA max_page_count = 1073741823")
    for _ in range(3):
        env.worker.process_pending()
        if env.row(file_id)["state"] == "done":
            break
    assert env.row(file_id)["state"] == "done"
    assert env.conn.execute("SELECT COUNT(*) FROM dir_users").fetchone()[0] == 300


def test_when_the_store_cannot_take_the_file_back_it_is_put_back_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk is full for the file and for the store: the file stays
    `processing` (its tenant's next file waits: arrival order) and is put
    back once the store has room again."""
    env = Env(tmp_path, retry_backoff_seconds=0)
    t = env.tenant("acme")
    first = env.put(t, "a.csv", CSV.format("a"))
    second = env.put(t, "b.csv", CSV.format("b"))
    real_read, real_bump = worker_mod.read_bounded, attempts.bump
    reads = [OSError(errno.ENOSPC, "No space left on device")]
    bumps = [sqlite3.OperationalError("database or disk is full")]

    def read(path: Path, limit: int) -> bytes:
        if reads:
            raise reads.pop()
        return real_read(path, limit)

    def bump(conn: sqlite3.Connection, file_id: int, column: str) -> int:
        if bumps:
            raise bumps.pop()
        return real_bump(conn, file_id, column)

    monkeypatch.setattr(worker_mod, "read_bounded", read)
    monkeypatch.setattr(attempts, "bump", bump)
    assert env.worker.process_pending() == [first]
    assert (env.row(first)["state"], env.row(second)["state"]) == ("processing", "queued")
    assert env.worker.process_pending() == [first, second]  # put back, then processed in order
    assert (env.row(first)["state"], env.row(second)["state"]) == ("done", "done")
    assert env.attempts(first) == (0, 1)


def test_what_is_retryable() -> None:
    full = sqlite3.OperationalError("database or disk is full")
    assert attempts.retryable(full) is not None
    assert attempts.retryable(OSError(errno.ENOSPC, "x")) == "the disk is full"
    assert attempts.retryable(OSError(errno.EDQUOT, "x")) == "the disk is full"
    wrapped = RuntimeError("store")
    wrapped.__cause__ = OSError(errno.ENOSPC, "x")
    assert attempts.retryable(wrapped) == "the disk is full"
    assert attempts.retryable(OSError(errno.EACCES, "x")) is None
    assert attempts.retryable(ValueError("bug")) is None
    assert [attempts.backoff(n, 5) for n in (1, 2, 3, 10)] == [5, 10, 20, 300]


# -- fairness -------------------------------------------------------------------------------


def test_tenants_take_turns(tmp_path: Path) -> None:
    """Tenant a sent three files before b sent one: b's goes second, not
    fourth; each tenant's own files stay in arrival order."""
    env = Env(tmp_path)
    a, b = env.tenant("a"), env.tenant("b")
    a1, a2, a3 = (env.put(a, f"a{i}.csv", CSV.format(f"a{i}")) for i in range(3))
    b1 = env.put(b, "b1.csv", CSV.format("b1"))
    assert env.worker.process_pending() == [a1, b1, a2, a3]


class Blocking(Worker):
    """A worker whose processing of one named file waits for a signal."""

    def __init__(self, *args: Any, hold: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = hold
        self.started = threading.Event()
        self.release = threading.Event()

    def _process(self, file_id: int) -> str:
        name = self.conn.execute("SELECT name FROM files WHERE id = ?", (file_id,)).fetchone()[0]
        if name == self.hold:
            self.started.set()
            assert self.release.wait(30)
        return super()._process(file_id)


@pytest.mark.parametrize("fast_lane_bytes", [1024, 0])
def test_a_big_file_does_not_hold_up_another_tenants_small_one(tmp_path: Path, fast_lane_bytes: int) -> None:
    env = Env(tmp_path, fast_lane_bytes=fast_lane_bytes)
    a, b = env.tenant("a"), env.tenant("b")
    worker = Blocking(env.settings, clock=env.clock, hold="big.csv")
    worker.inbox = env.inbox
    env.inbox.add_listener(worker._wake)
    env.inbox.add_listener(worker._fast_wake)
    rows = "".join(f"u{i}@x.com,U,V\n" for i in range(200))
    big = env.put(a, "big.csv", "email,first_name,last_name\n" + rows)
    a_small = env.put(a, "a-small.csv", CSV.format("a"))
    worker.start_thread()
    try:
        assert worker.started.wait(30)
        small = env.put(b, "small.csv", CSV.format("b"))

        def state(file_id: int) -> str:
            return str(env.row(file_id)["state"])

        # Long enough for a loaded machine where it should be done; the one lane's wait shows it is not.
        deadline = time.monotonic() + (30 if fast_lane_bytes else 5)
        while state(small) != "done" and time.monotonic() < deadline:
            time.sleep(0.02)
        if fast_lane_bytes:
            assert state(small) == "done" and state(big) == "processing"
            assert state(a_small) == "queued"  # a's own files keep their order, behind its big one
        else:  # one lane: the small file waits for the big one (what the fast lane fixes)
            assert state(small) == "queued"
        worker.release.set()
        deadline = time.monotonic() + 30
        while {state(big), state(a_small), state(small)} != {"done"} and time.monotonic() < deadline:
            time.sleep(0.02)
        assert {state(big), state(a_small), state(small)} == {"done"}
    finally:
        worker.release.set()
        worker.stop_thread()
        worker.close()


# -- any name fits on disk -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["users.csv", "u" * 222, "u" * 223 + ".csv", "é" * 127 + ".csv", "x" * 255])
def test_fit_name_leaves_room_and_tells_long_names_apart(name: str) -> None:
    from bwsandbox.layout import fit_name

    fitted = fit_name(name, 33)
    assert len(fitted.encode()) + 33 <= 255
    if len(name.encode()) + 33 <= 255:
        assert fitted == name
    else:
        assert fitted != fit_name(name + "x", 33)
        assert fitted.endswith(".csv") == name.endswith(".csv")
