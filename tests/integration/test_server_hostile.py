"""Hostile requests against the real server (paramiko low-level requests and
raw sockets): every size it accepts is bounded, names cannot forge lines,
the lockout holds however it is approached, and neither idle sockets nor
open handles can use up the server."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import paramiko
import pytest
from clients import Account, Trust, paramiko_client
from conftest import Harness, SandboxFactory, tenant_of, wait_until
from paramiko.sftp import CMD_CLOSE, CMD_EXTENDED, CMD_OPENDIR, CMD_READ
from paramiko.sftp_client import int64

from bwsandbox import layout, tenants
from bwsandbox.server.handles import total_limit
from bwsandbox.server.sftp import MAX_NAME_BYTES, MAX_READ


def _sftp(account: Account) -> tuple[paramiko.SSHClient, paramiko.SFTPClient]:
    client = paramiko_client(account, Trust.ACCEPT)
    return client, client.open_sftp()


def test_a_size_set_by_fsetstat_or_setstat_counts_against_max_file_bytes(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(max_file_bytes=1024 * 1024)
    account = harness.add_tenant(tmp_path / "home")
    client, sftp = _sftp(account)
    try:
        with sftp.open("incoming/users_20260101.csv", "wb") as f:
            f.write(b"email\r\n")
            with pytest.raises(OSError, match="File too large"):
                f.truncate(3 * 1024**3)  # FSETSTAT size = 3 GiB
        with pytest.raises(OSError, match="File too large"):
            sftp.truncate("incoming/users_20260101.csv", 3 * 1024**3)  # SETSTAT after close
    finally:
        client.close()
    (row,) = harness.wait_files(tenant_of(account), 1)
    assert row["bytes"] < 1024  # the file stayed what was written


def test_a_read_is_answered_with_at_most_what_openssh_answers(sandbox: Harness, account: Account) -> None:
    client, sftp = _sftp(account)  # the tenant's tree exists once a session started
    try:
        reports = layout.reports_dir(sandbox.settings.data_dir, sandbox.conn_tenant(tenant_of(account)))
        (reports / "big.report.json").write_bytes(b"x" * (4 * 1024 * 1024))
        with sftp.open("reports/big.report.json", "rb") as f:
            kind, msg = sftp._request(CMD_READ, f.handle, int64(0), 1 << 30)  # 1 GiB asked
            data = msg.get_string()
        assert len(data) == MAX_READ
        assert sftp.open("reports/big.report.json").read() == b"x" * (4 * 1024 * 1024)  # clients read on
    finally:
        client.close()


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("users.csv\n", "control characters"),
        ("users\r\n2026-12-06 forged log line.csv", "control characters"),
        ("users\x1b[31m.csv", "control characters"),
        ("u" * (MAX_NAME_BYTES + 1), "File name too long"),
    ],
)
def test_names_that_break_logs_or_the_file_system_are_refused(
    sandbox: Harness, account: Account, name: str, says: str
) -> None:
    client, sftp = _sftp(account)
    try:
        with pytest.raises(OSError, match=says):
            sftp.open(f"incoming/{name}", "wb")
        with sftp.open("incoming/" + "u" * (MAX_NAME_BYTES - 4) + ".csv", "wb") as f:  # at the limit: fine
            f.write(b"email\r\n")
    finally:
        client.close()
    (row,) = sandbox.wait_files(tenant_of(account), 1)
    assert len(row["name"].encode()) == MAX_NAME_BYTES


def test_copy_data_is_neither_offered_nor_served(sandbox: Harness, account: Account) -> None:
    client, sftp = _sftp(account)
    try:
        with sftp.open("incoming/a.csv", "wb") as f:
            f.write(b"email\r\n")
            with pytest.raises(OSError, match="Unsupported"):
                sftp._request(CMD_EXTENDED, "copy-data", f.handle, int64(0), int64(0), f.handle,
                              int64(1 << 31))
    finally:
        client.close()


def test_open_handles_are_capped_per_session_and_in_all(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """One session opening files without closing them once used up the
    server's descriptors: every login failed, then ~20,000 `incomplete` rows."""
    harness = sandbox_factory(max_handles_per_session=8, max_open_handles=12)
    handles = harness.sandbox.endpoints[tenants.Region.US].handles
    a, b = harness.add_tenant(tmp_path / "a"), harness.add_tenant(tmp_path / "b")
    client, sftp = _sftp(a)
    try:
        kind, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
        assert [msg.get_int64() for _ in range(4)][3] == 8  # max-open-handles: the session's limit
        files = [sftp.open(f"incoming/h{i}.tmp", "wb") for i in range(7)]
        kind, msg = sftp._request(CMD_OPENDIR, "incoming")  # a directory handle counts too: the 8th
        directory = msg.get_binary()
        session_full = r"^Too many open files in this session \(limit 8\): close some first$"
        with pytest.raises(OSError, match=session_full):
            sftp.open("incoming/h8.tmp", "wb")
        with pytest.raises(OSError, match=r"in this session \(limit 8\)"):
            sftp.listdir("incoming")  # OPENDIR is refused the same way
        # The session goes on: open handles still work, and a close frees a slot.
        files[0].write(b"email\r\n")
        files[0].close()
        files[0] = sftp.open("incoming/again.tmp", "wb")
        sftp._request(CMD_CLOSE, directory)
        assert "h1.tmp" in sftp.listdir("incoming")
        assert handles.open == 7

        # Another session of the same tenant has its own 8, within the server's 12.
        client2, sftp2 = _sftp(a)
        try:
            held = [sftp2.open(f"incoming/s{i}.tmp", "wb") for i in range(5)]
            server_full = r"^Too many open files on this server \(limit 12 for all sessions\)"
            with pytest.raises(OSError, match=server_full):
                sftp2.open("incoming/s5.tmp", "wb")
            assert not any(f.closed for f in held)
        finally:
            client2.close()  # its handles are given back as its session ends
        assert wait_until(lambda: handles.open == 7, timeout=10)

        # Another tenant logs in and uploads meanwhile.
        client_b, sftp_b = _sftp(b)
        try:
            with sftp_b.open("incoming/users_20260101.csv", "wb") as f:
                f.write(b"email\r\n")
        finally:
            client_b.close()
        for f in files:
            f.close()
    finally:
        client.close()
    harness.wait_files(tenant_of(b), 1)
    assert wait_until(lambda: handles.open == 0, timeout=10)


