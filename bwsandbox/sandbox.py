"""The one object that owns the lifecycle of the whole sandbox.

    Sandbox(settings)       Settings + Clock + store + Inbox + host keys +
                            audit log + one SSH listener per region + services

It composes; it does not choose its parts. The clock, the event signal, the
queue worker, the store and the Inbox are handed to it as `Parts`
(bwsandbox/parts.py); `Sandbox(settings)` takes `parts.build(settings)`:

    Sandbox(settings, parts=build(settings, ingest=False))   no worker

Async use (inside a running loop):

    async with Sandbox(settings) as sandbox:
        port = sandbox.port("us")

Sync use (tests, the pytest plugin): the sandbox runs its own event loop in
a background thread, like aiosmtpd's Controller, with a readiness wait and a
timeout; an error raised while starting is re-raised in the caller:

    with Sandbox(load({"data_dir": tmp, "port": 0, "eu_port": 0})) as sandbox:
        ...                    # sandbox.port("us"), sandbox.port("eu")

`stop()` is idempotent. Other parts plug in as services: any object with
`async start(sandbox)` and `async stop()`, appended to `sandbox.services`
before `start()`. They start after the store and Inbox exist and before the
listeners accept connections, and stop in reverse order after the listeners
closed and pending uploads were handed over (the ingest queue worker is one).
`sandbox.pickup_listeners` receive `(state, tenant, name, file_id)` on the
event loop after each handover. `sandbox.file_events` (ingest/events.py) is
notified whenever an upload is recorded or reaches a final state: the pytest
fixture's `wait_processed` and the HTTP API's long polls wait on it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from bwsandbox import layout, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.errors import ServerError
from bwsandbox.ingest import files
from bwsandbox.ingest.queue import Inbox
from bwsandbox.parts import Parts, build
from bwsandbox.server import hostkeys
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.auth import Lockout, PasswordCache
from bwsandbox.server.handles import Handles, descriptor_limit, total_limit
from bwsandbox.server.listener import Endpoint
from bwsandbox.server.pickup import Pickup, PickupListener
from bwsandbox.tenants import Region, Tenant

log = logging.getLogger("bwsandbox")

T = TypeVar("T")

DEMO_TENANT = "demo"
# How long `settle` trusts the events alone before it looks at the store
# again: only a change made by another process goes unannounced.
UNANNOUNCED_CHECK_SECONDS = 1.0
DEMO_USERNAME = "demo"


class Service(Protocol):
    async def start(self, sandbox: Sandbox) -> None: ...
    async def stop(self) -> None: ...


class Sandbox:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        services: list[Service] | None = None,
        ingest: bool = True,
        parts: Parts | None = None,
    ) -> None:
        """`clock` and `ingest` are shorthands for `parts=build(settings,
        clock=clock, ingest=ingest)`; give either them or `parts`."""
        if parts is not None and (clock is not None or not ingest):
            raise TypeError("give clock= and ingest= to parts.build(), or parts=, not both")
        parts = parts or build(settings, clock=clock, ingest=ingest)
        if parts.worker is not None and parts.worker.events is not parts.file_events:
            # settle() and wait_processed() wait on file_events: a worker
            # telling another signal would leave them waiting for nothing.
            raise ValueError("the worker must notify the sandbox's file_events (see parts.build)")
        self.settings = settings
        self.parts = parts
        # The simulated vendor app: the queue worker, the first service started.
        self.worker = parts.worker
        self.clock = parts.clock
        self.services: list[Service] = list(services or [])
        self.file_events = parts.file_events
        self.pickup_listeners: list[PickupListener] = [lambda *_: self.file_events.notify()]
        self.endpoints: dict[Region, Endpoint] = {}
        self.host_keys: list[hostkeys.HostKeyInfo] = []
        self.announced_keys: list[hostkeys.HostKeyInfo] = []
        # (host, port) of the HTTP control plane, set by bwsandbox.api's service when it listens.
        self.http_address: tuple[str, int] | None = None
        self.conn: sqlite3.Connection | None = None
        self.inbox: Inbox | None = None
        self.audit: AuditLog | None = None
        self.pickup: Pickup | None = None
        self._inbox_conn: sqlite3.Connection | None = None
        self._passwords: PasswordCache | None = None
        self._started_services: list[Service] = []
        self._state = "new"  # new -> starting -> running -> stopped
        self._stop_lock: asyncio.Lock | None = None
        # background-thread mode
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop_event: asyncio.Event | None = None

    # -- facts ----------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.log"

    def port(self, region: Region | str = Region.US) -> int:
        return self.endpoints[Region(region)].port

    def host(self, region: Region | str = Region.US) -> str:
        return self.endpoints[Region(region)].host

    @property
    def running(self) -> bool:
        """Started, listeners included, and not stopped (the API's /healthz)."""
        return self._state == "running"

    def connect(self) -> sqlite3.Connection:
        """A new store connection (one per thread is the safe rule)."""
        return self.parts.connect()

    def tenant_root(self, tenant: Tenant) -> Path:
        return layout.tenant_root(self.data_dir, tenant)

    def status(self) -> dict[str, Any]:
        """What `serve --status-file` writes once listening."""
        return {
            "endpoints": {
                str(region): {"host": ep.host, "port": ep.port} for region, ep in self.endpoints.items()
            },
            "host_keys": [k.to_dict() for k in self.host_keys],
            **({"http": {"host": self.http_address[0], "port": self.http_address[1]}}
               if self.http_address else {}),
        }

    # -- async lifecycle ------------------------------------------------------

    async def start(self) -> None:
        if self._state != "new":
            raise ServerError(f"a sandbox can start once (it is {self._state})")
        self._state = "starting"
        self._stop_lock = asyncio.Lock()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        self._state = "running"

    async def _start(self) -> None:
        settings = self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.conn = self.connect()
        self._inbox_conn = self.connect()
        self.inbox = self.parts.inbox(self._inbox_conn)
        keys = await asyncio.to_thread(hostkeys.ensure, self.data_dir)
        staged = hostkeys.announced(self.data_dir)
        self.host_keys = [hostkeys.describe(k) for k in keys]
        self.announced_keys = [hostkeys.describe(k) for k in staged]
        self.audit = AuditLog(self.audit_path, self.clock)
        self.pickup = Pickup(self.inbox, self.audit, self.data_dir, settings.pickup_quiet_seconds)
        self.pickup.listeners = self.pickup_listeners
        await self._recover_leftovers()
        for service in [*([self.worker] if self.worker else []), *self.services]:
            await service.start(self)
            self._started_services.append(service)
        lockout = Lockout(settings.lockout_attempts, settings.lockout_seconds)
        passwords = self._passwords = PasswordCache()
        handles = Handles(settings.max_handles_per_session,
                          total_limit(settings.max_open_handles, descriptor_limit()))
        for region, port in ((Region.US, settings.port), (Region.EU, settings.eu_port)):
            endpoint = Endpoint(
                region=region, settings=settings, conn=self.conn, audit=self.audit,
                pickup=self.pickup, lockout=lockout, passwords=passwords, handles=handles,
            )
            self.endpoints[region] = endpoint
            await endpoint.start(settings.host, port, keys, staged)
            self.audit.event("listen", region=str(region), host=settings.host, port=endpoint.port)
            log.info("listening for %s on %s:%d", region, settings.host, endpoint.port)

    async def _recover_leftovers(self) -> None:
        """What a server that did not stop cleanly left behind. Uploads it had
        handed over (in the spool) are recorded as they were meant to be.
        Files left in a drop folder: those it had seen closed cleanly (their
        mode says so, `layout.CLOSED_MODE`) are complete and picked up; the
        others were cut off by the crash and are recorded as incomplete
        (docs/production.md §2: a cut-off upload must never be processed). One entry that
        cannot be handled never stops the start: it is moved to
        DATA_DIR/quarantine/ and logged (`Pickup.quarantine`)."""
        assert self.conn is not None and self.pickup is not None
        conn, pickup = self.conn, self.pickup
        await pickup.recover_spool(lambda name: tenants_mod.get(conn, name))
        for tenant in tenants_mod.all_tenants(self.conn):
            drop = layout.drop_dir(self.data_dir, tenant)
            try:
                paths = sorted(drop.iterdir()) if drop.is_dir() else []
            except OSError as exc:
                log.error("the drop folder %s cannot be read (%s); its files wait for the next start",
                          drop, exc)
                continue
            for path in paths:
                try:
                    if not path.is_file() or path.is_symlink() or layout.is_temporary(path.name):
                        continue
                    if path.stat().st_mode & 0o777 == layout.CLOSED_MODE:
                        pickup.closed_before_crash(tenant, path.name, str(path))
                    else:
                        pickup.incomplete(
                            tenant, path.name, str(path), path.stat().st_size,
                            "left in the drop folder when the server stopped before pickup",
                        )
                except Exception as exc:  # one bad entry must not keep the server from starting
                    pickup.quarantine(tenant.name, path.name, path, exc)
        await pickup.drain()

    async def stop(self) -> None:
        """Stop listeners, hand pending uploads over, stop services. Idempotent."""
        if self._state in ("new", "stopped"):
            self._state = "stopped"
            return
        assert self._stop_lock is not None
        async with self._stop_lock:
            if self._state == "stopped":
                return
            try:
                for endpoint in self.endpoints.values():
                    await endpoint.stop()
                if self.pickup is not None:
                    await self.pickup.drain()
                for service in reversed(self._started_services):
                    try:
                        await service.stop()
                    except Exception:
                        log.exception("service %r failed to stop", service)
                self._started_services.clear()
            finally:
                if self.audit is not None:
                    self.audit.close()
                for conn in (self.conn, self._inbox_conn):
                    if conn is not None:
                        conn.close()
                if self._passwords is not None:
                    self._passwords.close()
                self._state = "stopped"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until `request_stop()` (or cancellation), then stop."""
        self._stop_event = asyncio.Event()
        try:
            await self._stop_event.wait()
        finally:
            await self.stop()

    # -- background thread ----------------------------------------------------

    def start_in_thread(self, timeout: float = 30.0) -> Self:
        """Start on a private event loop in a daemon thread; return once listening."""
        if self._thread is not None:
            raise ServerError("this sandbox already runs in a thread")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_until_complete(self.serve_forever())
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="bwsandbox", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise ServerError(f"the sandbox did not start within {timeout:g} s")
        if failure:
            self._thread.join(timeout)
            self._thread = None
            raise failure[0]
        return self

    def call(self, fn: Callable[[], T] | Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a function or coroutine on the sandbox's loop; return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise ServerError("the sandbox is not running in a thread")

        async def invoke() -> T:
            if asyncio.iscoroutine(fn):
                return await fn
            result = fn()
            if isinstance(result, Awaitable):
                return await result  # type: ignore[no-any-return]
            return result

        future = asyncio.run_coroutine_threadsafe(invoke(), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError as exc:
            raise ServerError(f"sandbox call timed out after {timeout:g} s") from exc

    def settle(self, conn: sqlite3.Connection, timeout: float = 30.0) -> None:
        """From another thread (`conn` is that thread's store connection): hand
        over every upload the pickup still holds, then wait until no file is
        queued or processing and the worker has finished the last one (or
        `timeout` passed: the queue delay is the caller's setting).

        The worker notifies `file_events` after each file it finishes, so
        this sleeps until then, never on a timer. Each wait is capped
        (UNANNOUNCED_CHECK_SECONDS) only for a change no event announces: a
        file deleted by another process (`bwsandbox tenant delete` against
        this data dir)."""
        assert self.pickup is not None
        self.call(self.pickup.drain(), timeout=timeout)
        if self.audit is not None:
            self.audit.flush()  # what the drain recorded, before anyone reads the log back
        deadline = time.monotonic() + timeout
        while True:
            seen = self.file_events.version  # before the look: a change in between wakes the wait
            remaining = deadline - time.monotonic()
            if not files.pending_count(conn) or remaining <= 0:
                break
            self.file_events.wait(seen, min(remaining, UNANNOUNCED_CHECK_SECONDS))
        if self.worker is not None:
            self.worker.between_files()

    def request_stop(self) -> None:
        """Ask `serve_forever` to return (thread-safe)."""
        event, loop = self._stop_event, self._loop
        if event is None:
            return
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(event.set)
        else:
            event.set()

    def stop_in_thread(self, timeout: float = 30.0) -> None:
        """Stop the background sandbox and join its thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        loop = self._loop
        if loop is not None and not loop.is_closed():
            # serve_forever may not have created its event yet: wait for it
            def _set() -> None:
                if self._stop_event is not None:
                    self._stop_event.set()
                else:
                    loop.call_later(0.01, _set)

            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_set)
        thread.join(timeout)
        if thread.is_alive():
            raise ServerError(f"the sandbox did not stop within {timeout:g} s")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start_in_thread()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_in_thread()


def ensure_demo_tenant(conn: sqlite3.Connection, clock: Clock) -> tuple[str, str, bool]:
    """On a fresh data dir, create the demo tenant; return (username, password, created).

    The demo password is kept in the store's meta table so `serve` can show
    it on every start (it is a sandbox credential, nothing else)."""
    existing = store.get_meta(conn, "demo_password")
    if existing:
        return DEMO_USERNAME, existing, False
    if tenants_mod.all_tenants(conn):
        return "", "", False  # the user set up their own tenants: no demo
    password = secrets.token_urlsafe(12)
    with store.transaction(conn):
        tenants_mod.add(
            conn, name=DEMO_TENANT, username=DEMO_USERNAME, password=password,
            contact="hris-admin@example.com", created_at=clock.iso(),
        )
        store.set_meta(conn, "demo_password", password)
    return DEMO_USERNAME, password, True


__all__ = ["DEMO_TENANT", "Sandbox", "Service", "ensure_demo_tenant"]
