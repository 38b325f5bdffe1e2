"""`/tenants/{name}/users` and `/departments`: the directory, seeded and edited
as an admin would."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response, StreamingResponse

from bwsandbox import control
from bwsandbox.api import models
from bwsandbox.api.routes.deps import DB, SB, in_thread, read_body
from bwsandbox.errors import UsageError
from bwsandbox.sandbox import Sandbox

router = APIRouter()


@router.get("/tenants/{name}/users", tags=["directory"], summary="the tenant's users",
            response_model=list[dict[str, str]])
def list_users(name: str, sandbox: SB, conn: DB) -> Response:
    control.require_tenant(conn, name)  # an unknown tenant is a 404 problem, before any byte is sent
    return StreamingResponse(_users_json(sandbox, name), media_type="application/json")


def _users_json(sandbox: Sandbox, tenant: str) -> Iterator[bytes]:
    """The users as one compact JSON array, the bytes a whole-list response
    had, sent a batch at a time: a million users never sit in memory. The
    generator has its own connection (the request's closes with the route)
    and one read snapshot, so the batches show one state of the directory."""
    from bwsandbox.ingest import directory

    conn = sandbox.connect()
    try:
        with directory.read_snapshot(conn):
            yield b"["
            sep = ""
            chunk: list[str] = []
            for user in directory.iter_users(conn, tenant):
                chunk.append(json.dumps(user, ensure_ascii=False, separators=(",", ":")))
                if len(chunk) == directory.LISTING_BATCH:
                    yield (sep + ",".join(chunk)).encode("utf-8")
                    sep, chunk = ",", []
            yield (sep + ",".join(chunk) + "]").encode("utf-8") if chunk else b"]"
    finally:
        conn.close()


@router.post("/tenants/{name}/users", tags=["directory"],
             summary="seed users, as an admin's manual CSV upload; returns its report")
def seed_users(
    name: str, users: Annotated[list[models.User], Body()], sandbox: SB, conn: DB
) -> dict[str, Any]:
    if not users:
        raise UsageError("give at least one user, e.g. [{\"email\": \"ada@example.com\", ...}]")
    return control.seed_users(conn, sandbox.settings, control.require_tenant(conn, name), users)


@router.get("/tenants/{name}/users/{email}", tags=["directory"], summary="one user and its history")
def get_user(name: str, email: str, conn: DB) -> dict[str, Any]:
    from bwsandbox.ingest import directory

    control.require_tenant(conn, name)
    for user in directory.iter_users(conn, name):
        if user.get("email", "").lower() == email.lower():
            return {**user, "history": list(directory.history(conn, name, email))}
    raise control.NotFound(f"no user {email!r} in tenant {name!r}")


@router.patch("/tenants/{name}/users/{email}", tags=["directory"],
              summary="an admin edit of one user (a later file overrides it); returns its report")
def edit_user(name: str, email: str, fields: Annotated[dict[str, str], Body()], sandbox: SB,
              conn: DB) -> dict[str, Any]:
    from bwsandbox.ingest import admin

    control.require_tenant(conn, name)
    if not fields:
        raise UsageError("give at least one field, e.g. {\"title\": \"CTO\"}")
    return dict(admin.set_user(conn, sandbox.settings, name, email, fields).report)


@router.get("/tenants/{name}/departments", tags=["directory"], summary="the tenant's departments")
def list_departments(name: str, conn: DB) -> list[dict[str, object]]:
    from bwsandbox.ingest import directory

    control.require_tenant(conn, name)
    return directory.departments_listing(conn, name)


DEPARTMENTS_BODY = {"requestBody": {"required": True, "content": {
    "text/csv": {"schema": {"type": "string"}, "example": "name,parent,is_active\r\nCompany,,true\r\n"},
    "application/json": {"schema": {"type": "array", "items": {"type": "object"}},
                         "example": [{"name": "Company"}, {"name": "Engineering", "parent": "Company"}]},
}}}


@router.post("/tenants/{name}/departments", tags=["directory"], openapi_extra=DEPARTMENTS_BODY,
             summary="seed departments: the department file (CSV) or its rows (JSON), applied as an "
                     "admin's manual upload; returns its report")
async def seed_departments(name: str, request: Request, sandbox: SB) -> dict[str, Any]:
    import json

    data = await read_body(request)
    rows: list[dict[str, Any]] | None = None
    if "json" in request.headers.get("content-type", ""):
        try:
            parsed = json.loads(data or b"null")
        except ValueError as exc:
            raise UsageError(f"the body is not JSON: {exc}") from None
        if not isinstance(parsed, list) or not all(isinstance(r, dict) for r in parsed):
            raise UsageError('give a JSON list of departments, e.g. [{"name": "Engineering", "parent": ""}]')
        rows = parsed

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        tenant = control.require_tenant(conn, name)
        given = None if rows is not None else data
        return control.seed_departments(conn, sandbox.settings, tenant, data=given, rows=rows)

    result: dict[str, Any] = await in_thread(sandbox, run)
    return result
