"""Busy-polling before the event loop sleeps (`bwsandbox/server/busypoll.py`,
`_poll.c`): it answers as epoll.poll does, sees every kind of wake-up,
consumes nothing, lets other threads run, never waits past the timeout, and
sleeps (no CPU) when nothing comes. Timing bounds are generous; where a bug
would show as CPU burnt, CPU time is measured, which other jobs on the
machine do not inflate."""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bwsandbox.config import load
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import _poll, busypoll

LONG = 10**10  # a 10 s window: what must end it early is not the window


Pair = tuple[select.epoll, socket.socket, socket.socket]


@pytest.fixture
def pair() -> Iterator[Pair]:
    ep = select.epoll()
    a, b = socket.socketpair()
    ep.register(a.fileno(), select.EPOLLIN)
    yield ep, a, b
    ep.close()
    a.close()
    b.close()


def test_poll_answers_as_epoll_does_and_consumes_nothing(pair: Pair) -> None:
    ep, a, b = pair
    assert _poll.poll(ep.fileno(), 0, -1, LONG) == []  # timeout 0: one look, no polling
    b.send(b"x")
    assert _poll.poll(ep.fileno(), -1, 4, LONG) == ep.poll(0) == [(a.fileno(), select.EPOLLIN)]
    assert _poll.poll(ep.fileno(), 0, 1, 0) == [(a.fileno(), select.EPOLLIN)]  # still there


def test_poll_never_waits_past_its_timeout(pair: Pair) -> None:
    ep, _, _ = pair
    start = time.monotonic()
    assert _poll.poll(ep.fileno(), 0.6, -1, LONG) == []
    elapsed = time.monotonic() - start
    # Polling for the whole window would take 10 s; polling until the timeout
    # and then waiting the timeout again, 1.2 s.
    assert 0.6 <= elapsed < 1.0


def test_poll_sleeps_once_the_window_is_over(pair: Pair) -> None:
    ep, _, _ = pair
    cpu = time.thread_time()
    assert _poll.poll(ep.fileno(), 0.5, -1, 1_000_000) == []  # 1 ms of polling, then asleep
    assert time.thread_time() - cpu < 0.2


def test_poll_on_a_descriptor_that_is_not_epoll_is_an_os_error() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(OSError):
            _poll.poll(r, 0.01, -1, 1000)
    finally:
        os.close(r)
        os.close(w)


def test_other_threads_run_while_it_polls(pair: Pair) -> None:
    ep, _, _ = pair
    window: list[float] = []
    inside = 0
    stop = threading.Event()

    def busy() -> None:
        nonlocal inside
        while not stop.is_set():
            if window and window[0] < time.monotonic() < window[1]:
                inside += 1

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        now = time.monotonic()
        window[:] = [now + 0.1, now + 0.2]
        _poll.poll(ep.fileno(), 0.3, -1, LONG)  # polls for the whole 0.3 s
    finally:
        stop.set()
        thread.join()
    # With the GIL held while polling, the thread could not have run inside it.
    assert inside > 0


SIGNAL_WHILE_POLLING = """
import asyncio, os, selectors, signal, threading, time
from bwsandbox.server import busypoll
loop = asyncio.SelectorEventLoop(selectors.EpollSelector())
busypoll.install(loop, 1_000_000)  # polls for 1 s before each sleep
threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # while it polls
start = time.monotonic()
try:
    loop.run_until_complete(asyncio.sleep(20))
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.1f} s")
"""


