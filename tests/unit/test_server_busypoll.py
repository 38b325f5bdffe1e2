"""Busy-polling before the event loop sleeps (`bwsandbox/server/busypoll.py`,
`_poll.c`): it must see every kind of wake-up, consume nothing, let other
threads run, keep timers on time, and go away cleanly."""

from __future__ import annotations

import asyncio
import os
import select
import selectors
import socket
import threading
import time
from pathlib import Path

import pytest

from bwsandbox.config import load
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import _poll, busypoll


def test_spin_reports_a_ready_descriptor_and_consumes_nothing() -> None:
    ep = select.epoll()
    a, b = socket.socketpair()
    try:
        ep.register(a.fileno(), select.EPOLLIN)
        assert _poll.spin(ep.fileno(), 1_000_000) is False  # nothing to read: the window runs out
        b.send(b"x")
        assert _poll.spin(ep.fileno(), 10**10) is True  # ready at once, long before 10 s
        assert ep.poll(0) == [(a.fileno(), select.EPOLLIN)]  # the loop still finds it
    finally:
        ep.close()
        a.close()
        b.close()


def test_spin_on_a_descriptor_that_is_not_epoll_is_an_os_error() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(OSError):
            _poll.spin(r, 1000)
    finally:
        os.close(r)
        os.close(w)


def test_other_threads_run_while_it_spins() -> None:
    ep = select.epoll()
    stamps: list[float] = []
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            stamps.append(time.monotonic())

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        time.sleep(0.05)
        start = time.monotonic()
        _poll.spin(ep.fileno(), 300_000_000)
        end = time.monotonic()
    finally:
        stop.set()
        thread.join()
        ep.close()
    # With the GIL held for the spin, the thread could not have run inside it.
    assert any(start + 0.1 < t < end - 0.1 for t in stamps)


def _run(coro_fn, window_us: float) -> object:  # type: ignore[no-untyped-def]
    loop = asyncio.SelectorEventLoop(selectors.EpollSelector())
    try:
        undo = busypoll.install(loop, window_us)
        assert busypoll.installed(loop)
        result = loop.run_until_complete(coro_fn(loop))
        undo()
        assert not busypoll.installed(loop)
        return result
    finally:
        loop.close()


def test_the_polled_loop_serves_sockets_threads_and_timers() -> None:
    async def go(loop: asyncio.AbstractEventLoop) -> list[str]:
        seen: list[str] = []
        # A timer due long before a 5 s window ends fires on time, not after the window.
        start = loop.time()
        await asyncio.sleep(0.02)
        seen.append("timer" if loop.time() - start < 2 else "late timer")
        # A wake-up from another thread (the self-pipe).
        done = asyncio.Event()
        threading.Timer(0.02, loop.call_soon_threadsafe, args=(done.set,)).start()
        await asyncio.wait_for(done.wait(), 2)
        seen.append("thread")
        # Socket data.
        a, b = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=a)
        threading.Timer(0.02, b.send, args=(b"ping\n",)).start()
        seen.append((await asyncio.wait_for(reader.readline(), 2)).decode().strip())
        writer.close()
        b.close()
        return seen

    assert _run(go, 5_000_000) == ["timer", "thread", "ping"]


def test_off_and_unsupported_loops_are_left_as_they_are() -> None:
    for loop, window in (
        (asyncio.SelectorEventLoop(selectors.EpollSelector()), 0),
        (asyncio.SelectorEventLoop(selectors.SelectSelector()), 200),
    ):
        try:
            undo = busypoll.install(loop, window)
            assert not busypoll.installed(loop)
            undo()
        finally:
            loop.close()


def test_a_second_install_changes_nothing_and_undoing_it_keeps_the_first() -> None:
    loop = asyncio.SelectorEventLoop(selectors.EpollSelector())
    try:
        first = busypoll.install(loop, 200)
        wrapped = vars(loop._selector)["select"]  # type: ignore[attr-defined]
        busypoll.install(loop, 500)()
        assert vars(loop._selector)["select"] is wrapped  # type: ignore[attr-defined]
        first()
        assert not busypoll.installed(loop)
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

    loop = asyncio.SelectorEventLoop(selectors.EpollSelector())
    try:
        assert loop.run_until_complete(go()) == (polled, False)
    finally:
        loop.close()
