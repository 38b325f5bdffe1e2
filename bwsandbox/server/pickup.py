"""Pickup: each complete upload handed to the Inbox exactly once.

Production processes a file "as soon as possible" once it is made available
(docs/production.md §5): a file is available when its upload is complete, not when the
client's session ends. Jobs often stay connected (paramiko, Node's
ssh2-sftp-client and FileZilla keep their sessions open; a job lists
/reports or polls for its result, or sends several files in one session),
so completion is a property of the file alone:

- a closed upload becomes *pending*, and is handed over once the file itself
  has been left alone for `pickup_quiet_seconds`: only a setstat on it (or a
  rename, which makes the new name pending) restarts that short window, which
  exists for the clients that touch a file after closing it (docs/server.md
  "Pickup": rclone sets the mtime *after* close and fails if the file is
  gone; paramiko stats it after close; WinSCP renames, then sets times).
  Whatever else the session does (listing, stats, other uploads) does not
  delay it. A file set-stat'ed over and over is still taken MAX_WAIT_SECONDS
  after its close at the latest;
- as soon as its session ends (nothing can touch it any more);
- right before the same name is overwritten (a new open for writing or a
  rename onto it), so every complete upload is handed over once.

Handing over renames the file out of the tenant tree into
DATA_DIR/spool/<tenant>/<complete|incomplete>/ at once (on the event loop: one
rename(2), so the name is free immediately), then calls the Inbox from a
thread (it hashes and moves the file). The spool path says whose upload it is
and whether it was complete, so a server killed between the rename and the
Inbox's commit hands it over at the next start (`recover_spool`): a received
file is never lost, and never recorded twice.

A cut-off upload (the client vanished before closing, or the file went over
the size limit) goes to `Inbox.incomplete` right away: never processed
(docs/production.md §2).

Any name fits (docs/security.md "No crash loop"): a spool file name
is a 33-byte stamp plus the upload's name, shortened (`layout.fit_name`)
when together they would pass the file system's 255 bytes; the real name is
then written first to `spool/<tenant>/names/<stamp>`. At start-up an entry
that cannot be recorded is moved to DATA_DIR/quarantine/ with one log line
(a full disk aside: that one stays for the next start), never stopping the
start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bwsandbox import layout
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.session import Session
from bwsandbox.store import retryable
from bwsandbox.tenants import Tenant

log = logging.getLogger("bwsandbox.server")


class Inbox(Protocol):
    """The three calls the pickup makes of the queue (`bwsandbox.ingest.queue.Inbox`,
    handed to it by the sandbox): the server hands files over and never reads
    the queue, so it names what it calls instead of importing ingest."""

    def received(self, tenant: Tenant, name: str, path: Path) -> int: ...
    def incomplete(self, tenant: Tenant, name: str, path: Path, bytes_received: int, reason: str) -> int: ...
    def recover(self, tenant: Tenant, name: str, path: Path, incomplete: str | None) -> int | None: ...


@dataclass(slots=True, eq=False)
class Pending:
    tenant: Tenant
    name: str
    local: str
    session: Session | None  # None: recovered at start-up
    closed: float  # when the upload was closed (or renamed to this name)
    touched: float  # the last operation on the file itself (a setstat)


# Called with (state, tenant, name, file_id) after each handover: "queued" or
# "incomplete". Runs on the event loop; keep it cheap.
PickupListener = Callable[[str, Tenant, str, int], None]

# Spool folders: uploads confirmed complete, and cut-off ones.
COMPLETE = "complete"
INCOMPLETE = "incomplete"
_UUID_PREFIX = 33  # "<20-digit time_ns><12 hex digits>-"
NAMES = "names"  # spool/<tenant>/names/<stamp>: the real name of an upload spooled under a shortened one
SPOOL_REASON = "cut off (the server stopped before recording it; found in the spool at start-up)"

# A file set-stat'ed again and again is still taken this long after its close.
MAX_WAIT_SECONDS = 30.0


class Pickup:
    def __init__(self, inbox: Inbox, audit: AuditLog, data_dir: Path, quiet: float) -> None:
        self._inbox = inbox
        self._audit = audit
        self._spool = data_dir / "spool"
        self._quarantine = data_dir / "quarantine"
        self._spool.mkdir(parents=True, exist_ok=True)
        self._quiet = quiet
        self._pending: dict[str, Pending] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}  # by local path
        self._tasks: set[asyncio.Task[None]] = set()
        # One tenant's handovers reach the Inbox in the order they were made
        # (its queue is in arrival order, docs/production.md §5): asyncio.Lock wakes its
        # waiters first come, first served, and each delivery task asks for
        # the lock as its first step, in the order the tasks were created.
        self._order: dict[str, asyncio.Lock] = {}
        self.listeners: list[PickupListener] = []

    # -- complete uploads ---------------------------------------------------
    # The window is the *file's* (docs/production.md §5): what the rest of its session does
    # never holds a complete file back.

    def complete(self, tenant: Tenant, name: str, local: str, session: Session) -> None:
        """A complete upload was closed (or renamed) under a final name: pick it up soon."""
        now = time.monotonic()
        self._pending[local] = Pending(
            tenant=tenant, name=name, local=local, session=session, closed=now, touched=now
        )
        self._arm(local, self._quiet)

    def touch(self, local: str) -> None:
        """A setstat on a pending file: its client is still finishing it."""
        entry = self._pending.get(local)
        if entry is not None:
            entry.touched = time.monotonic()

    def cancel(self, local: str) -> Pending | None:
        """The client removed (or renamed away) a pending file."""
        self._disarm(local)
        return self._pending.pop(local, None)

    def take_now(self, local: str) -> bool:
        """Hand a pending file over now (e.g. before its name is reused).
        Returns whether there was one."""
        self._disarm(local)
        entry = self._pending.pop(local, None)
        if entry is None:
            return False
        self._handover(entry)
        return True

    def closed_before_crash(self, tenant: Tenant, name: str, local: str) -> None:
        """Start-up: a drop-folder file the server had seen closed cleanly."""
        self._handover(Pending(tenant=tenant, name=name, local=local, session=None, closed=0.0, touched=0.0))

    def session_ended(self, session: Session) -> None:
        for entry in [e for e in self._pending.values() if e.session is session]:
            self.take_now(entry.local)

    def _arm(self, local: str, delay: float) -> None:
        self._disarm(local)
        loop = asyncio.get_running_loop()
        self._timers[local] = loop.call_later(delay, self._check, local)

    def _disarm(self, local: str) -> None:
        timer = self._timers.pop(local, None)
        if timer is not None:
            timer.cancel()

    def _check(self, local: str) -> None:
        self._timers.pop(local, None)
        entry = self._pending.get(local)
        if entry is None:
            return
        now = time.monotonic()
        left = min(self._quiet - (now - entry.touched), MAX_WAIT_SECONDS - (now - entry.closed))
        if left <= 0:
            self.take_now(local)
        else:
            self._arm(local, left)

    def _handover(self, entry: Pending) -> None:
        spooled = self._spool_file(entry.tenant, entry.local, entry.name, COMPLETE)
        if spooled is None:
            self._audit.event("pickup-lost", tenant=entry.tenant.name, name=entry.name)
            return
        self._start(self._deliver(entry.tenant, entry.name, spooled))

    # -- cut-off uploads ----------------------------------------------------

    def incomplete(self, tenant: Tenant, name: str, local: str, size: int, reason: str) -> None:
        self.cancel(local)
        spooled = self._spool_file(tenant, local, name, INCOMPLETE)
        if spooled is not None:
            self._start(self._deliver_incomplete(tenant, name, spooled, size, reason))

    # -- plumbing -----------------------------------------------------------

    def _spool_file(self, tenant: Tenant, local: str, name: str, kind: str) -> Path | None:
        folder = self._spool / tenant.name / kind
        # Time first: a restart recovers a tenant's files in the order they came.
        stamp = f"{time.time_ns():020d}{uuid.uuid4().hex[:12]}"
        short = layout.fit_name(name, _UUID_PREFIX)
        target = folder / f"{stamp}-{short}"
        if short != name:  # the real name first: a crash right after the rename keeps it
            names = self._spool / tenant.name / NAMES
            names.mkdir(parents=True, exist_ok=True)
            (names / stamp).write_bytes(name.encode("utf-8", "surrogateescape"))
        try:
            os.rename(local, target)
        except FileNotFoundError:
            self._forget_name(target)
            if os.path.lexists(local):  # the tenant's first upload: no folder yet
                folder.mkdir(parents=True, exist_ok=True)
                return self._spool_file(tenant, local, name, kind)
            return None
        return target

    def _forget_name(self, spooled: Path) -> None:
        """The spooled upload is recorded (or gone): its name sidecar goes too."""
        (spooled.parent.parent / NAMES / spooled.name[: _UUID_PREFIX - 1]).unlink(missing_ok=True)

    def quarantine(self, tenant: str, name: str, path: Path, why: object) -> None:
        """Start-up: an entry that cannot be recorded is moved aside, with one
        log line, so it neither stops the start nor fails it again next time."""
        target = self._quarantine / tenant / f"{time.time_ns():020d}-{layout.fit_name(name, 21)}"
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        except OSError as exc:
            log.error("%s/%s (%s) cannot be recorded (%s) nor moved aside (%s); skipped",
                      tenant, name, path, why, exc)
            return
        log.error("%s/%s cannot be recorded (%s); moved to %s", tenant, name, why, target)
        self._audit.event("quarantined", tenant=tenant, name=name, error=str(why), path=str(target))

    async def recover_spool(self, tenant_named: Callable[[str], Tenant | None]) -> int:
        """Hand over what a killed server left in the spool; returns how many.

        Each spooled file was a complete (or a cut-off) upload taken out of a
        drop folder; the Inbox records it unless it already had (a crash after
        its commit, before it unlinked the spool copy)."""
        found = 0
        for tenant, name, path, reason in self._spooled(tenant_named):
            try:
                file_id = await asyncio.to_thread(self._inbox.recover, tenant, name, path, reason)
            except Exception as exc:  # one bad file must not keep the server from starting
                self._audit.event("pickup-failed", tenant=tenant.name, name=name, error=str(exc))
                if retryable(exc) is not None:
                    log.error("recovering %s from the spool failed (%s); tried again at the next start",
                              path, exc)
                else:
                    self.quarantine(tenant.name, name, path, exc)
                    self._forget_name(path)
                continue
            self._forget_name(path)
            if file_id is None:
                continue
            found += 1
            state = "queued" if reason is None else "incomplete"
            self._audit.event("pickup-recovered", tenant=tenant.name, name=name, file_id=file_id, state=state)
            log.warning("recovered %s/%s from the spool as file #%d (%s)", tenant.name, name, file_id, state)
            self._notify(state, tenant, name, file_id)
        return found

    def _spooled(
        self, tenant_named: Callable[[str], Tenant | None]
    ) -> Iterator[tuple[Tenant, str, Path, str | None]]:
        """(tenant, name, path, incomplete reason or None) of each spooled
        upload, tenant by tenant, in the order they were spooled."""
        for tenant_dir in sorted(p for p in self._spool.iterdir() if p.is_dir()):
            tenant = tenant_named(tenant_dir.name)
            if tenant is None:
                log.warning("spool: %s belongs to no tenant; left for inspection", tenant_dir)
                continue
            names = tenant_dir / NAMES
            for kind, reason in ((COMPLETE, None), (INCOMPLETE, SPOOL_REASON)):
                folder = tenant_dir / kind
                paths = sorted(folder.iterdir()) if folder.is_dir() else []
                for path in paths:
                    if path.is_file() and len(path.name) > _UUID_PREFIX:
                        sidecar = names / path.name[: _UUID_PREFIX - 1]
                        name = (sidecar.read_bytes().decode("utf-8", "surrogateescape") if sidecar.is_file()
                                else path.name[_UUID_PREFIX:])
                        yield tenant, name, path, reason

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _in_order(self, tenant: Tenant) -> asyncio.Lock:
        return self._order.setdefault(tenant.name, asyncio.Lock())

    async def _deliver(self, tenant: Tenant, name: str, path: Path) -> None:
        async with self._in_order(tenant):
            await self._deliver_now(tenant, name, path)

    async def _deliver_now(self, tenant: Tenant, name: str, path: Path) -> None:
        size = path.stat().st_size
        try:
            file_id = await asyncio.to_thread(self._inbox.received, tenant, name, path)
        except Exception as exc:  # the file stays in the spool: recovered at the next start
            log.exception("pickup of %s/%s failed", tenant.name, name)
            self._audit.event("pickup-failed", tenant=tenant.name, name=name, error=str(exc))
            return
        self._forget_name(path)
        self._audit.event("pickup", tenant=tenant.name, name=name, bytes=size, file_id=file_id)
        log.info("picked up %s/%s (%d bytes) as file #%d", tenant.name, name, size, file_id)
        self._notify("queued", tenant, name, file_id)

    async def _deliver_incomplete(
        self, tenant: Tenant, name: str, path: Path, size: int, reason: str
    ) -> None:
        async with self._in_order(tenant):
            await self._record_incomplete(tenant, name, path, size, reason)

    async def _record_incomplete(
        self, tenant: Tenant, name: str, path: Path, size: int, reason: str
    ) -> None:
        try:
            file_id = await asyncio.to_thread(self._inbox.incomplete, tenant, name, path, size, reason)
        except Exception as exc:
            log.exception("recording incomplete %s/%s failed", tenant.name, name)
            self._audit.event("incomplete-failed", tenant=tenant.name, name=name, error=str(exc))
            return
        self._forget_name(path)
        self._audit.event(
            "incomplete", tenant=tenant.name, name=name, bytes=size, reason=reason, file_id=file_id
        )
        log.warning("incomplete upload %s/%s (%d bytes): %s", tenant.name, name, size, reason)
        self._notify("incomplete", tenant, name, file_id)

    def _notify(self, state: str, tenant: Tenant, name: str, file_id: int) -> None:
        for listener in list(self.listeners):
            try:
                listener(state, tenant, name, file_id)
            except Exception:
                log.exception("pickup listener failed")

    async def drain(self) -> None:
        """Hand over everything pending and wait for the Inbox (clean stop)."""
        for local in list(self._pending):
            self.take_now(local)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
