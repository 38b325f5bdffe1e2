"""`/tenants/{name}/uploads` and `/files`: every upload with its report, the
long polls that wait for one, and the error files."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bwsandbox import control
from bwsandbox.api.routes.deps import DB, MAX_WAIT, SB, AboveId, FileId, finished, in_thread

router = APIRouter()


def _links(tenant: str, upload: dict[str, Any]) -> dict[str, Any]:
    t = quote(tenant, safe="")
    base = f"/api/v1/tenants/{t}/files/{upload['id']}"
    upload["links"] = {"self": base, "ui": f"/ui/tenants/{t}/uploads/{upload['id']}",
                       **({"errors_csv": base + "/errors.csv"} if upload.get("has_errors_csv") else {})}
    return upload


def _closing(request: Request) -> asyncio.Event | None:
    service = request.app.state.service
    return service.closing if service is not None else None


@router.get("/tenants/{name}/uploads", tags=["uploads"],
            summary="every upload with state and verdict, newest first (incomplete ones included); "
                    "`since` + `wait` long-poll for a change")
async def list_uploads(
    name: str, sandbox: SB, request: Request,
    since: Annotated[int | None, Query(description="the `version` of an earlier answer")] = None,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a change")] = 0,
) -> dict[str, Any]:
    await in_thread(sandbox, control.require_tenant, name)
    if since is not None and wait > 0 and sandbox.file_events.version == since:
        closing = _closing(request)
        if closing is None or not closing.is_set():
            await sandbox.file_events.wait_async(since, wait)
    version = sandbox.file_events.version
    found = await in_thread(sandbox, control.uploads, name)
    return {"version": version, "uploads": [_links(name, u) for u in found]}


@router.get("/tenants/{name}/uploads/{filename}", tags=["uploads"],
            summary="the latest upload of that name with its report once final, waiting up to `wait` s")
async def get_upload(
    name: str, filename: str, sandbox: SB, request: Request,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a final state")] = 0,
    after: Annotated[AboveId, Query(ge=0, description="only uploads with an id above this")] = 0,
) -> dict[str, Any]:
    await in_thread(sandbox, control.require_tenant, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    closing = _closing(request)
    while True:
        seen = sandbox.file_events.version  # before the read: a change in between wakes the wait
        found: dict[str, Any] | None = await in_thread(sandbox, control.latest_upload, name, filename, after)
        remaining = deadline - loop.time()
        if (found is not None and found["final"]) or remaining <= 0 or (closing and closing.is_set()):
            break
        await sandbox.file_events.wait_async(seen, remaining)
    if found is None:
        raise control.NotFound(
            f"no upload named {filename!r} arrived for tenant {name!r}"
            + (f" within {wait:g} s" if wait else " (add ?wait=SECONDS to wait for it)"))
    if found["final"]:
        await run_in_threadpool(finished, sandbox)
    return _links(name, found)


@router.get("/tenants/{name}/files/{file_id}", tags=["uploads"],
            summary="one upload by id: report and what it changed (field by field)")
def get_file(name: str, file_id: FileId, conn: DB) -> dict[str, Any]:
    control.require_tenant(conn, name)
    upload = control.upload_by_id(conn, name, file_id)
    upload["changes"] = control.history_of_file(conn, name, file_id)
    return _links(name, upload)


def _errors_response(conn: sqlite3.Connection, tenant: str, file_id: int, file_name: str) -> Response:
    data = control.errors_csv(conn, file_id)
    if data is None:
        raise control.NotFound(f"upload #{file_id} of {tenant!r} has no error file (it had no error)")
    from bwsandbox.ingest.notify import errors_name

    return Response(data, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(errors_name(file_name))}"})


@router.get("/tenants/{name}/files/{file_id}/errors.csv", tags=["uploads"], response_class=Response,
            summary="the error file production attaches to its email")
def file_errors(name: str, file_id: FileId, conn: DB) -> Response:
    upload = control.upload_by_id(conn, control.require_tenant(conn, name).name, file_id)
    return _errors_response(conn, name, file_id, upload["name"])


@router.get("/tenants/{name}/uploads/{filename}/errors.csv", tags=["uploads"], response_class=Response,
            summary="the error file of the latest upload of that name")
def upload_errors(name: str, filename: str, conn: DB) -> Response:
    control.require_tenant(conn, name)
    upload = control.latest_upload(conn, name, filename)
    if upload is None:
        raise control.NotFound(f"no upload named {filename!r} for tenant {name!r}")
    return _errors_response(conn, name, upload["id"], filename)
