"""Errors as RFC 9457 problem details: `type`, `title`, `status`, `detail`
(what to do about it), `instance`; a bad request never becomes a traceback
or a 500 without words.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bwsandbox.control import NotFound, SeedError
from bwsandbox.errors import BwsandboxError, UsageError

log = logging.getLogger("bwsandbox.api")

TYPE_BASE = "https://bwsandbox.dev/problems/"  # identifiers, documented in docs/api.md
MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request", 401: "Unauthorized", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Too large", 422: "Invalid input", 500: "Internal error", 503: "Not ready",
}


def problem(status: int, detail: str, *, kind: str | None = None, request: Request | None = None,
            **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + (kind or TITLES.get(status, "error").lower().replace(" ", "-")),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    if request is not None:
        body["instance"] = request.url.path
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, str(exc), request=request)

    @app.exception_handler(SeedError)
    async def seed(request: Request, exc: SeedError) -> JSONResponse:
        extra = {"report": exc.report} if exc.report is not None else {}
        applied = " (rows without an error were applied: see `report`)" if exc.report is not None else ""
        return problem(422, f"The {exc.what} to seed are invalid; fix each row named in `problems`{applied}.",
                       kind=f"invalid-{exc.what}", request=request, problems=exc.problems, **extra)

    @app.exception_handler(UsageError)
    async def usage(request: Request, exc: UsageError) -> JSONResponse:
        text = str(exc)
        status = 409 if "already" in text else 400
        return problem(status, text, request=request)

    @app.exception_handler(BwsandboxError)
    async def sandbox_error(request: Request, exc: BwsandboxError) -> JSONResponse:
        return problem(400, str(exc), request=request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['where']}: {e['problem']}" for e in errors) or "invalid request"
        return problem(422, detail, request=request, errors=errors)

    @app.exception_handler(HTTPException)
    async def http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /openapi.json or /docs)"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path} (see /docs)"
        return problem(exc.status_code, detail, request=request)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("HTTP %s %s failed", request.method, request.url.path)
        return problem(500, f"the sandbox failed to answer: {type(exc).__name__}: {exc}", request=request)
