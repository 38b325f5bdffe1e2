"""`/api/v1`: tenants, reset, uploads (with the long poll), emails, the
directory, plan/validate, clock, host keys, faults. Thin: each route reads
its input, calls bwsandbox.control or the ingest module that owns the rule,
and shapes JSON."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from bwsandbox import control
from bwsandbox import faults as faults_mod
from bwsandbox import tenants as tenants_mod
from bwsandbox.api import models
from bwsandbox.clock import Clock
from bwsandbox.config import Settings
from bwsandbox.errors import UsageError
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import hostkeys
from bwsandbox.tenants import Tenant

router = APIRouter()

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


def _finished(sandbox: Sandbox) -> None:
    if sandbox.worker is not None:
        sandbox.worker.between_files()  # a file seen done also has its emails and reports out


# -- tenants --------------------------------------------------------------------------

def host_key_view(k: hostkeys.HostKeyInfo) -> models.HostKey:
    return models.HostKey(type=k.type, bits=k.bits, openssh_sha256=k.sha256, openssh_md5=k.md5,
                          putty=k.putty, curl_sha256=k.curl_sha256, public=k.public)


def _client_host(sandbox: Sandbox, request: Request) -> str:
    host = sandbox.settings.host
    if host in ("0.0.0.0", "::", ""):  # a wildcard: the name the client reached us by
        return request.url.hostname or "127.0.0.1"
    return host


def tenant_view(sandbox: Sandbox, tenant: Tenant, request: Request) -> dict[str, Any]:
    from bwsandbox import layout

    host = _client_host(sandbox, request)
    endpoint = sandbox.endpoints.get(tenant.region)
    port = endpoint.port if endpoint is not None else (
        sandbox.settings.port if tenant.region == "us" else sandbox.settings.eu_port)
    base = f"/api/v1/tenants/{quote(tenant.name, safe='')}"
    return {
        **tenant.to_dict(),
        "endpoint": {"region": str(tenant.region), "host": host, "port": port,
                     "drop_folder": layout.drop_folder(tenant)},
        "known_hosts": [hostkeys.known_hosts_line(host, port, k) for k in sandbox.host_keys],
        "host_keys": [host_key_view(k).model_dump() for k in sandbox.host_keys],
        "links": {"self": base, "uploads": base + "/uploads", "emails": base + "/emails",
                  "users": base + "/users", "faults": base + "/faults", "reset": base + "/reset",
                  "ui": f"/ui/tenants/{quote(tenant.name, safe='')}"},
    }


@router.post("/tenants", status_code=201, response_model=models.TenantCreated, tags=["tenants"],
             summary="create a tenant (password generated when omitted); seed its users")
def create_tenant(body: models.TenantIn, sandbox: SB, conn: DB, request: Request) -> dict[str, Any]:
    spec = control.TenantSpec(**body.model_dump(exclude={"users"}))
    tenant, password = control.create_tenant(conn, sandbox.settings, spec)
    seeded = None
    if body.users:
        try:
            seeded = control.seed_users(conn, sandbox.settings, tenant, body.users)
        except control.SeedError:
            with worker_paused(sandbox):
                control.delete_tenant(conn, sandbox.settings, tenant)  # all or nothing
            raise
    return {**tenant_view(sandbox, tenant, request), "password": password, "seeded": seeded}


@router.get("/tenants", response_model=list[models.Tenant], tags=["tenants"], summary="every tenant")
def list_tenants(sandbox: SB, conn: DB, request: Request) -> list[dict[str, Any]]:
    return [tenant_view(sandbox, t, request) for t in tenants_mod.all_tenants(conn)]


@router.get("/tenants/{name}", response_model=models.Tenant, tags=["tenants"],
            summary="one tenant: endpoint, known_hosts lines, host-key fingerprints")
def get_tenant(name: str, sandbox: SB, conn: DB, request: Request) -> dict[str, Any]:
    return tenant_view(sandbox, control.require_tenant(conn, name), request)


@router.delete("/tenants/{name}", status_code=204, tags=["tenants"], summary="delete a tenant and all it has")
def delete_tenant(name: str, sandbox: SB, conn: DB) -> Response:
    tenant = control.require_tenant(conn, name)
    with worker_paused(sandbox):
        control.delete_tenant(conn, sandbox.settings, tenant)
    return Response(status_code=204)


@router.post("/tenants/{name}/reset", tags=["tenants"],
             summary="forget the tenant's uploads, reports, directory, admin edits, emails and faults; "
                     "optionally seed users")
async def reset_tenant(name: str, sandbox: SB, request: Request,
                       body: models.ResetIn | None = None) -> dict[str, Any]:
    if sandbox.pickup is not None:
        await sandbox.pickup.drain()  # uploads already closed are handed over, then forgotten

    def reset() -> dict[str, Any]:
        conn = sandbox.connect()
        try:
            tenant = control.require_tenant(conn, name)
            with worker_paused(sandbox):
                control.purge_tenant_data(conn, sandbox.settings, tenant)
            seeded = control.seed_users(conn, sandbox.settings, tenant, body.users) if body and body.users \
                else None
            return {**tenant_view(sandbox, tenant, request), "seeded": seeded}
        finally:
            conn.close()

    result = await run_in_threadpool(reset)
    sandbox.file_events.notify()  # the UI's long poll shows the empty list at once
    return result


# -- uploads ----------------------------------------------------------------------------

def _links(tenant: str, upload: dict[str, Any]) -> dict[str, Any]:
    t = quote(tenant, safe="")
    base = f"/api/v1/tenants/{t}/files/{upload['id']}"
    upload["links"] = {"self": base, "ui": f"/ui/tenants/{t}/uploads/{upload['id']}",
                       **({"errors_csv": base + "/errors.csv"} if upload.get("has_errors_csv") else {})}
    return upload


async def _in_thread(sandbox: Sandbox, fn: Any, *args: Any) -> Any:
    def call() -> Any:
        conn = sandbox.connect()
        try:
            return fn(conn, *args)
        finally:
            conn.close()

    return await run_in_threadpool(call)


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
    await _in_thread(sandbox, control.require_tenant, name)
    if since is not None and wait > 0 and sandbox.file_events.version == since:
        closing = _closing(request)
        if closing is None or not closing.is_set():
            await sandbox.file_events.wait_async(since, wait)
    version = sandbox.file_events.version
    found = await _in_thread(sandbox, control.uploads, name)
    return {"version": version, "uploads": [_links(name, u) for u in found]}


@router.get("/tenants/{name}/uploads/{filename}", tags=["uploads"],
            summary="the latest upload of that name with its report once final, waiting up to `wait` s")
async def get_upload(
    name: str, filename: str, sandbox: SB, request: Request,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a final state")] = 0,
    after: Annotated[int, Query(ge=0, description="only uploads with an id above this")] = 0,
) -> dict[str, Any]:
    await _in_thread(sandbox, control.require_tenant, name)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    closing = _closing(request)
    while True:
        seen = sandbox.file_events.version  # before the read: a change in between wakes the wait
        found: dict[str, Any] | None = await _in_thread(sandbox, control.latest_upload, name, filename, after)
        remaining = deadline - loop.time()
        if (found is not None and found["final"]) or remaining <= 0 or (closing and closing.is_set()):
            break
        await sandbox.file_events.wait_async(seen, remaining)
    if found is None:
        raise control.NotFound(
            f"no upload named {filename!r} arrived for tenant {name!r}"
            + (f" within {wait:g} s" if wait else " (add ?wait=SECONDS to wait for it)"))
    if found["final"]:
        await run_in_threadpool(_finished, sandbox)
    return _links(name, found)


@router.get("/tenants/{name}/files/{file_id}", tags=["uploads"],
            summary="one upload by id: report and what it changed (field by field)")
def get_file(name: str, file_id: int, conn: DB) -> dict[str, Any]:
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
def file_errors(name: str, file_id: int, conn: DB) -> Response:
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


# -- emails -----------------------------------------------------------------------------

@router.get("/tenants/{name}/emails", tags=["emails"],
            summary="captured emails: to, subject, plain text, attachments by URL")
def list_emails(name: str, conn: DB) -> list[dict[str, Any]]:
    from bwsandbox.ingest import notify

    control.require_tenant(conn, name)
    base = f"/api/v1/tenants/{quote(name, safe='')}/emails"
    out = []
    for e in notify.listing(conn, name, bodies=True):
        files = e.get("attachment_files")
        out.append({
            "id": e["id"], "kind": e["kind"], "file_id": e["file_id"], "created_at": e["created_at"],
            "to": e["to"], "subject": e["subject"], "text": e.get("body", ""), "state": e["state"],
            "attachments": [{**a, "url": f"{base}/{e['id']}/attachments/{i}"}
                            for i, a in enumerate(files if isinstance(files, list) else [])],
            "raw_url": f"{base}/{e['id']}/raw",
        })
    return out


def _message(conn: sqlite3.Connection, tenant: str, email_id: int) -> bytes:
    control.require_tenant(conn, tenant)
    row = conn.execute(
        "SELECT message FROM emails WHERE id = ? AND tenant = ?", (email_id, tenant)
    ).fetchone()
    if row is None:
        raise control.NotFound(f"tenant {tenant!r} has no email #{email_id}")
    return bytes(row[0])


@router.get("/tenants/{name}/emails/{email_id}/raw", tags=["emails"], response_class=Response,
            summary="the whole message as sent (.eml)")
def raw_email(name: str, email_id: int, conn: DB) -> Response:
    return Response(_message(conn, name, email_id), media_type="message/rfc822")


@router.get("/tenants/{name}/emails/{email_id}/attachments/{index}", tags=["emails"], response_class=Response,
            summary="download one attachment")
def attachment(name: str, email_id: int, index: int, conn: DB) -> Response:
    parsed = message_from_bytes(_message(conn, name, email_id), policy=policy.default)
    parts = list(parsed.iter_attachments())
    if not 0 <= index < len(parts):
        raise control.NotFound(f"email #{email_id} has {len(parts)} attachment(s); no #{index}")
    part = parts[index]
    filename = part.get_filename() or f"attachment-{index}"
    return Response(part.get_payload(decode=True) or b"", media_type=part.get_content_type(), headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"})


# -- the directory ------------------------------------------------------------------------

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

    data = await _body(request)
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

    result: dict[str, Any] = await _in_thread(sandbox, run)
    return result


# -- checking a file ------------------------------------------------------------------------

async def _body(request: Request) -> bytes:
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_BODY:
            raise UsageError(f"the file is over {MAX_BODY // 2**20} MiB: check it with `bwsandbox validate`")
    return data


@router.post("/tenants/{name}/plan", tags=["validate"], openapi_extra=CSV_BODY,
             summary="what this file would do to the tenant (its settings and directory); changes nothing")
async def plan(name: str, request: Request, sandbox: SB,
               filename: Annotated[str, Query(description="the name it would be uploaded under")]
               = "users_plan.csv") -> dict[str, Any]:
    data = await _body(request)
    result: dict[str, Any] = await _in_thread(sandbox, _plan, name, filename, data, sandbox.settings)
    return result


def _plan(
    conn: sqlite3.Connection, name: str, filename: str, data: bytes, settings: Settings
) -> dict[str, Any]:
    from bwsandbox import clock as clock_mod
    from bwsandbox.ingest import process

    tenant = control.require_tenant(conn, name)
    done = process.plan(conn, data_dir=settings.data_dir, tenant=tenant, name=filename, data=data,
                        clock=clock_mod.load(conn), termination_limit=settings.engage_termination_limit)
    errors = done.errors_csv.decode("utf-8", "replace") if done.errors_csv else None
    return {**done.report, "errors_csv": errors}


@router.post("/validate", tags=["validate"], openapi_extra=CSV_BODY,
             summary="plain validation (no tenant, no directory), as `bwsandbox validate`")
async def validate(
    request: Request,
    profile: Literal["core", "engage"] = "core",
    locale: Literal["en-US", "en-GB"] = "en-US",
    custom_key: Annotated[list[str] | None, Query()] = None,
    filename: Annotated[str, Query()] = "users.csv",
) -> dict[str, Any]:
    data = await _body(request)

    def run() -> dict[str, Any]:
        from bwsandbox.spec.fields import Profile
        from bwsandbox.validator import Context
        from bwsandbox.validator import validate as check

        context = Context(profile=Profile(profile), locale=locale, custom_keys=frozenset(custom_key or ()))
        report = check(data, context, name=filename).report.to_dict()
        return dict(report)

    result: dict[str, Any] = await run_in_threadpool(run)
    return result


# -- the clock -------------------------------------------------------------------------------

@router.get("/clock", tags=["clock"], summary="the sandbox's today")
def get_clock(conn: DB) -> dict[str, Any]:
    return control.clock_state(conn)


@router.put("/clock", tags=["clock"], summary="set today (deactivation dates reached take effect)")
def set_clock(body: models.ClockSet, sandbox: SB, conn: DB) -> dict[str, Any]:
    return control.set_clock(conn, sandbox.settings, control.offset_for(body.today))


@router.post("/clock/advance", tags=["clock"], summary="move today by DAYS")
def advance_clock(body: models.ClockAdvance, sandbox: SB, conn: DB) -> dict[str, Any]:
    from bwsandbox import clock as clock_mod

    return control.set_clock(conn, sandbox.settings, clock_mod.load(conn).offset_days + body.days)


@router.delete("/clock", tags=["clock"], summary="back to the real date")
def reset_clock(sandbox: SB, conn: DB) -> dict[str, Any]:
    return control.set_clock(conn, sandbox.settings, 0)


# -- host keys ---------------------------------------------------------------------------------

@router.get("/hostkeys", tags=["host keys"],
            summary="fingerprints as OpenSSH, PuTTY/FileZilla and curl show them")
def get_host_keys(sandbox: SB) -> dict[str, Any]:
    on_disk = [hostkeys.describe(k) for k in hostkeys.ensure(sandbox.data_dir)]
    return {
        "host_keys": [host_key_view(k).model_dump() for k in sandbox.host_keys],
        "announced": [host_key_view(k).model_dump() for k in sandbox.announced_keys],
        "restart_needed": {k.sha256 for k in on_disk} != {k.sha256 for k in sandbox.host_keys},
    }


@router.get("/hostkeys/known_hosts", tags=["host keys"], response_class=PlainTextResponse,
            summary="known_hosts lines for each endpoint")
def known_hosts(sandbox: SB, request: Request) -> str:
    host = _client_host(sandbox, request)
    lines = []
    for region, endpoint in sandbox.endpoints.items():
        lines.append(f"# bwsandbox {region} endpoint")
        lines += [hostkeys.known_hosts_line(host, endpoint.port, k) for k in sandbox.host_keys]
    return "\n".join(lines) + "\n"


@router.post("/hostkeys/rotate", tags=["host keys"],
             summary="simulate production changing its host keys (in use after a restart)")
def rotate(body: models.RotateIn, sandbox: SB, request: Request) -> dict[str, Any]:
    new, active = hostkeys.rotate(sandbox.data_dir, announce=body.announce)
    host = _client_host(sandbox, request)
    lines = [hostkeys.known_hosts_line(host, endpoint.port, k)
             for endpoint in sandbox.endpoints.values() for k in new]
    return {"new": [host_key_view(k).model_dump() for k in new], "active_after_restart": active,
            "known_hosts": lines, "note": "restart `bwsandbox serve` to offer them"}


# -- faults ------------------------------------------------------------------------------------

@router.get("/tenants/{name}/faults", tags=["faults"],
            summary="active faults: the tenant's and its endpoint's")
def list_faults(name: str, conn: DB) -> list[dict[str, object]]:
    control.require_tenant(conn, name)
    return [f.to_dict() for f in faults_mod.listing(conn, tenant=name)]


@router.post("/tenants/{name}/faults", status_code=201, tags=["faults"],
             summary="switch a fault on (bwsandbox/faults.py)")
def add_fault(name: str, body: models.FaultIn, conn: DB) -> dict[str, object]:
    tenant = control.require_tenant(conn, name)
    endpoint = body.endpoint or faults_mod.FaultKind(body.kind) in faults_mod.ENDPOINT_ONLY
    fault = faults_mod.add(
        conn, kind=body.kind, region=str(tenant.region), tenant=None if endpoint else tenant.name,
        created_at=Clock().iso(), after_bytes=body.after_bytes, times=body.times, delay_ms=body.delay_ms,
        kbps=body.kbps, probability=body.probability, seed=body.seed,
    )
    return fault.to_dict()


@router.delete("/tenants/{name}/faults", tags=["faults"],
               summary="clear the tenant's faults (and its endpoint's with endpoint=true)")
def clear_faults(name: str, conn: DB, endpoint: bool = False) -> dict[str, int]:
    tenant = control.require_tenant(conn, name)
    cleared = faults_mod.clear(conn, tenant=name)
    if endpoint:
        cleared += faults_mod.clear(conn, region=str(tenant.region))
    return {"cleared": cleared}


@router.delete("/tenants/{name}/faults/{fault_id}", tags=["faults"], summary="clear one fault")
def clear_fault(name: str, fault_id: int, conn: DB) -> dict[str, int]:
    control.require_tenant(conn, name)
    if not any(f.id == fault_id for f in faults_mod.listing(conn, tenant=name)):
        raise control.NotFound(f"tenant {name!r} has no fault #{fault_id}")
    return {"cleared": faults_mod.clear(conn, fault_id=fault_id)}