@pytest.mark.parametrize(
    ("per_session", "in_all", "refused"),
    [(2, 12, r"in this session \(limit 2\)"), (3, 2, r"on this server \(limit 2 for all sessions\)")],
)
def test_a_close_the_server_refuses_frees_no_slot(
    sandbox_factory: SandboxFactory, tmp_path: Path, per_session: int, in_all: int, refused: str
) -> None:
    """A CLOSE with bytes after its handle is answered "bad message" and the
    file stays open: it once gave its slot back all the same, and a session
    held 10 files open at a limit of 2."""
    harness = sandbox_factory(max_handles_per_session=per_session, max_open_handles=in_all)
    handles = harness.sandbox.endpoints[tenants.Region.US].handles
    account = harness.add_tenant(tmp_path / "home")
    client, sftp = _sftp(account)
    try:
        kind, msg = sftp._request(CMD_EXTENDED, "limits@openssh.com")
        assert [msg.get_int64() for _ in range(4)][3] == 2  # max-open-handles: the lower of the two limits
        files = []
        for i in range(2):
            files.append(sftp.open(f"incoming/h{i}.tmp", "wb"))
            with pytest.raises(OSError, match="Unexpected data at end of packet"):
                sftp._request(CMD_CLOSE, files[-1].handle, 0)  # a trailing int
        with pytest.raises(OSError, match=refused):
            sftp.open("incoming/h2.tmp", "wb")
        assert handles.open == 2  # the two files the server still holds open
        files[0].write(b"email\r\n")  # and they work
        for f in files:
            f.close()
        assert handles.open == 0
        with sftp.open("incoming/users_20260101.csv", "wb") as f:
            f.write(b"email\r\n")
    finally:
        client.close()
    (row,) = harness.wait_files(tenant_of(account), 1)  # the .tmp files wait for a rename
    assert row["name"] == "users_20260101.csv"
    assert wait_until(lambda: handles.open == 0, timeout=10)


