"""The FastAPI application: health, OpenAPI, docs, the web UI's pages, and
`/api/v1` (routes/, one module per group of resources). Thin over the services (GUIDE: api -> sandbox ->
ingest): every rule lives in bwsandbox/control.py and below.

Each request that touches the store opens its own connection (sync routes
run in the thread pool; SQLite connections are per thread). The long polls
are coroutines awaiting `sandbox.file_events`: no thread is held while they wait.
"""

from __future__ import annotations

import asyncio
import html
import secrets
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from bwsandbox.api import problems, routes
from bwsandbox.api.routes.deps import BoundedBody

if TYPE_CHECKING:
    from bwsandbox.sandbox import Sandbox

# Paths readable without the token: they hold no tenant data.
PUBLIC = ("/healthz", "/readyz", "/openapi.json", "/docs", "/assets/")


class Serving(Protocol):
    """What the routes read of the service serving the app (`service.HttpService`,
    which builds the app and so sits above it): `closing` is set when it
    stops, and the long polls answer at once."""

    closing: asyncio.Event


def create_app(sandbox: Sandbox, service: Serving | None = None) -> FastAPI:
    app = FastAPI(
        title="bwsandbox control plane",
        version="1",
        description=(
            "Seed tenants, read the directory, the uploads and their reports, the Technical Contact's "
            "emails; move the clock, rotate host keys, inject faults. Errors are RFC 9457 problem "
            "details. See docs/api.md."
        ),
        docs_url=None, redoc_url=None,  # FastAPI's pages load assets from a CDN: ours is /docs
    )
    app.state.sandbox = sandbox
    app.state.service = service
    problems.install(app)
    token = sandbox.settings.api_token

    class BearerToken(BaseHTTPMiddleware):
        async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
            path = request.url.path
            if token and path.startswith("/api/") and not path.startswith(PUBLIC):
                given = request.headers.get("authorization", "")
                scheme, _, value = given.partition(" ")
                if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip(), token):
                    return problems.problem(
                        401, "send the sandbox's API token as `Authorization: Bearer TOKEN` "
                        "(the api_token setting, BWSANDBOX_API_TOKEN)", request=request)
            return await call_next(request)

    # Inside BearerToken (a middleware added later wraps those added before):
    # its 413 is raised from `receive` in the route reading the body, where
    # the problem handlers see it, not in BaseHTTPMiddleware's own reading.
    app.add_middleware(BoundedBody)
    app.add_middleware(BearerToken)

    @app.get("/healthz", tags=["health"], summary="ok once the SFTP endpoints listen")
    def healthz() -> JSONResponse:
        if sandbox.running:
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "starting"}, status_code=503)

    @app.get("/readyz", tags=["health"], summary="same as /healthz (Mailpit's name)")
    def readyz() -> JSONResponse:
        return healthz()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_page(app.openapi()))

    app.include_router(routes.router, prefix="/api/v1")

    @app.get("/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        kinds = {"app.js": "text/javascript", "app.css": "text/css"}
        if name not in kinds:
            return problems.problem(404, f"no asset {name!r}")
        text = resources.files("bwsandbox.api").joinpath("static", name).read_text("utf-8")
        return Response(text, media_type=kinds[name] + "; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    @app.get("/ui/{path:path}", response_class=HTMLResponse, include_in_schema=False)
    def ui(path: str = "") -> HTMLResponse:
        page = resources.files("bwsandbox.api").joinpath("static", "index.html").read_text("utf-8")
        return HTMLResponse(page, headers={"Content-Security-Policy": _CSP})

    return app


# No external assets, no inline script: a hostile cell that slipped through
# escaping still could not run.
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'"


def _docs_page(spec: dict[str, Any]) -> str:
    """A plain listing of every endpoint, generated from the OpenAPI document."""
    rows = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            rows.append(
                f"<tr><td><code>{html.escape(method.upper())}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(str(op.get('summary', '')))}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>bwsandbox API</title>"
        "<link rel='stylesheet' href='/assets/app.css'></head><body><main>"
        f"<h1>{html.escape(spec['info']['title'])}</h1><p>{html.escape(spec['info'].get('description', ''))}"
        "</p><p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3). "
        "The web UI: <a href='/'>/</a>.</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>What</th></tr></thead><tbody>"
        + "".join(rows) + "</tbody></table></main></body></html>"
    )
