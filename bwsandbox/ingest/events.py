"""One signal for "an upload changed state": the worker notifies it when a
file reaches a final state (done, failed), the pickup when it records an
upload (queued, waiting, incomplete). Everything that waits for a file waits
on it, never on a timer:

    seen = events.version           read the version FIRST,
    ... look at the store ...       then the state,
    events.wait(seen, timeout)      then sleep until something changes

A change between the look and the sleep bumps the version, so `wait` returns
at once: nothing is missed. Waiters are threads (`wait`, the pytest
fixture's `wait_processed`) or coroutines on any event loop (`wait_async`,
the HTTP API's long polls); `notify` is safe from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class FileEvents:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._futures: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    @property
    def version(self) -> int:
        with self._cond:
            return self._version

    def notify(self) -> None:
        with self._cond:
            self._version += 1
            self._cond.notify_all()
            futures, self._futures = self._futures, set()
        for loop, future in futures:
            with contextlib.suppress(RuntimeError):  # that loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, future)

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until the version differs from `seen` (True) or `timeout` passes (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._version != seen, timeout=max(timeout, 0.0))

    async def wait_async(self, seen: int, timeout: float) -> bool:
        """`wait` for a coroutine: the event loop is never blocked."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._cond:
            if self._version != seen:
                return True
            self._futures.add(entry)
        try:
            await asyncio.wait_for(future, max(timeout, 0.0))
            return True
        except TimeoutError:
            return False
        finally:
            with self._cond:
                self._futures.discard(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
