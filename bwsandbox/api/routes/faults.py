"""`/tenants/{name}/faults`: switching faults on and off."""

from __future__ import annotations

from fastapi import APIRouter

from bwsandbox import control
from bwsandbox import faults as faults_mod
from bwsandbox.api import models
from bwsandbox.api.routes.deps import DB, FaultId
from bwsandbox.clock import Clock

router = APIRouter()


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
def clear_fault(name: str, fault_id: FaultId, conn: DB) -> dict[str, int]:
    control.require_tenant(conn, name)
    if not any(f.id == fault_id for f in faults_mod.listing(conn, tenant=name)):
        raise control.NotFound(f"tenant {name!r} has no fault #{fault_id}")
    return {"cleared": faults_mod.clear(conn, fault_id=fault_id)}