def test_the_server_wide_handle_limit_keeps_half_the_descriptors() -> None:
    assert total_limit(4096, 20000) == 4096
    assert total_limit(4096, 1024) == 512
    assert total_limit(4096, None) == 4096


def _transport(account: Account) -> paramiko.Transport:
    transport = paramiko.Transport((account.host, account.port))
    transport.connect()
    return transport


def test_the_lockout_judges_every_attempt_even_on_connections_opened_before_it(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(lockout_attempts=3, lockout_seconds=60)
    account = harness.add_tenant(tmp_path / "home")
    early = _transport(account)  # opened before the lock, not logged in yet
    try:
        for _ in range(3):
            with pytest.raises(paramiko.AuthenticationException):
                paramiko_client(replace(account, password="wrong"), Trust.ACCEPT)
        with pytest.raises((paramiko.AuthenticationException, paramiko.SSHException, EOFError)):
            early.auth_password(account.username, account.password)  # the right password, refused
    finally:
        early.close()
    assert harness.audit_events("auth", result="locked-out")


def test_another_tenants_login_from_the_address_does_not_reset_the_count(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(lockout_attempts=3, lockout_seconds=60)
    victim = harness.add_tenant(tmp_path / "victim")
    own = harness.add_tenant(tmp_path / "own")
    for _ in range(2):
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_client(replace(victim, password="guess"), Trust.ACCEPT)
    paramiko_client(own, Trust.ACCEPT).close()  # the attacker's own account logs in fine
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(replace(victim, password="guess"), Trust.ACCEPT)  # the 3rd: locked now
    with pytest.raises((paramiko.AuthenticationException, paramiko.SSHException)):
        paramiko_client(victim, Trust.ACCEPT)
    assert harness.audit_events("lockout")


def test_an_account_is_locked_whichever_address_the_guesses_come_from(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(host="127.0.0.1", lockout_attempts=3, lockout_seconds=60)
    account = harness.add_tenant(tmp_path / "home")
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):  # one guess from each address
        transport = paramiko.Transport(_socket_from(source, account))
        try:
            transport.connect()
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_password(account.username, "guess")
        finally:
            transport.close()
    assert harness.audit_events("lockout", locked=f"account us/{account.username}")
    with pytest.raises((paramiko.AuthenticationException, paramiko.SSHException)):
        paramiko_client(account, Trust.ACCEPT)


def _socket_from(source: str, account: Account) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.connect((account.host, account.port))
    return sock


def test_a_failed_login_does_the_same_work_for_an_unknown_user(
    sandbox: Harness, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time of a failed login must not tell whether the user exists: both
    check the password against a hash of the same cost. (Checked by the work
    done, not by a stopwatch, so a loaded CI machine cannot make it flaky.)"""
    costs: list[tuple[int, int, int]] = []
    real = tenants.verify_password

    def counting(password: str, stored: str) -> bool:
        parsed = tenants._parse(stored)
        assert parsed is not None
        costs.append(parsed[:3])
        return real(password, stored)

    monkeypatch.setattr(tenants, "verify_password", counting)  # the sandbox runs in this process

    def failed_login(username: str) -> None:
        transport = _transport(account)
        try:
            with pytest.raises(paramiko.AuthenticationException):
                transport.auth_password(username, "not-the-password")
        finally:
            transport.close()

    failed_login(account.username)
    failed_login("nobody-" + account.username)
    scrypt = (tenants.SCRYPT_N, tenants.SCRYPT_R, tenants.SCRYPT_P)
    assert costs == [scrypt, scrypt]


def test_connections_not_logged_in_are_limited_per_address(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    harness = sandbox_factory(max_startups_per_address=4)
    account = harness.add_tenant(tmp_path / "home")
    idle = [socket.create_connection((account.host, account.port)) for _ in range(4)]
    try:
        for sock in idle:
            assert sock.recv(64).startswith(b"SSH-2.0-")  # served: the banner comes
        wait_until(lambda: len(harness.audit_events("connect")) >= 4)
        extra = socket.create_connection((account.host, account.port))
        extra.settimeout(10)
        assert extra.recv(64) == b""  # closed at once, no banner
        extra.close()
        wait_until(lambda: harness.audit_events("refused", peer="127.0.0.1"))
    finally:
        for sock in idle:
            sock.close()
    # once they are gone, the address is served again
    assert wait_until(lambda: _logs_in(account), timeout=10, interval=0.2)


def _logs_in(account: Account) -> bool:
    try:
        paramiko_client(account, Trust.ACCEPT).close()
    except (paramiko.SSHException, OSError):
        return False
    return True


def test_a_public_key_query_without_a_signature_is_no_login(
    sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    """OpenSSH asks whether a key would do before it signs; given only the
    public half (no private key to sign with), it stops after the query. That
    query must neither count as a login (reset the failure count, take a
    session slot) nor be logged as one."""
    import subprocess

    from bwsandbox.sshlib import asyncssh

    key = asyncssh.generate_private_key("ssh-ed25519")
    public = key.export_public_key().decode().strip()
    harness = sandbox_factory(lockout_attempts=3, lockout_seconds=60)
    from bwsandbox import store as store_mod

    with store_mod.transaction(harness.conn):
        tenants.add(harness.conn, name="keyed", username="u-keyed", password="the-Pass1",
                    authorized_keys=public, created_at="2026-01-01T00:00:00+00:00")
    account = harness.account("keyed", tmp_path / "home", password="the-Pass1")
    account.home.mkdir(parents=True)
    (account.home / "id.pub").write_text(public + "\n")
    for _ in range(2):
        with pytest.raises(paramiko.AuthenticationException):
            paramiko_client(replace(account, password="guess"), Trust.ACCEPT)
    probe = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", f"UserKnownHostsFile={account.home / 'kh'}", "-o", "IdentitiesOnly=yes",
         "-o", "PreferredAuthentications=publickey", "-i", str(account.home / "id.pub"),
         "-p", str(account.port), f"{account.username}@{account.host}", "-s", "sftp"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(account.home)},
    )
    assert probe.returncode != 0, probe.stderr
    assert wait_until(lambda: harness.audit_events("disconnect", tenant=None))
    assert harness.audit_events("auth", result="key-accepted")  # the query came, and was answered yes
    assert not harness.audit_events("auth", result="ok")  # ...but it was no login
    with pytest.raises(paramiko.AuthenticationException):
        paramiko_client(replace(account, password="guess"), Trust.ACCEPT)  # the 3rd failure: locked
    assert harness.audit_events("lockout")


def test_a_flood_of_idle_connections_is_capped_and_logged_once_a_second(
    sandbox_factory: SandboxFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = sandbox_factory(max_connections=20, max_startups_per_address=1000)
    account = harness.add_tenant(tmp_path / "home")
    flood = []
    try:
        with caplog.at_level("WARNING", logger="bwsandbox.server"):
            for _ in range(60):
                sock = socket.create_connection((account.host, account.port))
                sock.settimeout(10)
                flood.append(sock)
            served = sum(1 for sock in flood if sock.recv(64).startswith(b"SSH-2.0-"))
        assert served == 20  # the rest were closed at once, without a banner
        refusals = [r for r in caplog.records if "refusing connections" in r.getMessage()]
        assert 1 <= len(refusals) <= 5, [r.getMessage() for r in refusals]  # not one line per socket
        assert not [r for r in caplog.records if r.exc_info]  # and no traceback
    finally:
        for sock in flood:
            sock.close()
    assert wait_until(lambda: _logs_in(account), timeout=15, interval=0.2)


def test_aes_is_offered_and_chacha20_is_not(sandbox: Harness, account: Account) -> None:
    """server/listener.py CIPHERS: clients negotiate AES (OpenSSH: aes128-ctr)."""
    import subprocess

    transport = _transport(account)
    try:
        assert transport.local_cipher.startswith("aes") and transport.remote_cipher.startswith("aes")
    finally:
        transport.close()
    forced = subprocess.run(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-c", "chacha20-poly1305@openssh.com",
         "-p", str(account.port), f"{account.username}@{account.host}"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(account.home)},
    )
    assert "no matching cipher found" in forced.stderr, forced.stderr
