"""Busy-polling before the event loop sleeps (issue #3 "Speed"; README "Benchmarks").

A client that waits for each reply leaves the server idle for a fraction of
a millisecond between requests: OpenSSH's `put` of many small files is three
strict round trips per file. On a virtual machine the kernel halts an idle
vCPU, and the next request pays for waking it through the hypervisor and
for cold caches: measured here, creating a file costs ~75 us when done back
to back and 135-200 us after half a millisecond asleep.

So, before the loop sleeps, it polls its own descriptors for up to
`busy_poll_us` (config) and goes on the moment one is ready. It is the idea
of Linux's cpuidle-haltpoll for KVM guests and of SO_BUSY_POLL, applied to
asyncio's selector: the selector's epoll object is replaced by one whose
`poll` is `_poll.poll`, which spins and then waits in one call without the
GIL (so other threads run, and the loop takes the GIL back once per turn as
before), and never past the timeout the loop asked for (its next timer).
The price is at most that much CPU after each burst of activity; an idle
server sleeps as before. `busy_poll_us = 0` turns it off.
"""

from __future__ import annotations

import asyncio
import select
import selectors
import time
from collections.abc import Callable
from typing import Any

try:
    from bwsandbox.server import _poll
except ImportError:  # not built off Linux (setup.py): nothing is polled
    _poll = None  # type: ignore[assignment]


class _PolledEpoll:
    """Stands in for an EpollSelector's `select.epoll`: `poll` polls first;
    everything else (register, modify, unregister, fileno, close) is the
    epoll object's own."""

    def __init__(self, epoll: select.epoll, window_ns: int) -> None:
        self.epoll = epoll
        self.window_ns = window_ns
        self.users = 1  # sandboxes sharing this loop; the last to stop undoes it
        # What EpollSelector calls, bound once (not looked up per call).
        self.register, self.unregister, self.modify = epoll.register, epoll.unregister, epoll.modify
        self.fileno, self.close = epoll.fileno, epoll.close
        self.fd = epoll.fileno()
        self.hold_until = 0.0  # time.monotonic() before which nothing is polled (bulk data)

    def poll(self, timeout: float | None = -1, maxevents: int = -1) -> list[tuple[int, int]]:
        spin_ns = self.window_ns
        if self.hold_until:
            if time.monotonic() < self.hold_until:
                spin_ns = 0
            else:
                self.hold_until = 0.0
        return _poll.poll(self.fd, -1.0 if timeout is None else timeout, maxevents, spin_ns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.epoll, name)


def install(loop: asyncio.AbstractEventLoop, window_us: float) -> Callable[[], None]:
    """Make `loop` poll for up to `window_us` before it sleeps; returns how to undo it.

    Only an epoll selector loop can be polled (Linux's default); any other
    loop and a window under 1 ns are left as they are. A loop already polled
    keeps its window; it is undone when the last of its users undoes it."""
    selector = getattr(loop, "_selector", None)
    window_ns = int(window_us * 1000)
    if _poll is None or window_ns <= 0 or type(selector) is not selectors.EpollSelector:
        return lambda: None
    polled = selector._selector  # type: ignore[attr-defined]
    if isinstance(polled, _PolledEpoll):
        polled.users += 1
    elif isinstance(polled, select.epoll):
        polled = _PolledEpoll(polled, window_ns)
        selector._selector = polled  # type: ignore[attr-defined]
    else:
        return lambda: None
    undone = False

    def uninstall() -> None:
        nonlocal undone
        if undone:
            return
        undone = True
        polled.users -= 1
        if polled.users == 0 and selector._selector is polled:  # type: ignore[attr-defined]
            selector._selector = polled.epoll  # type: ignore[attr-defined]

    return uninstall


# How long bulk data keeps polling off: a write every ~0.1 ms at 300 MiB/s
# re-arms it; a client back to one request at a time gets it again at once.
HOLD_OFF_SECONDS = 0.002


def hold_off_for(loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """What to call when bulk data arrives (a large SFTP write) on `loop`:
    poll nothing for a while. Looked up once, by whoever serves the writes;
    a no-op where nothing polls.

    Polling pays when the server waits for a client that waits for it. In a
    bulk transfer the client's processes (reading, encrypting) and the server
    all work at once, and on a small machine the core that polls is the one
    the client needed: measured, a 200 MiB upload lost ~6 % with polling."""
    epoll = _polled(loop)
    if epoll is None:
        return lambda: None

    def hold_off() -> None:
        epoll.hold_until = time.monotonic() + HOLD_OFF_SECONDS

    return hold_off


def _polled(loop: Any) -> _PolledEpoll | None:
    """The loop's polled epoll object, if `install` replaced it."""
    polled = getattr(getattr(loop, "_selector", None), "_selector", None)
    return polled if isinstance(polled, _PolledEpoll) else None


def installed(loop: Any) -> bool:
    return _polled(loop) is not None
