"""Pickup's window is the file's own (docs/production.md §5): a closed upload is handed over
once *it* has been left alone for the window, whatever its session does;
only a setstat on the file restarts the window (rclone), and MAX_WAIT_SECONDS
bounds even that. Driven on a real event loop with a short window and a fake
Inbox that records when each file reached it. Each upper bound leaves a
second or more for a loaded machine: the behaviour it rules out would take
longer still."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from bwsandbox.server import pickup as pickup_mod
from bwsandbox.server.pickup import Pickup
from bwsandbox.server.session import Session
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region, Tenant

WINDOW = 0.3
TENANT = Tenant(name="acme", region=Region.US, profile=Profile.CORE, username="u", password_hash="x")


class _Inbox:
    def __init__(self) -> None:
        self.got: list[tuple[str, float]] = []

    def received(self, tenant: Tenant, name: str, path: Path) -> int:
        self.got.append((name, time.monotonic()))
        return len(self.got)


class _Audit:
    def event(self, name: str, **fields: Any) -> None:
        pass


def _session(n: int = 1) -> Session:
    return Session(id=n, peer="127.0.0.1", conn=None)  # type: ignore[arg-type]


async def _until(inbox: _Inbox, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(inbox.got) < count:
        assert time.monotonic() < deadline, f"only {inbox.got} handed over"
        await asyncio.sleep(0.01)


def _start(tmp_path: Path, window: float = WINDOW) -> tuple[Pickup, _Inbox]:
    inbox = _Inbox()
    return Pickup(inbox, _Audit(), tmp_path / "data", window), inbox  # type: ignore[arg-type]


def _upload(tmp_path: Path, name: str) -> str:
    drop = tmp_path / "incoming"
    drop.mkdir(exist_ok=True)
    (drop / name).write_bytes(b"email\na@x.com\n")
    return str(drop / name)


def test_a_closed_file_goes_after_the_window_while_its_session_stays_busy(tmp_path: Path) -> None:
    async def go() -> float:
        pickup, inbox = _start(tmp_path)
        session = _session()
        local = _upload(tmp_path, "a.csv")
        t0 = time.monotonic()
        pickup.complete(TENANT, "a.csv", local, session)
        # The session keeps working (listing, polling, other uploads): the
        # server stamps its activity, which must not hold the file back.
        for _ in range(250):  # up to 5 s: held back by it, the file would go after that
            session.last_activity = time.monotonic()
            await asyncio.sleep(0.02)
            if inbox.got:
                break
        await _until(inbox, 1)
        await pickup.drain()
        return inbox.got[0][1] - t0

    waited = asyncio.run(go())
    assert WINDOW <= waited < WINDOW + 2


def test_a_setstat_restarts_the_files_window(tmp_path: Path) -> None:
    async def go() -> float:
        pickup, inbox = _start(tmp_path)
        local = _upload(tmp_path, "r.csv")
        t0 = time.monotonic()
        pickup.complete(TENANT, "r.csv", local, _session())
        await asyncio.sleep(WINDOW * 0.7)
        pickup.touch(local)  # rclone's setstat(mtime) after close
        await _until(inbox, 1)
        await pickup.drain()
        return inbox.got[0][1] - t0

    waited = asyncio.run(go())
    assert WINDOW * 1.7 <= waited < WINDOW * 1.7 + 1.5


def test_a_file_set_stat_forever_is_still_taken_at_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pickup_mod, "MAX_WAIT_SECONDS", 0.8)

    async def go() -> float:
        pickup, inbox = _start(tmp_path)
        local = _upload(tmp_path, "s.csv")
        t0 = time.monotonic()
        pickup.complete(TENANT, "s.csv", local, _session())
        while not inbox.got:
            pickup.touch(local)
            await asyncio.sleep(0.05)
            assert time.monotonic() - t0 < 5
        await pickup.drain()
        return inbox.got[0][1] - t0

    waited = asyncio.run(go())
    assert 0.8 <= waited < 0.8 + 2.5


def test_each_file_has_its_own_window_and_the_session_end_takes_the_rest(tmp_path: Path) -> None:
    window = 1.5  # the second file's window ends 0.9 s after the first's: room for a loaded machine

    async def go() -> tuple[list[tuple[str, float]], float]:
        pickup, inbox = _start(tmp_path, window)
        session = _session()
        t0 = time.monotonic()
        pickup.complete(TENANT, "first.csv", _upload(tmp_path, "first.csv"), session)
        await asyncio.sleep(window * 0.6)
        pickup.complete(TENANT, "second.csv", _upload(tmp_path, "second.csv"), session)
        await _until(inbox, 1)
        assert [n for n, _ in inbox.got] == ["first.csv"]  # the second one's window runs on
        pickup.complete(TENANT, "third.csv", _upload(tmp_path, "third.csv"), session)
        ended = time.monotonic()
        pickup.session_ended(session)  # nothing can touch them any more: both go now
        await _until(inbox, 3)
        await pickup.drain()
        return [(n, t - t0) for n, t in inbox.got], ended - t0

    got, ended = asyncio.run(go())
    assert [n for n, _ in got] == ["first.csv", "second.csv", "third.csv"]
    assert window <= got[0][1] < window + 2
    # The session's end, not a window, took the last two.
    assert got[1][1] < window * 1.6 and got[2][1] - ended < window


def test_a_cancelled_file_is_never_handed_over(tmp_path: Path) -> None:
    async def go() -> list[tuple[str, float]]:
        pickup, inbox = _start(tmp_path)
        local = _upload(tmp_path, "gone.csv")
        pickup.complete(TENANT, "gone.csv", local, _session())
        assert pickup.cancel(local) is not None  # renamed away before its window ended
        await asyncio.sleep(WINDOW * 2)
        await pickup.drain()
        return inbox.got

    assert asyncio.run(go()) == []
