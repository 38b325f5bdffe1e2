"""One SSH listener per region (SPEC §2: `us` and `eu`, each with its own tenants).

`Endpoint` is the state shared by the connections of one listener: settings,
a store connection for tenant look-ups, the audit log, the lockout table,
the live sessions, the open uploads and the pickup. It starts and stops the
asyncssh acceptor; `bwsandbox.sandbox.Sandbox` owns the endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

from bwsandbox.config import Settings
from bwsandbox.errors import ServerError
from bwsandbox.server import compat, hostkeys
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.auth import Lockout, PasswordCache, SandboxSSHServer, Session
from bwsandbox.server.pickup import Pickup
from bwsandbox.server.sftp import SandboxSFTPServer
from bwsandbox.tenants import Region

if TYPE_CHECKING:
    from bwsandbox.server.sftp import _Upload

log = logging.getLogger("bwsandbox.server")

SERVER_VERSION = "bwsandbox"  # the software version part of the SSH banner


class Endpoint:
    def __init__(
        self,
        *,
        region: Region,
        settings: Settings,
        conn: sqlite3.Connection,
        audit: AuditLog,
        pickup: Pickup,
        lockout: Lockout,
        passwords: PasswordCache,
    ) -> None:
        self.region = region
        self.settings = settings
        self.data_dir: Path = settings.data_dir
        self.conn = conn
        self.audit = audit
        self.pickup = pickup
        self.lockout = lockout
        self.passwords = passwords
        self.open_uploads: dict[str, _Upload] = {}
        self._connections: set[Session] = set()
        self._per_tenant: Counter[str] = Counter()
        self._sessions: set[Session] = set()
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._reaper: asyncio.Task[None] | None = None
        self.host = settings.host
        self.port = 0

    # -- sessions -----------------------------------------------------------

    def connection_made(self, session: Session) -> None:
        self._connections.add(session)

    def session_started(self, session: Session) -> None:
        assert session.tenant is not None
        if session not in self._sessions:
            self._sessions.add(session)
            self._per_tenant[session.tenant.name] += 1

    def session_ended(self, session: Session) -> None:
        self._connections.discard(session)
        if session in self._sessions:
            self._sessions.discard(session)
            assert session.tenant is not None
            self._per_tenant[session.tenant.name] -= 1
        self.pickup.session_ended(session)

    def sessions_of(self, tenant: str) -> int:
        return self._per_tenant[tenant]

    def sftp_session(self) -> compat.SFTPOnlySession:
        """The session channel a client opens: SFTP only (server/compat.py)."""
        return compat.SFTPOnlySession(lambda chan: SandboxSFTPServer(chan, self))

    # -- lifecycle ----------------------------------------------------------

    async def start(self, host: str, port: int, host_keys: list[asyncssh.SSHKey],
                    announce: list[asyncssh.SSHKey]) -> int:
        def server_factory() -> asyncssh.SSHServer:
            server = SandboxSSHServer(self)
            return server

        try:
            self._acceptor = await asyncssh.listen(
                host,
                port,
                server_factory=server_factory,
                server_host_keys=hostkeys.keypairs(host_keys + announce),
                send_server_host_keys=bool(announce),
                line_editor=False,  # SFTP only: no line-editing wrapper around every channel write
                server_version=SERVER_VERSION,
                backlog=512,  # 100+ clients connecting at once (issue #3)
                reuse_address=True,
                login_timeout=min(120.0, self.settings.idle_timeout),
            )
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port} ({self.region}): {exc}") from exc
        self.host = host
        self.port = self._acceptor.get_port()
        self._reaper = asyncio.ensure_future(self._reap_idle())
        return self.port

    async def _reap_idle(self) -> None:
        """Disconnect sessions idle for longer than `idle_timeout`."""
        timeout = self.settings.idle_timeout
        if timeout <= 0:
            return
        while True:
            await asyncio.sleep(min(timeout / 4, 5.0))
            now = time.monotonic()
            for session in list(self._sessions):
                if now - session.last_activity > timeout:
                    self.audit.event("idle-timeout", session=session.id, peer=session.peer)
                    log.info("closing idle session %d from %s", session.id, session.peer)
                    session.conn.disconnect(
                        asyncssh.DISC_BY_APPLICATION, f"Idle for more than {timeout:g} s"
                    )

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        # Python 3.11's Server.wait_closed does not wait for connections: close them.
        connections = [s.conn for s in self._connections]
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5.0)
