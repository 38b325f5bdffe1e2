"""Every real client against the real server.

One story per client: an unknown host key is refused in strict/batch mode and
accepted when the user says so; the upload into /incoming is picked up exactly
once with the right byte count; after a restart on the same data directory
the key is the same (strict checking passes); after `hostkey rotate` the
client detects the change and refuses.

A refusal counts only with the client's own evidence (exit code and words,
below): a failed login, a timeout or a crash is not "the key was refused".
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from clients import (
    DRIVERS,
    Account,
    Result,
    Trust,
    curl_known_hosts,
    curl_put,
    lftp_batch,
    lftp_put,
    openssh_batch,
    openssh_put,
    putty_cache,
    rclone_put,
)
from conftest import Harness, SandboxFactory, tenant_of

from bwsandbox.server import hostkeys

# (exit code, phrases that must all be in the output), as the clients
# print it. {port} and the keys are those the server offers at the
# time (`_shown`); paramiko and asyncssh "exit 1" with the exception's name.
Says = tuple[int, list[str]]

_PSFTP_UNKNOWN: Says = (1, [
    "The host key is not cached for this server:", "{putty}",
    "FATAL ERROR: Cannot confirm a host key in batch mode",
])
UNKNOWN_REFUSED: dict[str, Says] = {
    "openssh": (255, [
        "No ED25519 host key is known for [127.0.0.1]:{port} and you have requested strict checking.",
        "Host key verification failed.",
    ]),
    "psftp": _PSFTP_UNKNOWN,  # no -hostkey pin: the empty cache is consulted
    "psftp-cache": _PSFTP_UNKNOWN,
    "lftp": (1, [  # ssh's own words, through lftp's `debug 4`
        "<--- No ED25519 host key is known for [127.0.0.1]:{port}",
        "Fatal error: Host key verification failed.",
    ]),
    "curl": (60, ["curl: (60) SSL peer certificate or SSH remote key was not OK"]),
    "rclone": (1, ["couldn't connect SSH: ssh: handshake failed: knownhosts: key is unknown"]),
    "paramiko": (1, ["SSHException: Server '[127.0.0.1]:{port}' not found in known_hosts"]),
    "asyncssh": (1, ["HostKeyNotVerifiable: Host key is not trusted for host 127.0.0.1"]),
}
ROTATION_DETECTED: dict[str, Says] = {
    "openssh": (255, [
        "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!", "{ed25519}",
        "Host key for [127.0.0.1]:{port} has changed and you have requested strict checking.",
    ]),
    "psftp": (1, ["FATAL ERROR: Host key not in manually configured list"]),
    "psftp-cache": (1, [
        "WARNING - POTENTIAL SECURITY BREACH!",
        "The host key does not match the one PSFTP has cached", "{putty}",
        "FATAL ERROR: Cannot confirm a host key in batch mode",
    ]),
    "lftp": (1, [
        "<--- @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @", "<--- {ed25519}.",
        "Fatal error: Host key verification failed.",
    ]),
    "curl": (60, [
        "curl: (60) Denied establishing ssh session: mismatch sha256 fingerprint."
        " Remote {ecdsa_curl}= is not equal to {pinned_ecdsa}",
    ]),
    "rclone": (1, ["couldn't connect SSH: ssh: handshake failed: knownhosts: key mismatch"]),
    "paramiko": (1, [
        "BadHostKeyException: Host key for server '127.0.0.1' does not match: got '{ed25519_blob}'",
    ]),
    # asyncssh words an unknown and a changed key alike; that it is the key
    # shows in the KNOWN upload just before passing with the same file.
    "asyncssh": (1, ["HostKeyNotVerifiable: Host key is not trusted for host 127.0.0.1"]),
}
# What shows that ACCEPT went through the client's trust store.
ACCEPT_SAYS: dict[str, list[str]] = {
    "openssh": ["Warning: Permanently added '[127.0.0.1]:{port}' (ED25519) to the list of known hosts."],
    "lftp": ["<--- Warning: Permanently added '[127.0.0.1]:{port}' (ED25519) to the list of known hosts."],
    "psftp-cache": ["Store key in cache? (y/n, Return cancels connection"],
}


def _known_hosts(account: Account) -> Path:
    return account.known_hosts


STORE_AFTER_ACCEPT = {  # where a client keeps what it learned, and how it names the host there
    "openssh": (_known_hosts, "[127.0.0.1]:{port} ssh-ed25519 "),
    "lftp": (_known_hosts, "[127.0.0.1]:{port} ssh-ed25519 "),
    "psftp-cache": (putty_cache, "ssh-ed25519@{port}:127.0.0.1 0x"),
    "rclone": (_known_hosts, "[127.0.0.1]:{port} ecdsa-sha2-nistp256 "),
    "paramiko": (_known_hosts, "[127.0.0.1]:{port} ssh-ed25519 "),
    "asyncssh": (_known_hosts, "[127.0.0.1]:{port} "),
}


def _shown(harness: Harness) -> dict[str, str]:
    """The server's current keys as the clients print them."""
    keys = {k.type: k for k in harness.sandbox.host_keys}
    ed25519, ecdsa = keys["ssh-ed25519"], keys["ecdsa-sha2-nistp256"]
    return {
        "port": str(harness.sandbox.port("us")), "ed25519": ed25519.sha256, "putty": ed25519.putty,
        "ed25519_blob": ed25519.public.split()[1], "ecdsa_curl": ecdsa.curl_sha256,
    }


def _assert_says(result: Result, says: Says, what: str, **values: str) -> None:
    rc, phrases = says
    missing = [p.format(**values) for p in phrases if p.format(**values) not in result.out]
    assert result.rc == rc and not missing, (
        f"{what}: expected exit {rc} saying {missing}; got exit {result.rc}:\n{result.out}"
    )


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
    return again, fresh


