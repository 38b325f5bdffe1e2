"""A sandbox for integrators' own tests (docs/python-api.md), usable with or without
pytest. The pytest fixtures in `bwsandbox.pytest_plugin` are thin wrappers.

    server = SandboxServer(tmp_dir)          # one per test session
    server.start()
    sb = server.reset(TenantConfig(licenses=5, users=[{"email": "ceo@x.com", ...}]))
    sb.upload(b"email,first_name,last_name\\r\\n...", "users_20261125.csv")
    report = sb.wait_processed("users_20261125.csv")
    assert sb.user("ceo@x.com").title == "CEO"
    server.stop()

An engage tenant (`TenantConfig(profile="engage")`) takes only PGP files with
a `.done` marker (docs/production.md §1): `sb.upload_engage(csv_bytes)` encrypts to the
tenant's sandbox key and sends both; `sb.pgp_public_key` is that key, for
integrators who encrypt with their own tooling.

Modelled on pytest-httpserver: the session-scoped server starts once on port 0
in a temporary data directory with an immediate queue; `reset()` is cheap
(deletes one tenant's rows and files) and gives each test a fresh tenant.
Errors raised inside the sandbox's threads are collected and re-raised in the
test by `check()` (the plugin calls it when the test body returns, and again at
teardown). Seeded users that do not validate raise `SeedUsersError`: a test
must never run on a directory other than the one it asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bwsandbox import clock as clock_mod
from bwsandbox import control, layout, store
from bwsandbox import tenants as tenants_mod
from bwsandbox.clock import Clock
from bwsandbox.config import Settings, load
from bwsandbox.errors import BwsandboxError, UsageError
from bwsandbox.ingest import files
from bwsandbox.ingest.files import FileRecord, FileState
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region, Tenant

if TYPE_CHECKING:
    from bwsandbox.faults import Fault
    from bwsandbox.sandbox import Sandbox, Service

__all__ = [
    "DirectoryUser",
    "SandboxHandle",
    "SandboxServer",
    "SandboxThreadError",
    "SeedUsersError",
    "TenantConfig",
]

# Importing this module (and so the pytest plugin, in every test session of a
# project that has bwsandbox installed) loads no server, no asyncssh, no
# native library and changes nothing: what serves SFTP, ingests and encrypts
# is imported where it is first used.

TENANT = "test"
FINAL = files.FINAL

# Fast, test-friendly defaults; override through the `bwsandbox_settings` fixture.
TEST_SETTINGS: dict[str, Any] = {
    "host": "127.0.0.1",
    "port": 0,
    "eu_port": 0,
    "queue_delay": 0.0,
    "queue_per_mb": 0.0,
    "queue_jitter": 0.0,
    "pickup_quiet_seconds": 1.0,  # the default: rclone sets mtime after close
    "lockout_attempts": 0,  # every test connects from 127.0.0.1
    "max_sessions_per_tenant": 200,
}


class SandboxThreadError(BwsandboxError):
    """An error raised inside the sandbox's threads while a test ran."""


class SeedUsersError(BwsandboxError):
    """`TenantConfig.users` has rows the Admin module refused: the test
    would otherwise run on a directory other than the one it asked for."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantConfig:
    """The test's tenant: set with `@pytest.mark.bwsandbox(...)` or by
    overriding the `bwsandbox_tenant_config` fixture."""

    profile: str = "core"
    region: str = "us"
    locale: str = "en-US"
    licenses: int = 1000
    contact: str = "technical-contact@example.com"
    custom_keys: Sequence[str] = ()
    users: Sequence[Mapping[str, str]] = ()  # existing users, seeded as an admin upload


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectoryUser:
    """A user of the simulated Betterworks directory."""

    email: str
    first_name: str = ""
    last_name: str = ""
    employee_id: str = ""
    manager_email: str = ""
    department_name: str = ""
    title: str = ""
    status: str = "active"
    deactivation_date: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)  # every column, custom ones too


class _ErrorCollector(logging.Handler):
    """Collects ERROR records with a traceback from the sandbox's loggers."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.errors.append(text)


