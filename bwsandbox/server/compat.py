"""What real SFTP clients need and asyncssh's SFTP server lacks, scoped to
the sandbox's own sessions.

Nothing here replaces an attribute of asyncssh: the sandbox's SSH server
hands asyncssh a session object of its own (`SFTPOnlySession`, returned by
`SSHServer.session_requested`), and that session runs the SFTP subsystem with
`LenientSFTPServerHandler`, a subclass of asyncssh's handler. Any other
asyncssh server or client in the same process is untouched.
`tests/integration/test_server_compat.py` checks the asyncssh internals these
two subclasses rely on, so an asyncssh release that moves them fails there first.

The three changes are small enough to propose upstream as they are (the
`copy-data` extension left out is the sandbox's choice: see below):

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
3. **Counting handles** (docs/server.md "Limits and protection"): asyncssh
   keeps any number of file and directory handles, and never tells the
   `SFTPServer` that a directory handle was closed. The handler asks an
   `EndAwareSFTPServer` before each OPEN and OPENDIR (`handle_opening`,
   which refuses with an SFTP error), tells it of every handle closed, by
   the client (once asyncssh has really dropped it) or at the session's end
   (`handles_closed`), and reports its `max_open_handles` in
   `limits@openssh.com` (asyncssh reports the process's descriptor limit).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, cast

import asyncssh
from asyncssh.channel import SSHChannel
from asyncssh.constants import FXP_CLOSE, FXP_OPEN, FXP_OPENDIR, FXP_WRITE
from asyncssh.packet import SSHPacket
from asyncssh.sftp import SFTPLimits, SFTPServerHandler
from asyncssh.stream import SSHReader, SSHServerStreamSession, SSHWriter


class EndAwareSFTPServer(asyncssh.SFTPServer):
    """An `SFTPServer` whose `close()` can tell a client's CLOSE from a file
    the client left open: `session_over` is True from the moment the session
    ended, before asyncssh closes what was left open."""

    session_over = False
    max_open_handles: int | None = None  # reported in limits@openssh.com when set

    def handle_opening(self) -> None:
        """Before each OPEN and OPENDIR: raise an `SFTPError` to refuse it.
        Each call that returns is matched by one `handles_closed` count."""

    def handles_closed(self, count: int) -> None:
        """`count` handles (files or directories) were closed or refused after
        `handle_opening` let them through."""


class LenientSFTPServerHandler(SFTPServerHandler):
    """asyncssh's SFTP server handler, with the changes above."""

    async def _cleanup(self, exc: Exception | None) -> None:
        server = self._server
        if not isinstance(server, EndAwareSFTPServer):
            await super()._cleanup(exc)
            return
        server.session_over = True  # a file closed from here on was left open
        left_open = len(self._file_handles) + len(self._dir_handles)
        try:
            await super()._cleanup(exc)  # closes the files, forgets the directories
        finally:
            if left_open:
                server.handles_closed(left_open)

    async def _counted(
        self, process: Callable[[SFTPServerHandler, SSHPacket], Awaitable[bytes]], packet: SSHPacket
    ) -> bytes:
        """An OPEN or OPENDIR, counted: asked of the server first, given back
        if it fails."""
        server = self._server
        if not isinstance(server, EndAwareSFTPServer):
            return await process(self, packet)
        server.handle_opening()
        try:
            return await process(self, packet)
        except BaseException:
            server.handles_closed(1)
            raise

    async def _process_open(self, packet: SSHPacket) -> bytes:
        return await self._counted(SFTPServerHandler._process_open, packet)

    async def _process_opendir(self, packet: SSHPacket) -> bytes:
        return await self._counted(SFTPServerHandler._process_opendir, packet)

    async def _process_close(self, packet: SSHPacket) -> None:
        server = self._server
        handle = SSHPacket(packet.get_remaining_payload()).get_string()  # a peek: asyncssh reads it again
        counted = handle in self._file_handles or handle in self._dir_handles
        try:
            await SFTPServerHandler._process_close(self, packet)
        finally:
            # A slot is free only if the handle is gone: asyncssh refuses a CLOSE
            # with trailing bytes ("bad message") before it drops the handle, which
            # stays open. A file whose close failed is dropped all the same.
            gone = handle not in self._file_handles and handle not in self._dir_handles
            if counted and gone and isinstance(server, EndAwareSFTPServer):
                server.handles_closed(1)

    async def _process_limits(self, packet: SSHPacket) -> SFTPLimits:
        limits = await SFTPServerHandler._process_limits(self, packet)
        server = self._server
        if isinstance(server, EndAwareSFTPServer) and server.max_open_handles is not None:
            limits.max_open_handles = server.max_open_handles
        return limits

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
        FXP_OPEN: _process_open,  # type: ignore[dict-item]
        FXP_OPENDIR: _process_opendir,  # type: ignore[dict-item]
        FXP_CLOSE: _process_close,  # type: ignore[dict-item]
        b"limits@openssh.com": _process_limits,  # type: ignore[dict-item]
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
