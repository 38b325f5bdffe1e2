"""Who may log in: one asyncssh `SSHServer` per connection.

- Password, and keyboard-interactive answered with the same password: psftp
  and FileZilla log in via keyboard-interactive (docs/server.md "Connecting with clients"); asyncssh
  maps it onto `validate_password` because `kbdint_auth_supported` is left alone.
- Public keys, when the tenant has authorized keys.
- At most `max_auth_attempts` failures per connection, then a disconnect
  "Too many authentication failures" as OpenSSH's MaxAuthTries does (asyncssh
  has no such limit, pitfall 4).
- Lockout: `lockout_attempts` failed logins within `lockout_seconds` from one
  source address, or for one account from anywhere, lock that address or
  account for `lockout_seconds`. Every attempt is judged, on any connection,
  whenever it was opened. Only a verified login (`auth_completed`: a checked
  password or a key whose signature verified) counts as a success, and it
  clears only its own account's count: another tenant's login from the same
  address, or a public-key query without a signature, changes nothing.
- A failed login takes the same time whether or not the user exists: an
  unknown user's password is checked against a dummy hash of the same cost.
- At most `max_sessions_per_tenant` connections per tenant at once; a
  session slot is taken when the login completes, never by a key query.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import itertools
import logging
import os
import secrets
import sqlite3
import time
from collections import deque
from typing import Protocol

import asyncssh

from bwsandbox import faults
from bwsandbox import tenants as tenants_mod
from bwsandbox.config import Settings
from bwsandbox.server.audit import AuditLog
from bwsandbox.server.session import Session
from bwsandbox.tenants import Region, Tenant

log = logging.getLogger("bwsandbox.server")

_session_ids = itertools.count(1)


class Lockout:
    """Failed logins per key (a source address, an account); locks a key for a while.

    Bounded: keys whose failures all left the window are dropped when the
    table grows, so a flood of names cannot grow it without limit."""

    MAX_KEYS = 100_000

    def __init__(self, attempts: int, seconds: float) -> None:
        self.attempts = attempts
        self.seconds = seconds
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}

    def remaining(self, key: str) -> float:
        until = self._locked_until.get(key, 0.0)
        left = until - time.monotonic()
        if left <= 0 and key in self._locked_until:
            del self._locked_until[key]
            self._failures.pop(key, None)
        return max(left, 0.0)

    def failure(self, key: str) -> bool:
        """Record one failure; True when this failure locks the key."""
        if self.attempts <= 0:
            return False
        now = time.monotonic()
        if len(self._failures) >= self.MAX_KEYS:
            self._forget_before(now - self.seconds)
        recent = self._failures.setdefault(key, deque())
        recent.append(now)
        while recent and recent[0] < now - self.seconds:
            recent.popleft()
        if len(recent) >= self.attempts:
            self._locked_until[key] = now + self.seconds
            return True
        return False

    def success(self, key: str) -> None:
        self._failures.pop(key, None)

    def _forget_before(self, oldest: float) -> None:
        for key in [k for k, d in self._failures.items() if not d or d[-1] < oldest]:
            del self._failures[key]
        for key in [k for k, until in self._locked_until.items() if until < oldest]:
            del self._locked_until[key]


def address_key(peer: str) -> str:
    return f"address {peer}"


def account_key(region: str, username: str) -> str:
    return f"account {region}/{username}"


class PasswordCache:
    """Checks passwords against their scrypt hashes, at most two at a time
    (each takes ~0.2 s and 16 MiB: tenants.SCRYPT_N), one check per
    (hash, password) however many connections ask at once, and remembers
    the ones that matched, so a returning client does not pay scrypt again.
    Keyed by an HMAC with a per-process secret: the cache never holds a
    password. A failed check always pays scrypt, against a dummy hash when
    the user does not exist, so the time does not tell whether it does."""

    def __init__(self) -> None:
        self._secret = os.urandom(32)
        self._ok: set[tuple[str, bytes]] = set()
        self._checking: dict[tuple[str, bytes], asyncio.Future[bool]] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._dummy: asyncio.Future[str] | None = None

    def _key(self, stored: str, password: str) -> tuple[str, bytes]:
        return stored, hmac.new(self._secret, password.encode(), hashlib.sha256).digest()

    async def verify(self, stored: str | None, password: str) -> bool:
        """Whether `password` matches `stored` (None: an unknown user, always False)."""
        loop = asyncio.get_running_loop()
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="bwsandbox-scrypt")
        if self._dummy is None:  # made ahead of the first unknown user, who must not wait for it
            self._dummy = loop.run_in_executor(self._pool, tenants_mod.hash_password, secrets.token_hex(8))
        if stored is None:
            dummy = await asyncio.shield(self._dummy)
            await loop.run_in_executor(self._pool, tenants_mod.verify_password, password, dummy)
            return False
        key = self._key(stored, password)
        if key in self._ok:
            return True
        pending = self._checking.get(key)
        if pending is None:
            pending = loop.run_in_executor(self._pool, tenants_mod.verify_password, password, stored)
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
        ok = await asyncio.shield(pending)
        if ok:
            self._ok.add(key)
        return ok

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class LoginEndpoint(Protocol):
    """What a connection's login reads and tells of its listener
    (`listener.Endpoint`), which builds the login and so sits above it."""

    region: Region
    settings: Settings
    conn: sqlite3.Connection
    audit: AuditLog
    lockout: Lockout
    passwords: PasswordCache

    def connection_made(self, session: Session) -> None: ...
    def session_started(self, session: Session) -> None: ...
    def session_ended(self, session: Session) -> None: ...
    def sessions_of(self, tenant: str) -> int: ...
    def sftp_session(self) -> asyncssh.SSHServerSession[bytes]: ...


class SandboxSSHServer(asyncssh.SSHServer):
    def __init__(self, endpoint: LoginEndpoint, *, stall: float = 0.0) -> None:
        self._endpoint = endpoint
        self._failures = 0
        self._session: Session | None = None
        self._stall = stall  # an endpoint's `stall` fault that fired for this connection
        self._accepted: Tenant | None = None  # whose credentials this connection showed
        self._accepted_by = ""
        self._refused = False  # a `refuse-login` fault fired on this connection

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
        self._check_locks(username)
        return True  # always ask: an unknown user must not be told apart

    def password_auth_supported(self) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    async def validate_password(self, username: str, password: str) -> bool:
        self._check_locks(username)  # every attempt, on every connection
        tenant = self._tenant(username)
        ok = await self._endpoint.passwords.verify(tenant.password_hash if tenant else None, password)
        result = self._result(username, tenant if ok else None, "password")
        assert self._session is not None
        if self._session.stall:
            await asyncio.sleep(self._session.stall)  # a `stall` fault: the answer waits
        return result

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._check_locks(username)
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
        # An accepted one is not a login yet: asyncssh asks again with the
        # signature, and only auth_completed() says it verified.
        accepted = self._result(username, tenant if ok else None, "publickey", lockout=False)
        if accepted:
            session = self._session
            assert session is not None
            self._endpoint.audit.event("auth", result="key-accepted", session=session.id,
                                       peer=session.peer, username=username)
        return accepted

    def auth_completed(self) -> None:
        """The one verified success: the session starts, its slot is taken,
        the account's failure count is cleared."""
        session, endpoint, tenant = self._session, self._endpoint, self._accepted
        assert session is not None and tenant is not None
        session.tenant = tenant
        endpoint.session_started(session)
        endpoint.lockout.success(account_key(str(endpoint.region), tenant.username))
        endpoint.audit.event(
            "auth", result="ok", method=self._accepted_by, session=session.id, peer=session.peer,
            tenant=tenant.name,
        )

    def _check_locks(self, username: str) -> None:
        session, endpoint = self._session, self._endpoint
        assert session is not None
        for key in (address_key(session.peer), account_key(str(endpoint.region), username)):
            left = endpoint.lockout.remaining(key)
            if left > 0:
                endpoint.audit.event(
                    "auth", result="locked-out", session=session.id, peer=session.peer,
                    username=username, locked=key,
                )
                log.warning("lockout: refusing %s (%s locked for %.0f more s)", session.peer, key, left)
                raise asyncssh.PermissionDenied(f"Too many failed logins: try again in {left:.0f} s")

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
        if tenant is not None and self._accepted is None and (
            self._refused or not self._login_allowed(tenant)
        ):
            # A `refuse-login` fault: the right password, refused, on this
            # connection for good (a client that retries with another method,
            # as curl does with keyboard-interactive, is refused too).
            self._refused, tenant = True, None
        if tenant is None:
            self._failures += 1
            endpoint.audit.event(
                "auth", result="failed", method=method, session=session.id,
                peer=session.peer, username=username,
            )
            if lockout:
                for key in (address_key(session.peer), account_key(str(endpoint.region), username)):
                    if endpoint.lockout.failure(key):
                        log.warning("lockout: %s locked for %.0f s after %d failed logins",
                                    key, endpoint.lockout.seconds, endpoint.lockout.attempts)
                        endpoint.audit.event("lockout", locked=key, peer=session.peer,
                                             seconds=endpoint.lockout.seconds)
                        raise asyncssh.PermissionDenied("Too many failed logins: locked out for a while")
            if self._failures >= endpoint.settings.max_auth_attempts:
                endpoint.audit.event("auth", result="too-many", session=session.id, peer=session.peer)
                raise asyncssh.PermissionDenied("Too many authentication failures")
            return False
        if self._accepted is not None and self._accepted.name != tenant.name:
            return False  # one connection, one account
        active = endpoint.sessions_of(tenant.name)
        if active >= endpoint.settings.max_sessions_per_tenant:
            endpoint.audit.event(
                "auth", result="too-many-sessions", session=session.id, tenant=tenant.name, active=active
            )
            raise asyncssh.DisconnectError(
                asyncssh.DISC_TOO_MANY_CONNECTIONS,
                f"Too many sessions for this account (max {endpoint.settings.max_sessions_per_tenant})",
            )
        self._accepted, self._accepted_by = tenant, method
        return True


