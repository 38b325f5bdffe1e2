"""Exactly once after `kill -9`, at the size of the largest customers' feeds.

A `bwsandbox serve` process applies one big file (BWSANDBOX_SCALE_ROWS rows,
default 1,000,000): into an empty directory (a first load), and onto those
users loaded (a file changing the title of every tenth of them, the others
unchanged). A first, uninterrupted run measures how long the file stays
`processing`; then, for each fraction of that time, a fresh copy of the same
data directory is served again and the process is killed with SIGKILL that
long after the file was claimed (early in the validation, mid-apply, in or
around the one writing transaction), and once more as soon as the file
shows `done` (committed, its email perhaps not yet delivered). The store
just after the kill must hold the directory untouched (no user created, or
none changed, the file still `processing`) or fully applied (every one, the
file `done`), never part; after a restart the file is applied, its history
written and its email recorded and delivered exactly once.

`-n 0 -s` prints where each kill landed (untouched or fully applied).

Marked `scale`: minutes of CPU and a few GB of memory at 1,000,000 rows, so
`scripts/pytest.sh` leaves it out; docs/benchmarks.md says how to run it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bwsandbox import store, tenants
from bwsandbox.clock import Clock
from bwsandbox.config import load
from bwsandbox.ingest import directory
from bwsandbox.ingest.queue import Inbox

ROWS = int(os.environ.get("BWSANDBOX_SCALE_ROWS", "1000000"))
# When to kill, as fractions of the uninterrupted run's processing time
# (the writing transaction is its last fifth or so); None: as soon as the
# store says `done`, the commit made but the email maybe not yet delivered.
MOMENTS: tuple[float | None, ...] = (0.25, 0.5, 0.9, 0.97, None)
TENANT = "scale"
# Generous: the uninterrupted run plus, per kill, part of a run and a whole
# one, on a slow shared runner (about 60 s per million rows here).
TIMEOUT_S = max(900.0, ROWS / 1_000_000 * 3600.0)
BWSANDBOX = Path(sys.executable).parent / "bwsandbox"

pytestmark = [pytest.mark.scale, pytest.mark.timeout(TIMEOUT_S)]


CHANGED_TITLE = "Changed title"
CHANGED = (ROWS + 9) // 10  # the users a change file changes: every tenth


def _feed(path: Path, rows: int, *, change: bool = False) -> None:
    """A valid feed with an 8-ary management tree, and one row in error, so
    the file sends exactly one email to the Technical Contact (`change`:
    every tenth user's title changed)."""
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write("email,first_name,last_name,employee_id,manager_email,title\r\n")
        for i in range(rows):
            manager = "" if i == 0 else f"u{(i - 1) // 8}@scale.example.com"
            title = CHANGED_TITLE if change and i % 10 == 0 else f"Title {i % 13}"
            f.write(f"u{i}@scale.example.com,User,N{i},{i:08d},{manager},{title}\r\n")
        f.write(",No,Email,,,T\r\n")


@dataclass(frozen=True)
class Queued:
    """A data directory holding the tenant and the big file queued (`earlier`:
    the files applied before it, done), nothing of it applied."""

    data: Path
    file_id: int
    earlier: tuple[int, ...]
    change: bool

    @property
    def whole(self) -> int:
        """What `_reached` counts once the file is applied."""
        return CHANGED if self.change else ROWS


def _pristine(base: Path, *, change: bool) -> Queued:
    data = base / "pristine"
    settings = load({"data_dir": data}, env={})
    conn = store.connect(settings.db_path)
    earlier: tuple[int, ...] = ()
    try:
        with store.transaction(conn):
            tenant = tenants.add(
                conn, name=TENANT, username=TENANT, password="pw", contact="it@example.com",
                licenses=ROWS + 1000, created_at="2026-01-01T00:00:00+00:00",
            )
        inbox = Inbox(conn, data, Clock())
        if change:  # the users loaded first, by the same path
            first = base / "users_20261130.csv"
            _feed(first, ROWS)
            earlier = (inbox.received(tenant, first.name, first),)
            served = Served(data)
            try:
                _wait_state(data, earlier[0], {"done"}, served, TIMEOUT_S)
                _wait_email_delivered(data, served)
            finally:
                served.stop()
        feed = base / "users_20261201.csv"
        _feed(feed, ROWS, change=change)
        file_id = inbox.received(tenant, feed.name, feed)
        feed.unlink(missing_ok=True)  # the Inbox moves or links it into received/
    finally:
        conn.close()
    return Queued(data, file_id, earlier, change)


class Served:
    """`bwsandbox serve` on a data directory: its worker recovers and processes the queue."""

    def __init__(self, data: Path) -> None:
        self.status = data.parent / f"{data.name}.status.json"
        self.log_path = data.parent / f"{data.name}.serve.log"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(BWSANDBOX), "serve", "--data-dir", str(data), "--port", "0", "--eu-port", "0",
             "--http-port", "0", "--status-file", str(self.status)],
            stdout=self._log, stderr=self._log,
        )

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL, self.log_path.read_text()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _read(data: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    # A reader of its own, read-only: what a restarted process would find.
    conn = sqlite3.connect(f"file:{data / 'sandbox.db'}?mode=ro", uri=True, timeout=30)
    try:
        return [tuple(r) for r in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def _state(data: Path, file_id: int) -> str:
    return str(_read(data, "SELECT state FROM files WHERE id = ?", file_id)[0][0])


def _wait_state(data: Path, file_id: int, states: set[str], served: Served, timeout: float) -> float:
    """Polls the store until the file is in one of `states`; returns when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _state(data, file_id) in states:
            return time.perf_counter()
        if served.proc.poll() is not None:
            raise AssertionError(f"serve exited: {served.log_path.read_text()[-4000:]}")
        time.sleep(0.01)
    raise AssertionError(f"file {file_id} not in {states} within {timeout} s")


def _wait_email_delivered(data: Path, served: Served) -> None:
    """The email is recorded by the applying transaction and delivered after it."""
    deadline = time.monotonic() + 60
    while _read(data, "SELECT 1 FROM emails WHERE state = 'pending'"):
        assert time.monotonic() < deadline and served.proc.poll() is None, "the email stayed pending"
        time.sleep(0.05)


def _users(data: Path) -> int:
    return int(_read(data, "SELECT COUNT(*) FROM dir_users WHERE tenant = ?", TENANT)[0][0])


def _reached(data: Path, queued: Queued) -> int:
    """The users the file has created, or changed, in the store so far."""
    if not queued.change:
        return _users(data)
    title = "SELECT COUNT(*) FROM dir_users WHERE tenant = ? AND json_extract(fields_json, '$.title') = ?"
    return int(_read(data, title, TENANT, CHANGED_TITLE)[0][0])


def _applied_once(data: Path, queued: Queued) -> None:
    files = (*queued.earlier, queued.file_id)
    assert _read(data, "SELECT id, state FROM files ORDER BY id") == [(f, "done") for f in files]
    assert _users(data) == ROWS
    assert _reached(data, queued) == queued.whole
    conn = sqlite3.connect(f"file:{data / 'sandbox.db'}?mode=ro", uri=True, timeout=30)
    try:
        history = Counter(h["file_id"] for h in directory.history(conn, TENANT))
    finally:
        conn.close()
    assert history == {**dict.fromkeys(queued.earlier, ROWS), queued.file_id: queued.whole}
    counts = json.loads(str(_read(data, "SELECT counts_json FROM files WHERE id = ?", queued.file_id)[0][0]))
    expected = {"updated": CHANGED, "unchanged": ROWS - CHANGED} if queued.change else {"created": ROWS}
    assert {k: counts[k] for k in (*expected, "errors")} == {**expected, "errors": 1}, counts
    assert _read(data, "SELECT file_id FROM emails ORDER BY id") == [(f,) for f in files]
    outbox = list((data / "outbox").glob("*.eml"))
    assert len(outbox) == len(files), [p.name for p in outbox]


@pytest.mark.parametrize("change", [False, True], ids=["first-load", "change10"])
def test_kill_9_during_a_big_apply_leaves_it_untouched_or_whole_and_applied_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: bool
) -> None:
    queued = _pristine(tmp_path, change=change)
    pristine, file_id = queued.data, queued.file_id
    # Before the file: nothing of it (a first load: no user; a change: no title changed).
    assert _reached(pristine, queued) == 0

    # The uninterrupted run: how long the file stays `processing`.
    data = tmp_path / "calibration"
    shutil.copytree(pristine, data)
    served = Served(data)
    try:
        claimed = _wait_state(data, file_id, {"processing", "done"}, served, 120)
        done = _wait_state(data, file_id, {"done", "failed"}, served, TIMEOUT_S)
        _wait_email_delivered(data, served)
    finally:
        served.stop()
    _applied_once(data, queued)
    processing_s = done - claimed
    shutil.rmtree(data)
    scenario = "a change of every tenth user" if change else "a first load"
    outcomes = [f"{ROWS:,} rows, {scenario}: processing took {processing_s:.1f} s uninterrupted"]

    for fraction in MOMENTS:
        moment = "at done" if fraction is None else f"at {fraction:.0%} ({fraction * processing_s:.1f} s)"
        data = tmp_path / f"kill-{'done' if fraction is None else int(fraction * 100)}"
        shutil.copytree(pristine, data)
        served = Served(data)
        try:
            claimed = _wait_state(data, file_id, {"processing"}, served, 120)
            if fraction is None:
                _wait_state(data, file_id, {"done"}, served, TIMEOUT_S)
            else:
                time.sleep(max(0.0, claimed + fraction * processing_s - time.perf_counter()))
            served.kill()
        finally:
            served.stop()
        state, reached, users = _state(data, file_id), _reached(data, queued), _users(data)
        # Never both halves: nothing of the file, or all of it with its state.
        assert (state, reached) in {("processing", 0), ("done", queued.whole)}, (moment, state, reached)
        assert users == (ROWS if change or reached else 0), (moment, users)
        outcomes.append(f"killed {moment}: {'untouched' if reached == 0 else 'fully applied'}")

        served = Served(data)  # the restart
        try:
            _wait_state(data, file_id, {"done", "failed"}, served, TIMEOUT_S)
            _wait_email_delivered(data, served)
        finally:
            served.stop()
        _applied_once(data, queued)
        shutil.rmtree(data)

    with capsys.disabled():
        print("\n" + "\n".join(outcomes))