def test_a_signal_that_arrives_while_polling_is_handled_before_sleeping() -> None:
    # A zero-timeout epoll_wait is never interrupted: without the check after
    # polling, Ctrl-C would wait for the 20 s timer.
    done = subprocess.run(
        [sys.executable, "-c", SIGNAL_WHILE_POLLING], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("interrupted after"), done.stdout
    assert float(done.stdout.split()[2]) < 10


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.SelectorEventLoop(selectors.EpollSelector())


def test_the_polled_loop_serves_sockets_threads_and_timers() -> None:
    async def go(loop: asyncio.AbstractEventLoop) -> list[str]:
        seen: list[str] = []
        start = loop.time()
        await asyncio.sleep(0.02)  # due long before the 10 s window ends
        seen.append("timer" if loop.time() - start < 2 else "late timer")
        done = asyncio.Event()  # a wake-up from another thread (the self-pipe)
        threading.Timer(0.02, loop.call_soon_threadsafe, args=(done.set,)).start()
        await asyncio.wait_for(done.wait(), 2)
        seen.append("thread")
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=a)
        threading.Timer(0.02, b.send, args=(b"ping\n",)).start()
        seen.append((await asyncio.wait_for(reader.readline(), 2)).decode().strip())
        writer.close()
        b.close()
        return seen

    loop = _loop()
    try:
        undo = busypoll.install(loop, LONG / 1000)
        assert busypoll.installed(loop)
        assert loop.run_until_complete(go(loop)) == ["timer", "thread", "ping"]
        undo()
        assert not busypoll.installed(loop)
    finally:
        loop.close()


def test_a_polled_loop_waiting_for_a_timer_sleeps() -> None:
    loop = _loop()
    try:
        busypoll.install(loop, 200)
        cpu = time.thread_time()
        loop.run_until_complete(asyncio.sleep(0.5))
        assert time.thread_time() - cpu < 0.2  # polling until the timer would be ~0.5 s
    finally:
        loop.close()


def test_bulk_data_holds_polling_off_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    spins: list[int] = []
    real = _poll.poll

    def recording(epfd: int, timeout: float, maxevents: int, spin_ns: int) -> list[tuple[int, int]]:
        spins.append(spin_ns)
        return real(epfd, timeout, maxevents, spin_ns)

    monkeypatch.setattr(busypoll._poll, "poll", recording)

    async def go() -> None:
        await asyncio.sleep(0)  # polls: no hold-off yet
        busypoll.hold_off_for(asyncio.get_running_loop())()  # a large SFTP write was just served
        await asyncio.sleep(0.001)
        await asyncio.sleep(busypoll.HOLD_OFF_SECONDS * 2)  # the hold-off runs out meanwhile
        await asyncio.sleep(0.001)

    loop = _loop()
    try:
        busypoll.install(loop, 300)
        spins.clear()
        loop.run_until_complete(go())
    finally:
        loop.close()
    assert spins[0] == 300_000 and 0 in spins and spins[-1] == 300_000, spins


def test_hold_off_outside_a_polled_loop_does_nothing() -> None:
    async def go() -> None:
        busypoll.hold_off_for(asyncio.get_running_loop())()

    asyncio.run(go())  # the default loop here is polled by nobody


def test_off_and_unsupported_loops_are_left_as_they_are() -> None:
    for loop, window in (
        (_loop(), 0),
        (_loop(), 0.0001),  # under a nanosecond
        (asyncio.SelectorEventLoop(selectors.SelectSelector()), 200),
    ):
        try:
            undo = busypoll.install(loop, window)
            assert not busypoll.installed(loop)
            undo()
        finally:
            loop.close()


def test_a_shared_loop_stays_polled_until_its_last_user_undoes_it() -> None:
    loop = _loop()
    try:
        first = busypoll.install(loop, 200)
        second = busypoll.install(loop, 500)
        first()
        first()  # undoing twice counts once
        assert busypoll.installed(loop)
        second()
        assert not busypoll.installed(loop)
        assert isinstance(loop._selector._selector, select.epoll)  # type: ignore[attr-defined]
    finally:
        loop.close()


@pytest.mark.parametrize(("window", "polled"), [(200.0, True), (0.0, False)])
def test_a_sandbox_polls_its_loop_while_it_runs(tmp_path: Path, window: float, polled: bool) -> None:
    settings = load({"data_dir": tmp_path, "port": 0, "eu_port": 0, "busy_poll_us": window}, env={})

    async def go() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        sandbox = Sandbox(settings, ingest=False)
        await sandbox.start()
        during = busypoll.installed(loop)
        await sandbox.stop()
        return during, busypoll.installed(loop)

    loop = _loop()
    try:
        assert loop.run_until_complete(go()) == (polled, False)
    finally:
        loop.close()
