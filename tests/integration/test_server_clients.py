"""Every real client against the real server (issue #3 "Tests").

One story per client: an unknown host key is refused in strict/batch mode and
accepted when the user says so; the upload into /incoming is picked up exactly
once with the right byte count; after a restart on the same data directory
the key is the same (strict checking passes); after `hostkey rotate` the
client detects the change and refuses.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from clients import DRIVERS, Account, Trust, lftp_put, openssh_batch
from conftest import Harness, SandboxFactory, tenant_of

from bwsandbox.server import hostkeys


def _payload(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def _restart(harness: Harness, factory: SandboxFactory, account: Account) -> tuple[Harness, Account]:
    """Stop and start again on the same data dir and the same ports (so the
    `[127.0.0.1]:PORT` entries clients stored still apply)."""
    us, eu = harness.sandbox.port("us"), harness.sandbox.port("eu")
    data_dir = harness.settings.data_dir
    harness.stop()
    again = factory(data_dir, port=us, eu_port=eu)
    fresh = again.account(tenant_of(account), account.home, password=account.password)
    # The client keeps what it trusted before: the old pins and lines.
    fresh.ed25519_sha256 = account.ed25519_sha256
    fresh.ecdsa_sha256 = account.ecdsa_sha256
    fresh.known_hosts_lines = account.known_hosts_lines
    return again, fresh


@pytest.mark.parametrize("client", sorted(DRIVERS))
def test_client_story(client: str, sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    put = DRIVERS[client]
    harness = sandbox_factory()
    account = harness.add_tenant(tmp_path / "home")
    tenant = tenant_of(account)
    first = _payload(tmp_path / "employees-20260101.csv", 300_001)

    refused = put(account, first, "/incoming/employees-20260101.csv", Trust.STRICT)
    assert not refused.ok, f"{client} accepted an unknown host key in strict mode:\n{refused.out}"
    assert harness.files(tenant) == []

    accepted = put(account, first, "/incoming/employees-20260101.csv", Trust.ACCEPT)
    assert accepted.ok, accepted.out
    rows = harness.wait_files(tenant, 1)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [
        ("employees-20260101.csv", 300_001, "queued")
    ]

    harness, account = _restart(harness, sandbox_factory, account)
    second = _payload(tmp_path / "employees-20260102.csv", 2_048)
    known = put(account, second, "/incoming/employees-20260102.csv", Trust.KNOWN)
    assert known.ok, f"{client} rejected the same key after a restart:\n{known.out}"
    rows = harness.wait_files(tenant, 2)
    assert [(r["name"], r["bytes"]) for r in rows][1] == ("employees-20260102.csv", 2_048)

    data_dir = harness.settings.data_dir
    us, eu = harness.sandbox.port("us"), harness.sandbox.port("eu")
    harness.stop()
    hostkeys.rotate(data_dir)
    harness = sandbox_factory(data_dir, port=us, eu_port=eu)
    third = _payload(tmp_path / "employees-20260103.csv", 10)
    detected = put(account, third, "/incoming/employees-20260103.csv", Trust.KNOWN)
    assert not detected.ok, f"{client} did not notice the rotated host key:\n{detected.out}"
    # Exactly once: nothing more arrived, nothing was picked up twice.
    assert len(harness.files(tenant)) == 2


def test_lftp_temp_file_upload_is_picked_up_under_its_final_name(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    local = _payload(tmp_path / "feed.csv", 123_457)
    result = lftp_put(account, local, "/incoming/feed.csv", Trust.ACCEPT, temp_file=True)
    assert result.ok, result.out
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [("feed.csv", 123_457, "queued")]


def test_openssh_put_p_rename_and_overwrite(sandbox: Harness, account: Account, tmp_path: Path) -> None:
    a = _payload(tmp_path / "a.csv", 5_000)
    b = _payload(tmp_path / "b.csv", 7_000)
    result = openssh_batch(
        account,
        [
            "cd incoming",
            f"put -p {a} a.csv",  # fsetstat before close
            f"put {b} upload.filepart",  # WinSCP-style temp name...
            "rename upload.filepart final.csv",  # ...renamed at the end (posix-rename)
            f"put {b} again.csv",
            f"put {a} again.csv",  # overwrite: both complete uploads count
        ],
        Trust.ACCEPT,
    )
    assert result.ok, result.out
    tenant = tenant_of(account)
    rows = sandbox.wait_files(tenant, 4)
    got = sorted((r["name"], r["bytes"]) for r in rows)
    assert got == [("a.csv", 5_000), ("again.csv", 5_000), ("again.csv", 7_000), ("final.csv", 7_000)]
    assert all(r["state"] == "queued" for r in rows)
