"""`/tenants/{name}/users` and `/departments`: the directory, seeded and edited
as an admin would."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from bwsandbox import control
from bwsandbox.api import models
from bwsandbox.api.routes.deps import DB, SB, in_thread, read_body
from bwsandbox.errors import UsageError

router = APIRouter()


@router.get("/tenants/{name}/users", tags=["directory"], summary="the tenant's users")
def list_users(name: str, conn: DB) -> list[dict[str, str]]:
    from bwsandbox.ingest import directory

    control.require_tenant(conn, name)
    return directory.users_listing(conn, name)


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
    for user in directory.users_listing(conn, name):
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