class SandboxServer:
    """One running sandbox (server + ingest) for a whole test session."""

    def __init__(self, data_dir: Path, **overrides: Any) -> None:
        from bwsandbox.sandbox import Sandbox

        self.settings: Settings = load({**TEST_SETTINGS, **overrides, "data_dir": data_dir}, env={})
        services: list[Service] = []
        if self.settings.http_port is not None:  # the HTTP API only when asked: {"http_port": 0}
            from bwsandbox.api import HttpService

            services.append(HttpService(self.settings))
        self.sandbox: Sandbox = Sandbox(self.settings, services=services)
        self._collector = _ErrorCollector()
        self._conn: sqlite3.Connection | None = None
        self.known_hosts = data_dir / "known_hosts"

    @cached_property
    def _password(self) -> tuple[str, str]:
        """The tenants' password and its hash, made once per server: hashing
        with production-grade scrypt costs ~0.2 s, which every test would pay."""
        password = secrets.token_urlsafe(12)
        return password, tenants_mod.hash_password(password)

    @property
    def http_url(self) -> str | None:
        """`http://HOST:PORT` of the HTTP API and web UI, when `http_port` was set."""
        address = self.sandbox.http_address
        return f"http://{address[0]}:{address[1]}" if address else None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = store.connect(self.settings.db_path)
        return self._conn

    def start(self) -> SandboxServer:
        from bwsandbox.server import hostkeys

        logging.getLogger("bwsandbox").addHandler(self._collector)
        self.sandbox.start_in_thread()
        self.sandbox.call(self._install_loop_handler)
        lines = [
            hostkeys.known_hosts_line(self.sandbox.host(region), self.sandbox.port(region), key)
            for region in Region
            for key in self.sandbox.host_keys
        ]
        self.known_hosts.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self

    def _install_loop_handler(self) -> None:
        def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            exc = context.get("exception")
            self._collector.errors.append(f"{context.get('message', '')}: {exc!r}" if exc else
                                          str(context.get("message", "")))

        asyncio.get_running_loop().set_exception_handler(handler)

    def stop(self) -> None:
        logging.getLogger("bwsandbox").removeHandler(self._collector)
        self.sandbox.stop_in_thread()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def check(self) -> None:
        """Re-raise, in the caller, what went wrong inside the sandbox."""
        __tracebackhide__ = True  # pytest: show the error, not this frame
        errors, self._collector.errors = self._collector.errors, []
        if errors:
            raise SandboxThreadError("error inside the sandbox:\n" + "\n---\n".join(errors))

    def reset(self, config: TenantConfig | None = None) -> SandboxHandle:
        """Forget every tenant, file, directory entry and email; create the
        test's tenant from `config` and seed its existing users."""
        config = config or TenantConfig()
        conn = self.conn
        self.sandbox.settle(conn)  # the previous test's uploads are processed
        worker = self.sandbox.worker
        with worker.paused() if worker is not None else contextlib.nullcontext():  # and stay so
            with store.transaction(conn):
                conn.execute("PRAGMA defer_foreign_keys = ON")
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
                )]
                for table in tables:  # every table: tenants, files, directory, emails, meta
                    conn.execute(f'DELETE FROM "{table}"')
            shutil.rmtree(self.settings.data_dir / "tenants", ignore_errors=True)
        password, password_hash = self._password
        spec = control.TenantSpec(
            name=TENANT, username=TENANT, password=password, region=config.region, profile=config.profile,
            licenses=config.licenses, contact=config.contact, locale=config.locale,
            custom_keys=config.custom_keys,
        )
        tenant, _ = control.create_tenant(conn, self.settings, spec, password_hash=password_hash)
        handle = SandboxHandle(self, tenant, password)
        if config.users:
            handle.seed_users(config.users)
        return handle


    def finished(self) -> None:
        """A file the worker marked done also has its emails and reports out."""
        if self.sandbox.worker is not None:
            self.sandbox.worker.between_files()


