"""One SSH listener per region (docs/production.md §2: `us` and `eu`, each with its own tenants).

`Endpoint` is the state shared by the connections of one listener: settings,
a store connection for tenant look-ups, the audit log, the lockout table,
the live sessions, the open uploads and handles, and the pickup;
`bwsandbox.sandbox.Sandbox` owns the endpoints.

The endpoint owns its listening sockets and accepts connections itself, then
hands each one to asyncssh with `asyncssh.run_server` (public API for "an
already-connected socket"). Between the two it can act on the connection as
production's bad days would (bwsandbox/faults.py): close it at once, delay
the banner, or present other host keys, per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import socket
import sqlite3
import time
from collections import Counter
from pathlib import Path

import asyncssh

from bwsandbox import faults
from bwsandbox.config import Settings
from bwsandbox.errors import ServerError
from bwsandbox.server import compat, hostkeys
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.auth import Lockout, PasswordCache, SandboxSSHServer
from bwsandbox.server.handles import Handles
from bwsandbox.server.pickup import Pickup
from bwsandbox.server.session import Session
from bwsandbox.server.sftp import SandboxSFTPServer, _Upload
from bwsandbox.tenants import Region

log = logging.getLogger("bwsandbox.server")

SERVER_VERSION = "bwsandbox"  # the software version part of the SSH banner
# OpenSSH's LoginGraceTime: a connection not logged in by then is closed. Not
# tied to idle_timeout: a login pays scrypt (~0.2 s) and a short idle
# timeout must not cut it off.
LOGIN_GRACE_SECONDS = 120.0
# The ciphers offered: AES only. Every client here speaks AES-CTR (curl's
# libssh2 1.10 has no GCM), and OpenSSH then picks aes128-ctr. asyncssh's
# chacha20-poly1305, OpenSSH's first choice, costs several calls into
# cryptography per SSH packet where AES costs one: measured here, 1.4-2x the
# server's CPU per small file and ~1.3x per MiB of a bulk upload
# (docs/benchmarks.md). Clients behave the same with either; a public option.
CIPHERS = (
    "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes192-ctr", "aes256-ctr",
)


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
        handles: Handles,
    ) -> None:
        self.region = region
        self.settings = settings
        self.data_dir: Path = settings.data_dir
        self.conn = conn
        self.audit = audit
        self.pickup = pickup
        self.lockout = lockout
        self.passwords = passwords
        self.handles = handles  # shared by the listeners: one process, one descriptor table
        self.open_uploads: dict[str, _Upload] = {}
        self._connections: set[Session] = set()
        self._per_tenant: Counter[str] = Counter()
        self._sessions: set[Session] = set()
        self._sockets: list[socket.socket] = []
        self._accepting: list[asyncio.Future[None]] = []
        self._starting: set[asyncio.Future[None]] = set()  # connections not yet handed to asyncssh
        self._options: asyncssh.SSHServerConnectionOptions | None = None
        self._impostors: list[asyncssh.SSHKeyPair] | None = None
        self._announce = False
        self._last_refusal_log = 0.0
        self._startups: Counter[str] = Counter()  # connections not logged in yet, per address
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
        self.handles.session_ended(session)
        self.pickup.session_ended(session)

    def sessions_of(self, tenant: str) -> int:
        return self._per_tenant[tenant]

    def sftp_session(self) -> compat.SFTPOnlySession:
        """The session channel a client opens: SFTP only (server/compat.py)."""
        return compat.SFTPOnlySession(lambda chan: SandboxSFTPServer(chan, self))

    # -- lifecycle ----------------------------------------------------------

    async def start(self, host: str, port: int, host_keys: list[asyncssh.SSHKey],
                    announce: list[asyncssh.SSHKey]) -> int:
        self._options = asyncssh.SSHServerConnectionOptions(
            server_factory=functools.partial(SandboxSSHServer, self),
            server_host_keys=hostkeys.keypairs(host_keys + announce),
            send_server_host_keys=bool(announce),
            line_editor=False,  # SFTP only: no line-editing wrapper around every channel write
            encryption_algs=CIPHERS,
            server_version=SERVER_VERSION,
            login_timeout=LOGIN_GRACE_SECONDS,
        )
        try:
            self._sockets = await _listen(host, port)
        except OSError as exc:
            raise ServerError(f"cannot listen on {host}:{port} ({self.region}): {exc}") from exc
        self.host = host
        self.port = self._sockets[0].getsockname()[1]
        self._announce = bool(announce)
        self._accepting = [asyncio.ensure_future(self._accept(sock)) for sock in self._sockets]
        self._reaper = asyncio.ensure_future(self._reap_idle())
        return self.port

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(listening)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    raise
                # Out of descriptors: wait for some to close instead of spinning.
                log.warning("cannot accept a connection (%s); pausing for a second", exc.strerror)
                await asyncio.sleep(1.0)
                continue
            task = asyncio.ensure_future(self._serve(sock))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    def _admit(self, peer: str) -> str:
        """Why a new connection from `peer` is refused at once ("" if it is not):
        too many connections in all, or too many from it not logged in yet."""
        settings = self.settings
        if sum(self._startups.values()) + len(self._sessions) >= settings.max_connections:
            return f"{settings.max_connections} connections already open"
        if self._startups[peer] >= settings.max_startups_per_address:
            return f"{self._startups[peer]} connections from {peer} not logged in yet"
        return ""

    async def _serve(self, sock: socket.socket) -> None:
        """One connection: the limits, the endpoint's connection faults, then asyncssh."""
        peer = _peer(sock)
        refused = self._admit(peer)
        if refused:
            sock.close()
            now = time.monotonic()
            if now - self._last_refusal_log > 1.0:  # one line a second under a flood, not one per socket
                self._last_refusal_log = now
                log.warning("refusing connections from %s: %s", peer, refused)
                self.audit.event("refused", region=self.region, peer=peer, reason=refused)
            return
        self._startups[peer] += 1
        try:
            await self._start_connection(sock, peer)
        finally:
            self._startups[peer] -= 1
            if not self._startups[peer]:
                del self._startups[peer]

    async def _start_connection(self, sock: socket.socket, peer: str) -> None:
        """Until the login completes (or the connection ends before it)."""
        fault = faults.fire(self.conn, moment=faults.Moment.CONNECTION, region=str(self.region), tenant=None)
        options: dict[str, object] = {}
        if fault is not None:
            self.audit.event("fault", kind=str(fault.kind), fault=fault.id, region=self.region, peer=peer)
            log.info("fault %s fired for a connection from %s", fault.kind, peer)
            if fault.kind is faults.FaultKind.UNAVAILABLE:
                sock.close()  # closed at once: the client sees its connection reset or closed
                return
            if fault.kind is faults.FaultKind.STALL:
                await asyncio.sleep(fault.delay_ms / 1000)  # the banner waits, and so does the rest
                options["server_factory"] = functools.partial(
                    SandboxSSHServer, self, stall=fault.delay_ms / 1000
                )
            if fault.kind is faults.FaultKind.HOST_KEY:
                options["server_host_keys"] = await self._impostor_keys()
                options["send_server_host_keys"] = False
        try:
            conn = await asyncssh.run_server(sock, options=self._options, **options)
            if self._announce and fault is None:
                # asyncssh's listen() announces the host keys (hostkeys-00@openssh.com,
                # OpenSSH's UpdateHostKeys) right after login; run_server() returns
                # at login without doing so (asyncssh 2.24), so it is done here.
                conn.send_server_host_keys()
        except (TimeoutError, asyncssh.Error, OSError) as exc:
            # A login that failed or a client that left before it: the audit
            # log has its story (auth records); nothing for the server to do.
            log.debug("connection from %s ended before login: %s", peer, exc)

    async def _impostor_keys(self) -> list[asyncssh.SSHKeyPair]:
        """Made once per endpoint, in a thread (RSA takes a moment)."""
        if self._impostors is None:
            self._impostors = await asyncio.to_thread(hostkeys.impostors)
        return self._impostors

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
        for task in [*self._accepting, *self._starting]:
            task.cancel()
        for task in [*self._accepting, *self._starting]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._accepting = []
        for sock in self._sockets:
            sock.close()
        self._sockets = []
        connections = [s.conn for s in self._connections]
        for conn in connections:
            conn.close()
        for conn in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5.0)


async def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for every address of `host` (all interfaces when
    empty), on one port (port 0: the first socket's free port for all)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio does
            if port == 0 and len(sockets) > 1:
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            sock.listen(512)  # 100+ clients connecting at once
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return "?"
