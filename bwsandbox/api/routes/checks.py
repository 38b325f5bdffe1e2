"""`/tenants/{name}/plan` and `/validate`: what a file would do, changing nothing."""

from __future__ import annotations

import sqlite3
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from bwsandbox import control
from bwsandbox.api.routes.deps import CSV_BODY, SB, in_thread, read_body
from bwsandbox.config import Settings

router = APIRouter()


@router.post("/tenants/{name}/plan", tags=["validate"], openapi_extra=CSV_BODY,
             summary="what this file would do to the tenant (its settings and directory); changes nothing")
async def plan(name: str, request: Request, sandbox: SB,
               filename: Annotated[str, Query(description="the name it would be uploaded under")]
               = "users_plan.csv") -> dict[str, Any]:
    data = await read_body(request)
    result: dict[str, Any] = await in_thread(sandbox, _plan, name, filename, data, sandbox.settings)
    return result


def _plan(
    conn: sqlite3.Connection, name: str, filename: str, data: bytes, settings: Settings
) -> dict[str, Any]:
    from bwsandbox import clock as clock_mod
    from bwsandbox.ingest import process

    tenant = control.require_tenant(conn, name)
    done = process.plan(conn, data_dir=settings.data_dir, tenant=tenant, name=filename, data=data,
                        clock=clock_mod.load(conn), termination_limit=settings.engage_termination_limit,
                        bounds=process.Bounds.from_settings(settings))
    errors = done.errors_csv.decode("utf-8", "replace") if done.errors_csv else None
    return {**done.report, "errors_csv": errors}


@router.post("/validate", tags=["validate"], openapi_extra=CSV_BODY,
             summary="as `bwsandbox validate`: against an empty directory (no tenant), with its plan")
async def validate(
    request: Request,
    profile: Literal["core", "engage"] = "core",
    locale: Literal["en-US", "en-GB"] = "en-US",
    custom_key: Annotated[list[str] | None, Query()] = None,
    filename: Annotated[str, Query()] = "users.csv",
) -> dict[str, Any]:
    data = await read_body(request)

    def run() -> dict[str, Any]:
        from bwsandbox.ingest.plan import validate as judge
        from bwsandbox.spec.fields import Profile
        from bwsandbox.validator import Context

        context = Context(profile=Profile(profile), locale=locale, custom_keys=frozenset(custom_key or ()))
        judged = judge(data, context, name=filename)
        return {**judged.report.to_dict(), "plan": judged.plan}

    result: dict[str, Any] = await run_in_threadpool(run)
    return result