class SandboxHandle:
    """What a test gets from the `bwsandbox` fixture: one fresh tenant."""

    def __init__(self, server: SandboxServer, tenant: Tenant, password: str) -> None:
        self._server = server
        self.tenant = tenant
        self.username = tenant.username
        self.password = password
        self.known_hosts: Path = server.known_hosts
        sandbox = server.sandbox
        self.ports = {str(region): sandbox.port(region) for region in Region}
        self.host = sandbox.host(tenant.region)
        self.port = sandbox.port(tenant.region)
        self.drop_folder = layout.drop_folder(tenant)
        # As OpenSSH and FileZilla show them (docs/production.md §2).
        self.fingerprints = {k.type: k.sha256 for k in sandbox.host_keys}
        self.admin = _Admin(self)

    @property
    def conn(self) -> sqlite3.Connection:
        return self._server.conn

    def check(self) -> None:
        """Raise `SandboxThreadError` if anything failed inside the sandbox."""
        __tracebackhide__ = True
        self._server.check()

    @cached_property
    def pgp_public_key(self) -> str:
        """The tenant's armored sandbox PGP public key, what `bwsandbox pgp
        export-key` prints: engage files must be encrypted to it (docs/production.md §1)."""
        from bwsandbox.ingest import pgp

        return pgp.public_key(self._server.settings.data_dir, self.tenant)

    # -- driving it ---------------------------------------------------------------
    def upload(self, data: bytes | str | Path, name: str | None = None, *, timeout: float = 30.0) -> str:
        """Upload like an export job would (asyncssh, host key verified
        against `known_hosts`) into the drop folder; returns the remote name."""
        if isinstance(data, Path):
            name = name or data.name
        if not name:
            raise ValueError("upload(bytes) needs a file name")
        self._put([(name, _payload(data))], timeout)
        return name

    def upload_engage(self, data: bytes | str | Path, stamp: str | None = None, *,
                      timeout: float = 30.0) -> str:
        """Send a plain CSV as an engage export job must (docs/production.md §1): encrypted
        to `pgp_public_key` as `employees.STAMP.csv.pgp`, then the empty
        marker `employees.STAMP.csv.done.pgp` that releases it. STAMP is
        YYYYMMDDHHMM, the sandbox clock's current minute by default. Returns
        the data file's name, for `wait_processed`."""
        from bwsandbox.ingest import pgp, queue

        if self.tenant.profile is not Profile.ENGAGE:
            raise UsageError(
                f"upload_engage() is for the engage profile; this tenant is {self.tenant.profile} "
                "(use upload(), or @pytest.mark.bwsandbox(profile=\"engage\"))"
            )
        stamp = stamp or clock_mod.load(self.conn).now().strftime("%Y%m%d%H%M")
        name = f"employees.{stamp}.csv.pgp"
        if not queue.ENGAGE_DATA.match(name):
            raise ValueError(f"stamp must be YYYYMMDDHHMM (12 digits), not {stamp!r}")
        encrypted = pgp.encrypt_for(_payload(data), self.pgp_public_key)
        self._put([(name, encrypted), (f"employees.{stamp}.csv.done.pgp", b"")], timeout)
        return name

    def _put(self, files: Sequence[tuple[str, bytes]], timeout: float) -> None:
        """One SFTP session uploading `files` in order into the drop folder."""
        from bwsandbox.sshlib import asyncssh

        folder = self.drop_folder.rstrip("/")

        async def go() -> None:
            async with asyncssh.connect(
                self.host, self.port, username=self.username, password=self.password,
                known_hosts=str(self.known_hosts), client_keys=None, agent_path=None,
            ) as conn, conn.start_sftp_client() as sftp:
                for name, payload in files:
                    async with sftp.open(f"{folder}/{name}", "wb") as fh:
                        await fh.write(payload)

        asyncio.run(asyncio.wait_for(go(), timeout))

    def wait_processed(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Block until the newest upload called `name` is processed; return its
        report (the validator's report plus what was applied)."""
        deadline = time.monotonic() + timeout
        events = self._server.sandbox.file_events  # the worker and the pickup notify it
        while True:
            self._server.check()
            seen = events.version  # before reading the row: a change in between wakes the wait
            row = files.latest(self.conn, name, tenant=self.tenant.name)
            if row is not None and row.final:
                self._server.finished()
                if row.state is FileState.INCOMPLETE:
                    raise AssertionError(f"{name} was recorded as an incomplete upload: {row.detail}")
                report: dict[str, Any] = json.loads(row.report_json) if row.report_json else {}
                return report
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} not processed within {timeout:g} s ({_state(row)})")
            # Event-driven; the 1 s cap only bounds how late an error in the sandbox surfaces.
            events.wait(seen, min(1.0, deadline - time.monotonic()))

    @contextlib.contextmanager
    def fault(
        self, kind: str, *, after_bytes: int = 0, times: int | None = None, delay_ms: int = 0,
        kbps: int = 0, probability: float = 1.0, seed: int = 0, endpoint: bool = False,
    ) -> Iterator[Fault]:
        """Production's bad day for the body of the `with` (bwsandbox/faults.py):

            with bwsandbox.fault("disconnect", after_bytes=1024, times=1):
                run_my_export_job()          # its first upload is cut off

        The fault applies to this tenant, or to its whole endpoint with
        `endpoint=True` (always for `host-key`); `times=K` lifts it after K
        firings, else it lasts until the `with` ends. Yields the fault."""
        from bwsandbox import faults

        endpoint = endpoint or faults.FaultKind(kind) in faults.ENDPOINT_ONLY
        added = faults.add(
            self.conn, kind=kind, region=str(self.tenant.region),
            tenant=None if endpoint else self.tenant.name, created_at=Clock().iso(),
            after_bytes=after_bytes, times=times, delay_ms=delay_ms, kbps=kbps,
            probability=probability, seed=seed,
        )
        try:
            yield added
        finally:
            faults.clear(self.conn, fault_id=added.id)

    # -- what production would show -----------------------------------------------
    @property
    def directory(self) -> list[DirectoryUser]:
        from bwsandbox.ingest import directory

        known = set(DirectoryUser.__dataclass_fields__) - {"fields"}
        return [
            DirectoryUser(**{k: str(v or "") for k, v in u.items() if k in known},
                          fields={k: str(v or "") for k, v in u.items()})
            for u in directory.users_listing(self.conn, self.tenant.name)
        ]

    def user(self, email: str) -> DirectoryUser:
        for u in self.directory:
            if u.email.lower() == email.lower():
                return u
        raise KeyError(f"no user {email} in the directory")

    @property
    def emails(self) -> list[dict[str, object]]:
        """The Technical Contact emails, each with its plain-text `body`: the
        text production's automated email carries (docs/production.md §1, §5)."""
        from bwsandbox.ingest import notify

        return notify.listing(self.conn, self.tenant.name, bodies=True, kind=notify.TECHNICAL_CONTACT)

    @property
    def manager_notifications(self) -> list[dict[str, object]]:
        """The emails production sends a deactivated user's manager (docs/production.md §5),
        each with `to`, `subject` and its plain-text `body`."""
        from bwsandbox.ingest import notify

        return notify.listing(self.conn, self.tenant.name, bodies=True, kind=notify.MANAGER_NOTIFICATION)

    def seed_users(self, users: Sequence[Mapping[str, str]]) -> dict[str, Any]:
        """Existing users, entered as an admin's manual CSV upload; returns its
        report. Raises `SeedUsersError` naming each row the upload refused."""
        columns = list(dict.fromkeys(k for u in users for k in u))
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(users)
        report = self.admin.upload(out.getvalue().encode())
        errors = [f for f in report.get("findings", []) if f.get("severity") == "error"]
        if errors:
            raise SeedUsersError(
                "the tenant's seeded users (TenantConfig.users, or the bwsandbox marker's users=) "
                "are invalid:\n" + "\n".join(_seed_problem(f, users) for f in errors)
            )
        return report


class _Admin:
    """The Admin module, simulated (its edits are overridden by later files)."""

    def __init__(self, handle: SandboxHandle) -> None:
        self._h = handle

    def set_user(self, email: str, **fields: str) -> dict[str, Any]:
        """An individual update; returns its report (findings included)."""
        from bwsandbox.ingest import admin

        processed = admin.set_user(self._h.conn, self._h._server.settings, self._h.tenant.name, email, fields)
        return dict(processed.report)

    def upload(self, data: bytes | str) -> dict[str, Any]:
        """A manual CSV upload; returns its report: production shows these
        findings in the browser and sends no email (docs/production.md §5)."""
        from bwsandbox.ingest import admin

        path = self._h._server.settings.data_dir / f"admin-upload-{secrets.token_hex(4)}.csv"
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        try:
            processed = admin.upload(self._h.conn, self._h._server.settings, self._h.tenant.name, path)
        finally:
            path.unlink(missing_ok=True)
        return dict(processed.report)


def _payload(data: bytes | str | Path) -> bytes:
    if isinstance(data, Path):
        return data.read_bytes()
    return data.encode() if isinstance(data, str) else data


def _state(row: FileRecord | None) -> str:
    if row is None:
        return "state: not received"
    text = f"state: {row.state}" + (f", {row.detail}" if row.detail else "")
    if row.state is FileState.WAITING:  # an engage file without its .done marker (docs/production.md §1)
        text += "; send engage files with upload_engage()"
    return text


def _seed_problem(finding: Mapping[str, Any], users: Sequence[Mapping[str, str]]) -> str:
    """One refused seed row, named by its place in `users` (row 2 of the
    admin CSV is users[0]) and its email."""
    row = finding.get("row")
    where = "the whole upload"
    if isinstance(row, int):
        index = row - 2
        email = users[index].get("email", "") if 0 <= index < len(users) else ""
        where = f"users[{index}] ({email or 'no email'})" if 0 <= index < len(users) else f"row {row}"
    column = f" in {finding['column']!r}" if finding.get("column") else ""
    return f"  {where}: {finding.get('code')}{column}: {finding.get('message')}"
