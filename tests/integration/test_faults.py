"""Faults on demand (bwsandbox/faults.py) against the real server, with real
clients: each kind does what it says, fires as often as asked, is written
to the audit log, and never lets a cut-off upload through."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import paramiko
import pytest
from clients import Account, Trust, openssh_batch, openssh_put, paramiko_client
from conftest import Harness, tenant_of

from bwsandbox import faults, store
from bwsandbox.clock import Clock


def _add(sandbox: Harness, account: Account | None, kind: str, **kw: object) -> faults.Fault:
    tenant = tenant_of(account) if account is not None else None
    return faults.add(sandbox.conn, kind=kind, region="us", tenant=tenant, created_at=Clock().iso(), **kw)  # type: ignore[arg-type]


def _payload(path: Path, size: int) -> Path:
    path.write_bytes(b"email,first_name,last_name\r\n" + os.urandom(size // 2).hex().encode()[:size])
    return path


@pytest.fixture(autouse=True)
def _no_fault_outlives_its_test(sandbox: Harness) -> object:
    yield
    with store.transaction(sandbox.conn):
        sandbox.conn.execute("DELETE FROM faults")


def test_disconnect_drops_the_upload_after_n_bytes_and_the_retry_gets_through(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    fault = _add(sandbox, account, "disconnect", after_bytes=1000, times=1)
    local = _payload(tmp_path / "users_20260101.csv", 200_000)
    dropped = openssh_put(account, local, "/incoming/users_20260101.csv", Trust.ACCEPT)
    assert not dropped.ok, dropped.out
    (row,) = sandbox.wait_files(tenant_of(account), 1)
    assert (row["state"], row["bytes"]) == ("incomplete", 1000)  # never queued: never processed
    assert f"the connection was dropped after 1000 bytes (fault disconnect #{fault.id})" in row["detail"]
    assert sandbox.audit_events("fault", kind="disconnect", tenant=tenant_of(account))
    assert faults.listing(sandbox.conn, tenant=tenant_of(account)) == []  # times=1: it lifted itself

    retried = openssh_put(account, local, "/incoming/users_20260101.csv", Trust.KNOWN)
    assert retried.ok, retried.out
    rows = sandbox.wait_files(tenant_of(account), 2)
    assert (rows[1]["state"], rows[1]["sha256"]) == ("queued", hashlib.sha256(local.read_bytes()).hexdigest())


def test_refuse_login_refuses_the_right_password_then_lifts(sandbox: Harness, account: Account) -> None:
    _add(sandbox, account, "refuse-login", times=1)
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(account, Trust.ACCEPT)
    paramiko_client(account, Trust.ACCEPT).close()  # the next login works
    assert sandbox.audit_events("fault", kind="refuse-login", tenant=tenant_of(account))
    assert sandbox.audit_events("auth", result="failed", username=account.username)


def test_permission_denied_refuses_the_open_for_writing(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    _add(sandbox, account, "permission-denied")  # until cleared
    local = _payload(tmp_path / "users_20260102.csv", 100)
    for _ in range(2):
        refused = openssh_put(account, local, "/incoming/users_20260102.csv", Trust.ACCEPT)
        assert not refused.ok and "Permission denied" in refused.out, refused.out
    assert sandbox.files(tenant_of(account)) == []
    assert faults.clear(sandbox.conn, tenant=tenant_of(account)) == 1
    assert openssh_put(account, local, "/incoming/users_20260102.csv", Trust.KNOWN).ok


def test_disk_full_fails_the_write_and_the_file_is_never_processed(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    fault = _add(sandbox, account, "disk-full", after_bytes=0, times=1)
    local = _payload(tmp_path / "users_20260103.csv", 5000)
    full = openssh_put(account, local, "/incoming/users_20260103.csv", Trust.ACCEPT)
    assert not full.ok, full.out
    (row,) = sandbox.wait_files(tenant_of(account), 1)
    assert row["state"] == "incomplete"
    assert f"no space left on device (fault disk-full #{fault.id})" in row["detail"]


def test_slow_caps_the_upload_bandwidth_and_the_file_arrives_whole(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    _add(sandbox, account, "slow", kbps=100, times=1)
    local = _payload(tmp_path / "users_20260104.csv", 150 * 1024)
    started = time.monotonic()
    assert openssh_put(account, local, "/incoming/users_20260104.csv", Trust.ACCEPT).ok
    took = time.monotonic() - started
    assert took >= 1.4, f"150 KiB at 100 KB/s took only {took:.2f} s"
    (row,) = sandbox.wait_files(tenant_of(account), 1)
    assert (row["state"], row["sha256"]) == ("queued", hashlib.sha256(local.read_bytes()).hexdigest())


def test_stall_delays_the_banner_authentication_and_each_reply(
    sandbox_factory: object, tmp_path: Path
) -> None:
    harness = sandbox_factory()  # type: ignore[operator]
    account = harness.add_tenant(tmp_path / "home")
    assert openssh_batch(account, ["ls /"], Trust.ACCEPT).ok
    faults.add(harness.conn, kind="stall", region="us", tenant=None, created_at=Clock().iso(),
               delay_ms=1000, times=1)
    started = time.monotonic()
    stalled = openssh_batch(account, ["ls /", "ls /incoming"], Trust.KNOWN)
    took = time.monotonic() - started
    assert stalled.ok, stalled.out
    # banner + password answer + realpath + the listings' requests: at least
    # five waits of 1 s each, however fast or loaded the machine is
    assert took >= 5.0, took
    assert harness.audit_events("fault", kind="stall")


def test_host_key_presents_another_key_and_the_real_ones_stay(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    assert openssh_batch(account, ["ls /"], Trust.ACCEPT).ok  # known_hosts learns the real key
    real = [k.sha256 for k in sandbox.sandbox.host_keys]
    _add(sandbox, None, "host-key", times=1)
    impostor = openssh_batch(account, ["ls /"], Trust.KNOWN)
    assert not impostor.ok and "REMOTE HOST IDENTIFICATION HAS CHANGED" in impostor.out, impostor.out
    assert sandbox.audit_events("fault", kind="host-key")
    assert openssh_batch(account, ["ls /"], Trust.KNOWN).ok  # lifted: the real key again
    assert [k.sha256 for k in sandbox.sandbox.host_keys] == real


def test_unavailable_endpoint_closes_connections_and_a_tenants_refuses_its_login(
    sandbox: Harness, account: Account
) -> None:
    _add(sandbox, None, "unavailable", times=1)
    with pytest.raises((paramiko.SSHException, OSError)):
        paramiko_client(account, Trust.ACCEPT)
    _add(sandbox, account, "unavailable", times=1)
    with pytest.raises((paramiko.SSHException, OSError)):
        paramiko_client(account, Trust.ACCEPT)
    paramiko_client(account, Trust.ACCEPT).close()
    assert len(sandbox.audit_events("fault", kind="unavailable")) == 2


def test_a_probable_fault_fires_the_same_way_for_the_same_seed(sandbox: Harness, account: Account) -> None:
    def pattern() -> list[bool]:
        with store.transaction(sandbox.conn):
            sandbox.conn.execute("DELETE FROM faults")
        _add(sandbox, account, "refuse-login", probability=0.5, seed=42)
        return [
            faults.fire(sandbox.conn, moment=faults.Moment.LOGIN, region="us", tenant=tenant_of(account))
            is not None
            for _ in range(40)
        ]

    first = pattern()
    assert first == pattern()
    assert 8 < sum(first) < 32  # about half
