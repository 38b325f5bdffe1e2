"""Inline SFTP serving (`bwsandbox/server/inline.py`): requests are handled
as the channel delivers them, in order, even when one of them has to wait.
The real handler is exercised by every client test; these drive the loop
with a stand-in handler to reach what real sessions rarely do."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncssh

from bwsandbox.server import inline


class Chan:
    """The channel's reading switch: records each pause and resume."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


class Session:
    """The parts of asyncssh's stream session that inline serving takes over."""

    def __init__(self, buffered: list[Any]) -> None:
        self._chan = Chan()
        self._recv_buf: dict[Any, list[Any]] = {None: list(buffered)}
        self._recv_buf_len = sum(len(b) for b in buffered if isinstance(b, bytes))
        self._eof_received = False
        self.closed: list[Exception | None] = []

    def eof_received(self) -> bool:
        self._eof_received = True
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.append(exc)
        self.eof_received()  # as asyncssh's SSHStreamSession does


class Handler:
    """Answers each request with its id; request 2 waits for `gate`."""

    def __init__(self, gate: asyncio.Future[None]) -> None:
        self.gate = gate
        self.done: list[int] = []
        self.flushed: list[list[int]] = []
        self.out: list[int] = []

    def log_received_packet(self, *args: Any) -> None:
        pass

    async def _process_packet(self, pkttype: int, pktid: int, packet: Any) -> None:
        if pktid == 2:
            await self.gate
        self.done.append(pktid)
        self.out.append(pktid)

    def flush(self) -> None:
        if self.out:
            self.flushed.append(self.out[:])
            self.out.clear()


def sftp(pktid: int, body: bytes = b"") -> bytes:
    payload = bytes((17,)) + pktid.to_bytes(4, "big") + body
    return len(payload).to_bytes(4, "big") + payload


def test_requests_after_one_that_waits_keep_their_order() -> None:
    async def main() -> None:
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handler = Handler(gate)
        session = Session([sftp(1)])  # buffered before the take-over
        serving = inline.Inline(handler, session, handler.flush)
        task = asyncio.ensure_future(serving.run())
        await asyncio.sleep(0)
        data = sftp(2) + sftp(3)
        session.data_received(data[:7], None)  # type: ignore[attr-defined]  # a packet cut in two
        session.data_received(data[7:], None)  # type: ignore[attr-defined]
        await asyncio.sleep(0)
        assert handler.done == [1]  # 2 waits, 3 queues behind it
        assert session._chan.calls == ["pause"]  # the client is held back meanwhile
        gate.set_result(None)
        for _ in range(5):
            await asyncio.sleep(0)
        assert handler.done == [1, 2, 3]
        assert session._chan.calls == ["pause", "resume"]
        assert handler.flushed[0] == [1]
        session.eof_received()
        assert await asyncio.wait_for(task, 1) is None

    asyncio.run(main())


async def _three_requests_the_second_waits() -> tuple[
    asyncio.Future[None], Handler, Session, asyncio.Future[Exception | None]
]:
    """A session served inline that received requests 1-3; 2 waits for the gate."""
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    handler = Handler(gate)
    session = Session([])
    task = asyncio.ensure_future(inline.Inline(handler, session, handler.flush).run())
    await asyncio.sleep(0)
    session.data_received(sftp(1) + sftp(2) + sftp(3), None)  # type: ignore[attr-defined]
    return gate, handler, session, task


def test_a_connection_lost_while_a_request_waits_ends_the_session_without_resuming() -> None:
    """asyncssh cleans a lost channel up (its session gone) but keeps it
    paused: resuming it then would fail on what it still holds."""

    async def main() -> None:
        gate, handler, session, task = await _three_requests_the_second_waits()
        await asyncio.sleep(0)
        assert session._chan.calls == ["pause"]
        session._chan._session = None  # type: ignore[attr-defined]  # asyncssh's channel cleanup
        lost = ConnectionResetError("gone")
        session.connection_lost(lost)
        gate.set_result(None)
        assert await asyncio.wait_for(task, 1) is lost
        assert session._chan.calls == ["pause"]

    asyncio.run(main())


def test_an_oversized_packet_or_a_lost_connection_ends_the_session() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = Handler(loop.create_future())
        session = Session([])
        task = asyncio.ensure_future(inline.Inline(handler, session, handler.flush).run())
        await asyncio.sleep(0)
        session.data_received((1 << 30).to_bytes(4, "big"), None)  # type: ignore[attr-defined]
        got = await asyncio.wait_for(task, 1)
        assert isinstance(got, asyncssh.SFTPBadMessage) and handler.done == []

        session = Session([sftp(1)])
        task = asyncio.ensure_future(inline.Inline(handler, session, handler.flush).run())
        await asyncio.sleep(0)
        lost = ConnectionResetError("gone")
        session.connection_lost(lost)
        assert await asyncio.wait_for(task, 1) is lost
        assert session.closed == [lost]  # asyncssh's own handling still ran
        assert handler.done == [1]

    asyncio.run(main())


def test_only_a_stream_session_of_the_expected_shape_is_taken_over() -> None:
    class Reader:
        def __init__(self, session: object) -> None:
            self._session = session

    class H:
        def __init__(self, session: object) -> None:
            self._reader = Reader(session)

    assert inline.attachable(H(Session([]))) is not None
    assert inline.attachable(H(object())) is None
    assert inline.attachable(object()) is None


def test_end_of_file_while_a_request_waits_ends_the_session_after_the_queue() -> None:
    """asyncssh's loop reads what arrived before the end first: so does inline serving."""

    async def main() -> None:
        gate, handler, session, task = await _three_requests_the_second_waits()
        session.eof_received()
        await asyncio.sleep(0)
        assert not task.done() and handler.done == [1]
        gate.set_result(None)
        assert await asyncio.wait_for(task, 1) is None
        assert handler.done == [1, 2, 3]

    asyncio.run(main())


def test_an_error_already_buffered_ends_the_session_after_the_data_before_it() -> None:
    async def main() -> None:
        handler = Handler(asyncio.get_running_loop().create_future())
        broken = asyncssh.ChannelOpenError(2, "broken")
        session = Session([sftp(1), broken, sftp(3)])
        got = await asyncio.wait_for(inline.Inline(handler, session, handler.flush).run(), 1)
        assert got is broken and handler.done == [1]

    asyncio.run(main())