@pytest.mark.parametrize("client", sorted(DRIVERS))
def test_client_story(client: str, sandbox_factory: SandboxFactory, tmp_path: Path) -> None:
    put = DRIVERS[client]
    harness = sandbox_factory()
    account = harness.add_tenant(tmp_path / "home")
    tenant = tenant_of(account)
    first = _payload(tmp_path / "employees-20260101.csv", 300_001)

    refused = put(account, first, "/incoming/employees-20260101.csv", Trust.STRICT)
    _assert_says(refused, UNKNOWN_REFUSED[client], f"{client}, unknown key, strict", **_shown(harness))
    assert harness.files(tenant) == []

    accepted = put(account, first, "/incoming/employees-20260101.csv", Trust.ACCEPT)
    assert accepted.ok, accepted.out
    for phrase in ACCEPT_SAYS.get(client, []):
        assert phrase.format(**_shown(harness)) in accepted.out, accepted.out
    if client in STORE_AFTER_ACCEPT:
        where, entry = STORE_AFTER_ACCEPT[client]
        assert entry.format(**_shown(harness)) in where(account).read_text()
    rows = harness.wait_files(tenant, 1)
    assert [(r["name"], r["bytes"], r["state"], r["sha256"]) for r in rows] == [
        ("employees-20260101.csv", 300_001, "queued", hashlib.sha256(first.read_bytes()).hexdigest())
    ]  # every byte as sent, whatever the client's packet and read sizes

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
    _assert_says(
        detected, ROTATION_DETECTED[client], f"{client}, rotated key", **_shown(harness),
        pinned_ecdsa=account.ecdsa_sha256.removeprefix("SHA256:"),
    )
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


def test_lftp_temp_file_overwrite_hands_over_both_uploads_once(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """lftp's temp mode, twice to one name in one session: `.in.feed.csv`,
    close, remove `feed.csv` (the first upload, the second time), rename."""
    a = _payload(tmp_path / "a.csv", 40_000)
    b = _payload(tmp_path / "b.csv", 50_001)
    lines = ["cd /incoming", f"put {a} -o feed.csv", f"put {b} -o feed.csv"]
    result = lftp_batch(account, lines, Trust.ACCEPT, temp_file=True)
    assert result.ok, result.out
    rows = sandbox.wait_files(tenant_of(account), 2)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [
        ("feed.csv", 40_000, "queued"), ("feed.csv", 50_001, "queued"),
    ]


def test_curl_accepts_any_key_silently_without_a_known_hosts_file(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """docs/server.md "Connecting with clients": libssh2 checks nothing when ~/.ssh/known_hosts is missing,
    even with no pin at all (and does not create the file); the same call
    with an empty file refuses (exit 60). Users must pin (--hostpubsha256)."""
    import pwd

    local = _payload(tmp_path / "silent.csv", 4_321)
    silent = curl_put(account, local, "/incoming/silent.csv", Trust.STRICT, known_hosts_file=False)
    # curl looks for .ssh/known_hosts under $CURL_HOME, $XDG_CONFIG_HOME, $HOME, then the
    # account's passwd home: a file there (something on this machine ran ssh as this
    # user) is read instead, and the unknown key is refused like with an empty file.
    fallback = Path(pwd.getpwuid(os.geteuid()).pw_dir) / ".ssh" / "known_hosts"
    if fallback.exists():
        _assert_says(silent, UNKNOWN_REFUSED["curl"], f"curl, falling back to {fallback}")
        return
    assert silent.ok, silent.out
    assert not curl_known_hosts(account).exists()
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"], r["state"]) for r in rows] == [("silent.csv", 4_321, "queued")]

    refused = curl_put(account, local, "/incoming/refused.csv", Trust.STRICT)
    _assert_says(refused, UNKNOWN_REFUSED["curl"], "curl, empty known_hosts")
    assert len(sandbox.files(tenant_of(account))) == 1


@pytest.mark.parametrize("client", ["openssh", "lftp", "rclone", "paramiko", "asyncssh"])
def test_known_hosts_lines_from_the_cli_are_trusted(
    client: str, sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """The `bwsandbox hostkey known-hosts` lines (all three key types) as the
    only trust store of every client that reads a known_hosts file."""
    account.known_hosts.write_text("".join(line + "\n" for line in account.known_hosts_lines))
    local = _payload(tmp_path / "pinned.csv", 777)
    result = DRIVERS[client](account, local, "/incoming/pinned.csv", Trust.KNOWN)
    assert result.ok, result.out
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"]) for r in rows] == [("pinned.csv", 777)]


def test_rclone_refuses_the_known_hosts_openssh_learned(
    sandbox: Harness, account: Account, tmp_path: Path
) -> None:
    """OpenSSH's accept-new stores only the ed25519 key; rclone 1.60 cannot
    choose host key types and takes ECDSA, which that file does not list,
    so it reports a mismatch (docs/server.md "Connecting with clients")."""
    local = _payload(tmp_path / "one.csv", 100)
    assert openssh_put(account, local, "/incoming/one.csv", Trust.ACCEPT).ok
    assert [ln.split()[1] for ln in account.known_hosts.read_text().splitlines()] == ["ssh-ed25519"]
    refused = rclone_put(account, local, "/incoming/two.csv", Trust.KNOWN)
    _assert_says(refused, ROTATION_DETECTED["rclone"], "rclone, ed25519-only known_hosts")
    assert [r["name"] for r in sandbox.wait_files(tenant_of(account), 1)] == ["one.csv"]
