"""SFTP requests handled as they arrive (issue #3 "Speed"; README "Benchmarks").

asyncssh runs an SFTP session as a task reading a stream: every request
arrives as channel data, is buffered, wakes a future, and waits for the
task's next turn of the event loop before asyncssh's handler parses it. For
a client that waits for each reply (OpenSSH's `put` of many small files is
three strict round trips per file) that detour is paid on every request.

`Inline(handler, attachable(handler), flush).run()` lets the sandbox's
handler read the channel itself:
each delivery of channel data is parsed into SFTP packets right away and
each packet goes through asyncssh's own `_process_packet` (the same
parsing, the same replies, the same errors), driven synchronously, since the
sandbox's SFTPServer methods never wait; the replies of a delivery leave in
one write before the call returns. Should a request ever wait, it finishes
on a task and the requests after it queue behind it, so replies keep their
order. End of file, a lost connection and channel errors end the session as
asyncssh's own loop would: once the requests that arrived before them are
served, with the same reason. Anything unexpected about asyncssh's insides
leaves its stream loop in charge. While a request waits, the channel is
paused, so what the client sends meanwhile stays within its SSH window
instead of piling up here (the sandbox's own handlers never wait).
"""

from __future__ import annotations

import asyncio
import collections.abc
from typing import Any

import asyncssh
from asyncssh.packet import PacketDecodeError, SSHPacket

_MAX_PACKET = getattr(asyncssh.sftp, "MAX_SFTP_PACKET_LEN", 0)


class Inline:
    """The request loop of one SFTP session, fed by the channel."""

    def __init__(self, handler: Any, session: Any, flush: collections.abc.Callable[[], None]) -> None:
        self._handler = handler
        self._session = session
        self._flush = flush
        self._buf = bytearray()
        self._busy: asyncio.Future[None] | None = None  # a request that waits
        # Why the session ends, once known: it ends when the requests that
        # arrived before are served, as asyncssh's stream loop reads them first.
        self._ending: tuple[Exception | None] | None = None
        self._ended: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    async def run(self) -> Exception | None:
        """Serve until the session ends; returns why (None: end of file)."""
        session = self._session
        for item in session._recv_buf[None]:  # what the stream had buffered already
            if isinstance(item, Exception):
                self._end(item)  # what follows an error is never read
                break
            self._buf += item
        session._recv_buf[None].clear()
        session._recv_buf_len = 0
        resume = getattr(session, "_maybe_resume_reading", None)
        if callable(resume):
            resume()  # had the stream paused the channel, nothing would resume it
        eof, lost = session.eof_received, session.connection_lost
        already_eof = session._eof_received
        session.data_received = self._data_received
        session.exception_received = self._end

        def eof_received() -> bool:
            eof()
            self._end(None)
            return True

        def connection_lost(exc: Exception | None) -> None:
            if exc is not None:
                self._end(exc)  # first: asyncssh's own handling calls eof_received
            lost(exc)
            self._end(None)

        session.eof_received = eof_received
        session.connection_lost = connection_lost
        if already_eof:
            self._end(None)
        self._feed()
        return await self._ended

    def _end(self, exc: Exception | None) -> None:
        """The session is to end (the first reason counts), once the queue is served."""
        if self._ending is None:
            self._ending = (exc,)
        self._finish_if_done()

    def _finish_if_done(self) -> None:
        if self._ending is not None and self._busy is None and not self._ended.done():
            buf = self._buf
            if len(buf) < 4 or len(buf) < 4 + int.from_bytes(buf[:4], "big") or self._stopped:
                self._ended.set_result(self._ending[0])

    _stopped = False  # a broken request stream: nothing more is read

    def _data_received(self, data: bytes, datatype: Any) -> None:
        if datatype is not None or self._ending is not None:
            return  # SFTP is stdin only; nothing is read after the end, as asyncssh would not
        self._buf += data
        self._feed()

    def _stop(self, exc: Exception) -> None:
        self._stopped = True
        self._ending = (exc,)
        self._finish_if_done()

    def _feed(self) -> None:
        buf, handler = self._buf, self._handler
        while self._busy is None and not self._stopped and len(buf) >= 4:
            size = int.from_bytes(buf[:4], "big")
            if size > _MAX_PACKET:
                self._stop(asyncssh.SFTPBadMessage("Max packet size exceeded"))
                break
            if len(buf) < 4 + size:
                break
            with memoryview(buf) as view:  # one copy of the request, not two
                packet = SSHPacket(bytes(view[4 : 4 + size]))
            del buf[: 4 + size]
            try:
                pkttype = packet.get_byte()
                pktid = packet.get_uint32()
            except PacketDecodeError as exc:
                self._stop(asyncssh.SFTPBadMessage(str(exc)))
                break
            handler.log_received_packet(pkttype, pktid, packet)
            coro = handler._process_packet(pkttype, pktid, packet)
            try:
                waiting = coro.send(None)
            except StopIteration:
                continue
            except Exception as exc:  # asyncssh's loop ends the session on such errors
                self._stop(exc)
                break
            self._busy = asyncio.ensure_future(self._finish(coro, waiting))
            self._pause(True)
        self._flush()
        self._finish_if_done()

    async def _finish(self, coro: Any, waiting: Any) -> None:
        """A request that waited: let it finish, then go on with the queue."""
        try:
            while True:
                if isinstance(waiting, asyncio.Future):
                    await asyncio.wait({waiting})  # its outcome is the request's to handle
                else:
                    await asyncio.sleep(0)  # a bare yield: one turn of the loop
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    break
        except Exception as exc:
            self._stop(exc)
        except BaseException:  # cancelled (the loop is closing): the session ends here
            self._busy = None
            self._stop(asyncssh.SFTPConnectionLost("Connection closed"))
            raise
        finally:
            self._busy = None
            try:
                self._pause(False)  # may deliver what the channel held back, queued behind the rest
            except Exception as exc:  # asyncssh's channel in a state it did not expect
                self._stop(exc)
        self._feed()

    def _pause(self, paused: bool) -> None:
        chan = getattr(self._session, "_chan", None)
        if chan is None or getattr(chan, "_session", True) is None:
            return  # the channel was cleaned up (connection lost): nothing to pause or resume
        method = getattr(chan, "pause_reading" if paused else "resume_reading", None)
        if callable(method):
            method()


def attachable(handler: Any) -> Any:
    """The stream session under a handler's reader, if inline serving can take it over."""
    session = getattr(getattr(handler, "_reader", None), "_session", None)
    needed = ("_recv_buf", "_recv_buf_len", "_eof_received", "eof_received", "connection_lost")
    if session is None or not _MAX_PACKET or not all(hasattr(session, n) for n in needed):
        return None
    if not isinstance(getattr(session, "_recv_buf", None), dict) or None not in session._recv_buf:
        return None
    return session
