"""Who may log in: one asyncssh `SSHServer` per connection (issue #3).

- Password, and keyboard-interactive answered with the same password: psftp
  and FileZilla log in via keyboard-interactive (CLIENTS.md pitfall 5); asyncssh
  maps it onto `validate_password` because `kbdint_auth_supported` is left alone.
- Public keys, when the tenant has authorized keys.
- At most `max_auth_attempts` failures per connection, then a disconnect
  "Too many authentication failures" as OpenSSH's MaxAuthTries does (asyncssh
  has no such limit, pitfall 4).
- A source address with `lockout_attempts` failed logins within
  `lockout_seconds` is refused for `lockout_seconds` (one clear log line).
- At most `max_sessions_per_tenant` connections per tenant at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import asyncssh

from bwsandbox import faults
from bwsandbox import tenants as tenants_mod
from bwsandbox.tenants import Tenant

if TYPE_CHECKING:
    from bwsandbox.server.listener import Endpoint

log = logging.getLogger("bwsandbox.server")

_session_ids = itertools.count(1)


@dataclass(slots=True, eq=False)
class Session:
    """One authenticated SSH connection, shared with its SFTP sessions."""

    id: int
    peer: str
    conn: asyncssh.SSHServerConnection
    tenant: Tenant | None = None
    last_activity: float = field(default_factory=time.monotonic)
    stall: float = 0.0  # seconds each authentication answer and SFTP reply waits (a `stall` fault)


class Lockout:
    """Failed logins per source address; locks an address for a while."""

    def __init__(self, attempts: int, seconds: float) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def remaining(self, address: str) -> float:
        until = self._locked_until.get(address, 0.0)
        left = until - time.monotonic()
        if left <= 0 and address in self._locked_until:
            del self._locked_until[address]
            self._failures.pop(address, None)
        return max(left, 0.0)

    def failure(self, address: str) -> bool:
        """Record one failure; True when this failure locks the address."""
        if self.attempts <= 0:
            return False
        now = time.monotonic()
        recent = self._failures.setdefault(address, deque())
        recent.append(now)
        while recent and recent[0] < now - self.seconds:
            recent.popleft()
        if len(recent) >= self.attempts:
            self._locked_until[address] = now + self.seconds
            return True
        return False

    def success(self, address: str) -> None:
        self._failures.pop(address, None)


class PasswordCache:
    """Remembers passwords already verified, so a returning client does not pay
    scrypt (~50 ms of CPU) on every login: connect+login latency matters to the
    benchmark and to integrators' CI. Keyed by an HMAC with a per-process
    secret, so the cache never holds a password."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._ok: set[tuple[str, bytes]] = set()

    def _key(self, stored: str, password: str) -> tuple[str, bytes]:
        return stored, hmac.new(self._secret, password.encode(), hashlib.sha256).digest()

    async def verify(self, tenant: Tenant, password: str) -> bool:
        key = self._key(tenant.password_hash, password)
        if key in self._ok:
            return True
        ok = await asyncio.to_thread(tenant.check_password, password)
        if ok:
            self._ok.add(key)
        return ok


