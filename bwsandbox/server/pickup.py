"""Pickup: each complete upload handed to the Inbox exactly once (issue #3).

Why not at close (CLIENTS.md pitfall 2): rclone sets the mtime *after* close
and fails if the file is gone; paramiko stats it after close; WinSCP renames
then sets times. So a closed upload becomes *pending*, and is handed over

- after `pickup_quiet_seconds` without any further operation on it (setstat,
  rename... restart the wait), or
- as soon as the session that wrote it ends, or
- right before the same name is overwritten (a new open for writing or a
  rename onto it), so every complete upload is handed over once.

Handing over renames the file out of the tenant tree into DATA_DIR/spool at
once (on the event loop: one rename(2), so the name is free immediately), then
calls the Inbox from a thread (it hashes and moves the file).

A cut-off upload (the client vanished before closing, or the file went over
the size limit) goes to `Inbox.incomplete` right away: never processed
(SPEC §2).
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bwsandbox.ingest.queue import Inbox
from bwsandbox.server.audit import AuditLog
from bwsandbox.tenants import Tenant

log = logging.getLogger("bwsandbox.server")


@dataclass(slots=True, eq=False)
class Pending:
    tenant: Tenant
    name: str
    local: str
    session: int
    timer: asyncio.TimerHandle | None = None


# Called with (state, tenant, name, file_id) after each handover: "queued" or
# "incomplete". Runs on the event loop; keep it cheap.
PickupListener = Callable[[str, Tenant, str, int], None]


class Pickup:
    def __init__(self, inbox: Inbox, audit: AuditLog, data_dir: Path, quiet: float) -> None:
        self._inbox = inbox
        self._audit = audit
        self._spool = data_dir / "spool"
        self._spool.mkdir(parents=True, exist_ok=True)
        self._quiet = quiet
        self._pending: dict[str, Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.listeners: list[PickupListener] = []

    # -- complete uploads ---------------------------------------------------

    def complete(self, tenant: Tenant, name: str, local: str, session: int) -> None:
        """A complete upload was closed under a final name: pick it up soon."""
        old = self._pending.pop(local, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        entry = Pending(tenant=tenant, name=name, local=local, session=session)
        self._pending[local] = entry
        self._arm(entry)

    def is_pending(self, local: str) -> bool:
        return local in self._pending

    def touch(self, local: str) -> None:
        """Another operation on a pending file: wait for quiet again."""
        entry = self._pending.get(local)
        if entry is not None:
            self._arm(entry)

    def cancel(self, local: str) -> Pending | None:
        """The client removed (or renamed away) a pending file."""
        entry = self._pending.pop(local, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
        return entry

    def take_now(self, local: str) -> None:
        """Hand a pending file over before its name is reused."""
        entry = self.cancel(local)
        if entry is not None:
            self._handover(entry)

    def session_ended(self, session: int) -> None:
        for entry in [e for e in self._pending.values() if e.session == session]:
            self.take_now(entry.local)

    def _arm(self, entry: Pending) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
        loop = asyncio.get_running_loop()
        entry.timer = loop.call_later(self._quiet, self.take_now, entry.local)

    def _handover(self, entry: Pending) -> None:
        spooled = self._spool_file(entry.local, entry.name)
        if spooled is None:
            self._audit.event("pickup-lost", tenant=entry.tenant.name, name=entry.name)
            return
        self._start(self._deliver(entry.tenant, entry.name, spooled))

    # -- cut-off uploads ----------------------------------------------------

    def incomplete(self, tenant: Tenant, name: str, local: str, size: int, reason: str) -> None:
        self.cancel(local)
        spooled = self._spool_file(local, name)
        if spooled is not None:
            self._start(self._deliver_incomplete(tenant, name, spooled, size, reason))

    # -- plumbing -----------------------------------------------------------

    def _spool_file(self, local: str, name: str) -> Path | None:
        target = self._spool / f"{uuid.uuid4().hex}-{name}"
        try:
            os.rename(local, target)
        except FileNotFoundError:
            return None
        return target

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, tenant: Tenant, name: str, path: Path) -> None:
        size = path.stat().st_size
        try:
            file_id = await asyncio.to_thread(self._inbox.received, tenant, name, path)
        except Exception as exc:  # the file stays in the spool for inspection
            log.exception("pickup of %s/%s failed", tenant.name, name)
            self._audit.event("pickup-failed", tenant=tenant.name, name=name, error=str(exc))
            return
        self._audit.event("pickup", tenant=tenant.name, name=name, bytes=size, file_id=file_id)
        log.info("picked up %s/%s (%d bytes) as file #%d", tenant.name, name, size, file_id)
        self._notify("queued", tenant, name, file_id)

    async def _deliver_incomplete(
        self, tenant: Tenant, name: str, path: Path, size: int, reason: str
    ) -> None:
        try:
            file_id = await asyncio.to_thread(self._inbox.incomplete, tenant, name, path, size, reason)
        except Exception as exc:
            log.exception("recording incomplete %s/%s failed", tenant.name, name)
            self._audit.event("incomplete-failed", tenant=tenant.name, name=name, error=str(exc))
            return
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
