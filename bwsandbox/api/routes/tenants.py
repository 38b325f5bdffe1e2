"""`/tenants`: create (with seeded users), list, read, delete, reset."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from bwsandbox import control
from bwsandbox import tenants as tenants_mod
from bwsandbox.api import models
from bwsandbox.api.routes.deps import DB, SB, client_host, host_key_view, worker_paused
from bwsandbox.sandbox import Sandbox
from bwsandbox.server import hostkeys
from bwsandbox.tenants import Tenant

router = APIRouter()


def tenant_view(sandbox: Sandbox, tenant: Tenant, request: Request) -> dict[str, Any]:
    from bwsandbox import layout

    host = client_host(sandbox, request)
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
