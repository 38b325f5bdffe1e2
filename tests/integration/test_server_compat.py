"""`bwsandbox/server/compat.py`: the client fixes asyncssh lacks, for the
sandbox's own sessions only, and nothing else offered on a session channel.

If asyncssh moves the internals the subclasses rely on, the first test says
which; the behavioural tests then say what broke."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from pathlib import Path

import asyncssh
import paramiko
import pytest
from asyncssh.sftp import SFTPServerHandler
from asyncssh.stream import SSHServerStreamSession
from clients import Account, Trust, paramiko_client
from conftest import Harness, tenant_of
from paramiko.sftp import CMD_WRITE
from paramiko.sftp_client import int64

from bwsandbox.server import compat


def test_the_asyncssh_internals_compat_relies_on_are_still_there() -> None:
    """Each name below is used by compat.py; a rename upstream fails here."""
    assert inspect.iscoroutinefunction(SFTPServerHandler._process_write)
    assert inspect.iscoroutinefunction(SFTPServerHandler._cleanup)
    handlers = SFTPServerHandler._packet_handlers
    assert handlers[asyncssh.constants.FXP_WRITE] is SFTPServerHandler._process_write
    # the handle count: the four requests it wraps, and the two tables it reads
    assert handlers[asyncssh.constants.FXP_OPEN] is SFTPServerHandler._process_open
    assert handlers[asyncssh.constants.FXP_OPENDIR] is SFTPServerHandler._process_opendir
    assert handlers[asyncssh.constants.FXP_CLOSE] is SFTPServerHandler._process_close
    assert handlers[b"limits@openssh.com"] is SFTPServerHandler._process_limits
    init = inspect.getsource(SFTPServerHandler.__init__)
    assert "self._file_handles: Dict[bytes, object] = {}" in init
    assert "self._dir_handles: Dict[bytes, AsyncIterator[SFTPName]] = {}" in init
    assert list(inspect.signature(SFTPServerHandler.__init__).parameters) == [
        "self", "server", "reader", "writer", "sftp_version"
    ]
    assert list(inspect.signature(SSHServerStreamSession.__init__).parameters)[:5] == [
        "self", "session_factory", "sftp_factory", "sftp_version", "allow_scp"
    ]
    for name in ("_init_sftp_server", "session_started", "subsystem_requested", "exec_requested"):
        assert callable(getattr(SSHServerStreamSession, name)), name
    # our subclass overrides the write handler in its own table, not asyncssh's
    lenient = compat.LenientSFTPServerHandler._packet_handlers[asyncssh.constants.FXP_WRITE]
    assert lenient is compat.LenientSFTPServerHandler._process_write
    assert SFTPServerHandler._packet_handlers[asyncssh.constants.FXP_WRITE] is not lenient


def _write_with_trailing_bytes(sftp: paramiko.SFTPClient, remote: str, data: bytes) -> None:
    """An upload whose last WRITE carries bytes after the data, as rclone 1.60 sends."""
    with sftp.open(remote, "wb") as f:
        handle = f.handle
        sftp._request(CMD_WRITE, handle, int64(0), data, b"\x00\x00\x00\x00")


def test_a_write_with_trailing_bytes_is_taken_as_openssh_takes_it(
    sandbox: Harness, account: Account
) -> None:
    data = b"email,first_name,last_name\r\nada@example.com,Ada,Lovelace\r\n"
    client = paramiko_client(account, Trust.ACCEPT)
    try:
        _write_with_trailing_bytes(client.open_sftp(), "incoming/users_20260101.csv", data)
    finally:
        client.close()
    rows = sandbox.wait_files(tenant_of(account), 1)
    assert [(r["name"], r["bytes"], r["state"], r["sha256"]) for r in rows] == [
        ("users_20260101.csv", len(data), "queued", hashlib.sha256(data).hexdigest())
    ]  # the data string exactly; what followed it is ignored


def test_other_asyncssh_servers_in_the_process_are_unchanged(tmp_path: Path) -> None:
    """A plain asyncssh SFTP server started beside the sandbox keeps asyncssh's
    own strictness: the sandbox changed nothing for other asyncssh users."""
    (tmp_path / "root").mkdir()
    closed: list[asyncio.Event] = []

    class Plain(asyncssh.SSHServer):
        def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
            closed.append(asyncio.Event())

        def connection_lost(self, exc: Exception | None) -> None:
            closed[-1].set()

        def begin_auth(self, username: str) -> bool:
            return False  # no authentication

    def client(port: int) -> None:
        transport = paramiko.Transport(("127.0.0.1", port))
        try:
            transport.connect()
            transport.auth_none("anyone")
            sftp = paramiko.SFTPClient.from_transport(transport)
            assert sftp is not None
            with pytest.raises(OSError, match="Unexpected data at end of packet"):
                _write_with_trailing_bytes(sftp, "plain.bin", b"data")
        finally:
            transport.close()

    async def main() -> None:
        acceptor = await asyncssh.listen(
            "127.0.0.1", 0, server_factory=Plain,
            server_host_keys=[asyncssh.generate_private_key("ssh-ed25519")],
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(tmp_path / "root").encode()),
        )
        try:
            await asyncio.to_thread(client, acceptor.get_port())
            await asyncio.wait_for(closed[0].wait(), 10)
        finally:
            acceptor.close()
            await acceptor.wait_closed()

    asyncio.run(main())


@pytest.mark.parametrize("request_kind", ["exec", "shell", "subsystem"])
def test_a_session_offers_sftp_and_nothing_else(
    sandbox: Harness, account: Account, request_kind: str
) -> None:
    client = paramiko_client(account, Trust.ACCEPT)
    try:
        transport = client.get_transport()
        assert transport is not None
        chan = transport.open_session(timeout=20)
        with pytest.raises(paramiko.SSHException):
            if request_kind == "exec":
                chan.exec_command("md5sum /incoming/x")  # rclone's hash probe
            elif request_kind == "shell":
                chan.invoke_shell()
            else:
                chan.invoke_subsystem("netconf")
        chan.close()
        assert "incoming" in client.open_sftp().listdir("/")  # the same connection still serves SFTP
    finally:
        client.close()
