"""What real SFTP clients need and asyncssh's SFTP server lacks, scoped to
the sandbox's own sessions.

Nothing here replaces an attribute of asyncssh: the sandbox's SSH server
hands asyncssh a session object of its own (`SFTPOnlySession`, returned by
`SSHServer.session_requested`), and that session runs the SFTP subsystem with
`LenientSFTPServerHandler`, a subclass of asyncssh's handler. Any other
asyncssh server or client in the same process is untouched.
`tests/unit/test_server_compat.py` checks the asyncssh internals these two
subclasses rely on, so an asyncssh release that moves them fails there first.

Both changes are small enough to propose upstream as they are (the third,
the `copy-data` extension left out, is the sandbox's choice: see below):

1. **Trailing bytes after a WRITE** (docs/production.md "Clients"): rclone
   1.60's last SSH_FXP_WRITE can carry bytes after the data string. OpenSSH's
   sftp-server ignores them; asyncssh's `packet.check_end()` answers
   "Unexpected data at end of packet" and the upload fails. For SFTP
   versions below 6 (where asyncssh checks), the data string is taken and
   whatever follows is ignored, as OpenSSH does.
2. **Knowing that a session ended with files open**: asyncssh closes the
   files a client left open when the session ends (the connection dropped,
   or the client sent EOF), through the same `SFTPServer.close()` as a
   client's CLOSE request. The server needs to tell them apart (an upload
   the client never closed is cut off, not complete), so the handler sets
   `session_over` on an `EndAwareSFTPServer` before it closes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.constants import FXP_WRITE
from asyncssh.packet import SSHPacket
from asyncssh.sftp import SFTPServerHandler
from asyncssh.stream import SSHReader, SSHServerStreamSession, SSHWriter


class EndAwareSFTPServer(asyncssh.SFTPServer):
    """An `SFTPServer` whose `close()` can tell a client's CLOSE from a file
    the client left open: `session_over` is True from the moment the session
    ended, before asyncssh closes what was left open."""

    session_over = False


class LenientSFTPServerHandler(SFTPServerHandler):
    """asyncssh's SFTP server handler, with the two changes above."""

    async def _cleanup(self, exc: Exception | None) -> None:
        server = self._server
        if isinstance(server, EndAwareSFTPServer):
            server.session_over = True  # a file closed from here on was left open
        await super()._cleanup(exc)

    async def _process_write(self, packet: SSHPacket) -> int:
        if self._version >= 6:  # asyncssh checks only below 6; keep its behaviour there
            return await SFTPServerHandler._process_write(self, packet)
        handle = packet.get_string()
        offset = packet.get_uint64()
        data = packet.get_string()
        # no packet.check_end(): trailing bytes are ignored, as OpenSSH's sftp-server does
        file_obj = self._file_handles.get(handle)
        if not file_obj:
            raise asyncssh.SFTPInvalidHandle("Invalid file handle")
        result = self._server.write(file_obj, offset, data)
        if inspect.isawaitable(result):
            result = await result
        return result

    _packet_handlers = {
        **SFTPServerHandler._packet_handlers,
        FXP_WRITE: _process_write,  # type: ignore[dict-item]  # a subclass's own method
        # copy-data copies any range server-side in one request, the event loop
        # blocked meanwhile (2 GiB from a 57-byte request); OpenSSH's server
        # does not offer it either. Neither offered nor served here.
        b"copy-data": None,
    }
    _extensions = [(name, data) for name, data in SFTPServerHandler._extensions if name != b"copy-data"]


class SFTPOnlySession(SSHServerStreamSession[bytes]):
    """A session channel that offers the SFTP subsystem and nothing else
    (no shell, exec or other subsystem), like OpenSSH with `ForceCommand
    internal-sftp`, served by `LenientSFTPServerHandler`.

    `sftp_factory(chan)` builds the `SFTPServer` of each session."""

    def __init__(
        self,
        sftp_factory: Callable[[asyncssh.SSHServerChannel[bytes]], asyncssh.SFTPServer],
        sftp_version: int = 3,
    ) -> None:
        # a session channel is always a server channel here
        factory = cast(Callable[[SSHChannel[bytes]], asyncssh.SFTPServer], sftp_factory)
        super().__init__(None, factory, sftp_version, False)

    def session_started(self) -> None:
        chan: Any = self._chan
        if chan is None or chan.get_subsystem() != "sftp":
            # Unreachable: only the "sftp" subsystem request is accepted (no
            # shell, exec or other subsystem). Close rather than assume.
            if chan is not None:
                chan.close()
            return None
        server = cast(asyncssh.SFTPServer, self._init_sftp_server())  # sets the channel to bytes
        reader: SSHReader[bytes] = SSHReader(self, chan)
        writer: SSHWriter[bytes] = SSHWriter(self, chan)
        handler = LenientSFTPServerHandler(server, reader, writer, self._sftp_version)
        reader.logger.info("Starting SFTP server")
        assert self._conn is not None
        self._conn.create_task(handler.run(), reader.logger)
        return None