class SandboxSSHServer(asyncssh.SSHServer):
    def __init__(self, endpoint: Endpoint, *, stall: float = 0.0) -> None:
        self._endpoint = endpoint
        self._failures = 0
        self._session: Session | None = None
        self._stall = stall  # an endpoint's `stall` fault that fired for this connection

    # -- connection ---------------------------------------------------------

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername") or ("?", 0)
        self._session = Session(id=next(_session_ids), peer=str(peer[0]), conn=conn, stall=self._stall)
        conn.set_extra_info(bwsandbox_session=self._session)
        self._endpoint.connection_made(self._session)
        self._endpoint.audit.event(
            "connect", region=self._endpoint.region, session=self._session.id, peer=self._session.peer
        )

    def connection_lost(self, exc: Exception | None) -> None:
        session = self._session
        if session is None:
            return
        self._endpoint.session_ended(session)
        self._endpoint.audit.event(
            "disconnect",
            region=self._endpoint.region,
            session=session.id,
            tenant=session.tenant.name if session.tenant else None,
            reason=str(exc) if exc else "",
        )

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        # SFTP only, served by the sandbox's own session (server/compat.py)
        return self._endpoint.sftp_session()

    # -- authentication -----------------------------------------------------

    def begin_auth(self, username: str) -> bool:
        assert self._session is not None
        left = self._endpoint.lockout.remaining(self._session.peer)
        if left > 0:
            self._endpoint.audit.event(
                "auth", result="locked-out", session=self._session.id,
                peer=self._session.peer, username=username,
            )
            log.warning("lockout: refusing %s (locked for %.0f more s)", self._session.peer, left)
            raise asyncssh.PermissionDenied(
                f"Too many failed logins from {self._session.peer}: try again in {left:.0f} s"
            )
        return True  # always ask: an unknown user must not be told apart

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        tenant = self._tenant(username)
        ok = tenant is not None and await self._endpoint.passwords.verify(tenant, password)
        result = self._result(username, tenant if ok else None, "password")
        assert self._session is not None
        if self._session.stall:
            await asyncio.sleep(self._session.stall)  # a `stall` fault: the answer waits
        return result

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        tenant = self._tenant(username)
        ok = False
        if tenant is not None and tenant.authorized_keys.strip():
            wanted = key.public_data
            for line in tenant.authorized_keys.splitlines():
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    if asyncssh.import_public_key(line).public_data == wanted:
                        ok = True
                        break
                except (asyncssh.KeyImportError, ValueError):
                    continue
        # A rejected key is a probe, not a wrong password: it counts toward the
        # per-connection limit (as in OpenSSH) but never toward the lockout.
        return self._result(username, tenant if ok else None, "publickey", lockout=False)

    def _login_allowed(self, tenant: Tenant) -> bool:
        """The tenant's login faults (bwsandbox/faults.py), once per connection:
        False for `refuse-login`; `unavailable` disconnects; `stall` slows the
        rest of the session."""
        session, endpoint = self._session, self._endpoint
        assert session is not None
        fault = faults.fire(endpoint.conn, moment=faults.Moment.LOGIN, region=str(endpoint.region),
                            tenant=tenant.name)
        if fault is None:
            return True
        endpoint.audit.event("fault", kind=str(fault.kind), fault=fault.id, session=session.id,
                             peer=session.peer, tenant=tenant.name)
        log.info("fault %s fired for tenant %s (session %d)", fault.kind, tenant.name, session.id)
        if fault.kind is faults.FaultKind.UNAVAILABLE:
            raise asyncssh.DisconnectError(asyncssh.DISC_SERVICE_NOT_AVAILABLE, "Service unavailable")
        if fault.kind is faults.FaultKind.STALL:
            session.stall = max(session.stall, fault.delay_ms / 1000)
        return fault.kind is not faults.FaultKind.REFUSE_LOGIN

    def _tenant(self, username: str) -> Tenant | None:
        return tenants_mod.by_username(self._endpoint.conn, self._endpoint.region, username)

    def _result(self, username: str, tenant: Tenant | None, method: str, *, lockout: bool = True) -> bool:
        session = self._session
        assert session is not None
        endpoint = self._endpoint
        if tenant is not None and session.tenant is None and not self._login_allowed(tenant):
            tenant = None  # a `refuse-login` fault: the right password, refused
        if tenant is None:
            self._failures += 1
            locked = lockout and endpoint.lockout.failure(session.peer)
            endpoint.audit.event(
                "auth", result="failed", method=method, session=session.id,
                peer=session.peer, username=username,
            )
            if locked:
                log.warning(
                    "lockout: %s locked for %.0f s after %d failed logins",
                    session.peer, endpoint.lockout.seconds, endpoint.lockout.attempts,
                )
                endpoint.audit.event("lockout", peer=session.peer, seconds=endpoint.lockout.seconds)
                raise asyncssh.PermissionDenied("Too many failed logins: source address locked out")
            if self._failures >= endpoint.settings.max_auth_attempts:
                endpoint.audit.event("auth", result="too-many", session=session.id, peer=session.peer)
                raise asyncssh.PermissionDenied("Too many authentication failures")
            return False
        if session.tenant is not None and session.tenant.name == tenant.name:
            # asyncssh asks twice for one public key (probe, then signature)
            return True
        active = endpoint.sessions_of(tenant.name)
        if active >= endpoint.settings.max_sessions_per_tenant:
            endpoint.audit.event(
                "auth", result="too-many-sessions", session=session.id, tenant=tenant.name, active=active
            )
            raise asyncssh.DisconnectError(
                asyncssh.DISC_TOO_MANY_CONNECTIONS,
                f"Too many sessions for this account (max {endpoint.settings.max_sessions_per_tenant})",
            )
        endpoint.lockout.success(session.peer)
        session.tenant = tenant
        endpoint.session_started(session)
        endpoint.audit.event(
            "auth", result="ok", method=method, session=session.id, peer=session.peer, tenant=tenant.name
        )
        return True


def session_of(conn: Any) -> Session:
    session = conn.get_extra_info("bwsandbox_session")
    assert isinstance(session, Session)
    return session
