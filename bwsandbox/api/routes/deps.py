"""What every group of `/api/v1` routes shares: the sandbox and a store
connection per request, running store work off the event loop, the bound on
request bodies, ids the store can hold, and how host keys and the client's
host name are shown."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bwsandbox import control, store
from bwsandbox.api import models
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import hostkeys

MAX_WAIT = 600.0
# Every route that takes a body holds it whole in memory (parsed JSON, a CSV
# to plan or validate), so every body stops here: BoundedBody.
MAX_BODY = 64 * 1024 * 1024
# What is read and dropped of a chunked body past MAX_BODY before the 413: _drain.
DRAIN_BYTES, DRAIN_SECONDS = MAX_BODY, 10.0


def get_sandbox(request: Request) -> Sandbox:
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox


def open_db(request: Request) -> Iterator[sqlite3.Connection]:
    conn = get_sandbox(request).connect()
    try:
        yield conn
    finally:
        conn.close()


SB = Annotated[Sandbox, Depends(get_sandbox)]
DB = Annotated[sqlite3.Connection, Depends(open_db)]
CSV_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/json": {"schema": {"type": "string"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
}}}


@contextlib.contextmanager
def worker_paused(sandbox: Sandbox) -> Iterator[None]:
    with sandbox.worker.paused() if sandbox.worker is not None else contextlib.nullcontext():
        yield


def finished(sandbox: Sandbox) -> None:
    if sandbox.worker is not None:
        sandbox.worker.between_files()  # a file seen done also has its emails and reports out


def host_key_view(k: hostkeys.HostKeyInfo) -> models.HostKey:
    return models.HostKey(type=k.type, bits=k.bits, openssh_sha256=k.sha256, openssh_md5=k.md5,
                          putty=k.putty, curl_sha256=k.curl_sha256, public=k.public)


def client_host(sandbox: Sandbox, request: Request) -> str:
    host = sandbox.settings.host
    if host in ("0.0.0.0", "::", ""):  # a wildcard: the name the client reached us by
        return request.url.hostname or "127.0.0.1"
    return host


async def in_thread(sandbox: Sandbox, fn: Any, *args: Any) -> Any:
    def call() -> Any:
        conn = sandbox.connect()
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    return await run_in_threadpool(call)


async def read_body(request: Request) -> bytes:
    """The raw body (a CSV or JSON file), bounded by BoundedBody."""
    return await request.body()


def _too_large() -> HTTPException:
    return HTTPException(413, f"the request body is over {MAX_BODY // 2**20} MiB, the API's limit: "
                              "send a file this large by SFTP (check it first with `bwsandbox validate`), "
                              "or seed fewer rows per request")


async def _drain(receive: Receive, message: Message) -> None:
    """Read and drop what is left of a refused chunked body, up to DRAIN bytes
    or seconds, so that the 413 is sent once the client has finished sending:
    a client that sends its whole body before reading the answer (most HTTP
    libraries) reads the 413 instead of a broken pipe, which it gets if the
    connection closes while it still sends."""
    left = DRAIN_BYTES
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while message["type"] == "http.request" and message.get("more_body") and left > 0:
                message = await receive()
                left -= len(message.get("body", b""))


class BoundedBody:
    """One bound on every request body, whichever route reads it: FastAPI
    parsing a JSON model or `read_body`. A declared Content-Length over
    MAX_BODY is refused before a byte is read, a chunked body as it passes
    it (once what is left of it is drained, within bounds: _drain). The 413
    is raised from `receive`, that is inside the route reading the body, so
    it is the usual problem document (problems.py).

    Only POST, PUT and PATCH: no other route reads a body, and a streamed
    answer (GET /users) calls `receive` itself, to notice a disconnect,
    where an error would break the answer instead of refusing the body;
    what it receives it drops, so nothing piles up in memory."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        declared = int(length) if length.isdigit() else 0
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            if declared > MAX_BODY:
                raise _too_large()
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > MAX_BODY:
                    await _drain(receive, message)
                    raise _too_large()
            return message

        await self.app(scope, bounded_receive, send)


def _stored(what: str) -> Any:
    def check(value: int) -> int:
        # SQLite cannot even be asked about a number past its 64-bit INTEGER
        # (OverflowError); no such id was ever stored.
        if not store.fits(value):
            bound = f"at most {store.INT_MAX}" if value > 0 else f"at least {store.INT_MIN}"
            raise control.NotFound(f"no {what} #{value}: an id is {bound}")
        return value

    return AfterValidator(check)


# Ids in paths: one beyond what the store holds is simply not found (404).
FileId = Annotated[int, _stored("upload")]
EmailId = Annotated[int, _stored("email")]
FaultId = Annotated[int, _stored("fault")]
# A lower bound on ids (`after`): past what the store holds, no id is above
# it, as no id is above the largest one.
AboveId = Annotated[int, AfterValidator(lambda value: min(value, store.INT_MAX))]
