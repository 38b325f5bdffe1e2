"""What every group of `/api/v1` routes shares: the sandbox and a store
connection per request, running store work off the event loop, reading a
bounded body, ids the store can hold, and how host keys and the client's
host name are shown."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import AfterValidator
from starlette.concurrency import run_in_threadpool

from bwsandbox import control, store
from bwsandbox.api import models
from bwsandbox.errors import UsageError
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import hostkeys

MAX_WAIT = 600.0
MAX_BODY = 64 * 1024 * 1024  # plan/validate read the body in memory


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
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise UsageError(f"the file is over {MAX_BODY // 2**20} MiB: check it with `bwsandbox validate`")
    return data


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
