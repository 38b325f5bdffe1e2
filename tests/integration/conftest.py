"""A real Sandbox for integration tests (reused by the ingest end-to-end tests).

Fixtures:

    sandbox            one running Sandbox per test session (per xdist worker)
    account            a fresh tenant on it, with a private client HOME
    sandbox_factory    start extra Sandboxes with their own settings / data dir
                       (restarts, rotations, lockout, limits); stopped at teardown

Tests wait with `wait_until`, never a fixed sleep: for what the sandbox in
this process announces (an upload recorded, a file finished) it sleeps on
`sandbox.file_events`; for anything else (the audit log, another process)
it is a bounded poll.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import shutil
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import Account

from bwsandbox import store, tenants
from bwsandbox.config import Settings, load
from bwsandbox.ingest.events import FileEvents
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import audit, hostkeys
from bwsandbox.spec.fields import Profile
from bwsandbox.tenants import Region

_names = itertools.count(1)

FAST = {
    "host": "127.0.0.1",
    "port": 0,
    "eu_port": 0,
    "pickup_quiet_seconds": 1.0,  # the default: rclone sets mtime after close
    "lockout_attempts": 1000,  # every test connects from 127.0.0.1
}


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run one asyncssh client coroutine to its end (the tests are synchronous)."""
    return asyncio.run(coro)


def wait_until(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05,
    events: FileEvents | None = None,
) -> Any:
    """Wait until `predicate()` is truthy; return it, or fail after `timeout`.
    With `events`, it looks again only when they say a file changed state
    (the version is read before the look, so no change is missed); without,
    every `interval`."""
    deadline = time.monotonic() + timeout
    while True:
        seen = events.version if events is not None else 0
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining < 0:
            raise AssertionError(f"condition not met within {timeout} s")
        if events is not None:
            events.wait(seen, remaining)
        else:
            time.sleep(interval)


@functools.cache
def _hash(password: str) -> str:
    """One scrypt hash per password for the whole run (each costs ~0.5 s)."""
    return tenants.hash_password(password)


class Harness:
    """A started Sandbox plus the helpers tests need."""

    def __init__(self, settings: Settings, *, ingest: bool = False) -> None:
        # ingest=False: server tests check what reached the Inbox (`queued`),
        # without the worker moving files on; end-to-end tests pass True.
        self.settings = settings
        self.sandbox = Sandbox(settings, ingest=ingest).start_in_thread()
        self.conn: sqlite3.Connection = store.connect(settings.db_path)

    def add_tenant(
        self, home: Path, *, profile: Profile = Profile.CORE, region: Region = Region.US,
        password: str = "s3cret-Pass", name: str | None = None,
    ) -> Account:
        name = name or f"t{next(_names)}-{time.monotonic_ns() % 10**8}"
        with store.transaction(self.conn):
            tenants.add(
                self.conn, name=name, username=f"u-{name}", password=password, region=region,
                profile=profile, created_at="2026-01-01T00:00:00+00:00", password_hash=_hash(password),
            )
        home.mkdir(parents=True, exist_ok=True)
        return self.account(name, home, region=region, password=password)

    def account(
        self, name: str, home: Path, *, region: Region = Region.US, password: str = "s3cret-Pass"
    ) -> Account:
        keys = {k.type: k for k in self.sandbox.host_keys}
        return Account(
            host="127.0.0.1",
            port=self.sandbox.port(region),
            username=f"u-{name}",
            password=password,
            home=home,
            ed25519_sha256=keys["ssh-ed25519"].sha256,
            ecdsa_sha256=keys["ecdsa-sha2-nistp256"].sha256,
            known_hosts_lines=[
                hostkeys.known_hosts_line("127.0.0.1", self.sandbox.port(region), k)
                for k in self.sandbox.host_keys
            ],
        )

    def conn_tenant(self, name: str) -> tenants.Tenant:
        return tenants.require(self.conn, name)

    def files(self, tenant: str) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT * FROM files WHERE tenant = ? ORDER BY id", (tenant,))
        return [dict(r) for r in rows]

    def wait_files(self, tenant: str, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
        rows = wait_until(lambda: len(self.files(tenant)) >= count and self.files(tenant), timeout,
                          events=self.sandbox.file_events)
        return list(rows)

    def audit_events(self, event: str, **match: object) -> list[dict[str, object]]:
        """The audit log's records of `event` whose fields match."""
        return [
            r for r in audit.read(self.sandbox.audit_path)
            if r["event"] == event and all(r.get(k) == v for k, v in match.items())
        ]

    def stop(self) -> None:
        self.sandbox.stop_in_thread()
        self.conn.close()


def tenant_of(account: Account) -> str:
    return account.username.removeprefix("u-")


@pytest.fixture(scope="session")
def hostkey_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Host keys generated once per session and copied into each data dir
    (RSA generation is the slow part of a fresh start)."""
    data = tmp_path_factory.mktemp("keys")
    hostkeys.ensure(data)
    return hostkeys.keys_dir(data)


def _settings(data_dir: Path, template: Path, **overrides: Any) -> Settings:
    if not hostkeys.keys_dir(data_dir).exists():
        shutil.copytree(template, hostkeys.keys_dir(data_dir))
    return load({**FAST, **overrides, "data_dir": data_dir}, env={})


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory, hostkey_template: Path) -> Iterator[Harness]:
    harness = Harness(_settings(tmp_path_factory.mktemp("sandbox"), hostkey_template))
    yield harness
    harness.stop()


@pytest.fixture
def account(sandbox: Harness, tmp_path: Path) -> Account:
    return sandbox.add_tenant(tmp_path / "home")


SandboxFactory = Callable[..., Harness]


@pytest.fixture
def sandbox_factory(tmp_path: Path, hostkey_template: Path) -> Iterator[SandboxFactory]:
    started: list[Harness] = []

    def start(data_dir: Path | None = None, *, ingest: bool = False, **overrides: Any) -> Harness:
        settings = _settings(data_dir or tmp_path / "data", hostkey_template, **overrides)
        harness = Harness(settings, ingest=ingest)
        started.append(harness)
        return harness

    yield start
    for harness in started:
        harness.stop()
