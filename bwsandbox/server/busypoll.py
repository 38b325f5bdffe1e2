"""Busy-polling before the event loop sleeps (issue #3 "Speed"; README "Benchmarks").

A client that waits for each reply leaves the server idle for a fraction of
a millisecond between requests: OpenSSH's `put` of many small files is three
strict round trips per file. On a virtual machine the kernel halts an idle
vCPU, and the next request pays for waking it through the hypervisor and
for cold caches: measured here, creating a file costs ~75 us when done back
to back and 135-200 us after half a millisecond asleep.

So, before the loop sleeps, it polls its own descriptors for up to
`busy_poll_us` (config), without the GIL (`_poll.spin`), and goes on the
moment one is ready. It is the idea of Linux's cpuidle-haltpoll for KVM
guests and of SO_BUSY_POLL, applied to asyncio's selector. The price is at
most that much CPU after each burst of activity; an idle server sleeps as
before, and a timer due sooner than the window still fires on time.
`busy_poll_us = 0` turns it off.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Callable
from typing import Any

from bwsandbox.server import _poll


def install(loop: asyncio.AbstractEventLoop, window_us: float) -> Callable[[], None]:
    """Make `loop` poll for up to `window_us` before it sleeps; returns how to undo it.

    Only an epoll selector loop can be polled (Linux's default); any other
    loop, a window of 0, or a loop already polled is left as it is."""
    selector = getattr(loop, "_selector", None)
    if window_us <= 0 or type(selector) is not selectors.EpollSelector or "select" in vars(selector):
        return lambda: None
    original = selector.select
    epfd = selector.fileno()
    window_ns = int(window_us * 1000)

    def select(timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout > 0:
            spin_ns = window_ns if timeout is None else min(window_ns, int(timeout * 1e9))
            if _poll.spin(epfd, spin_ns):
                timeout = 0
            elif timeout is not None:
                timeout = max(0.0, timeout - spin_ns / 1e9)
        return original(timeout)

    selector.select = select  # type: ignore[method-assign]

    def uninstall() -> None:
        if vars(selector).get("select") is select:
            del selector.select

    return uninstall


def installed(loop: Any) -> bool:
    selector = getattr(loop, "_selector", None)
    return selector is not None and "select" in vars(selector)
