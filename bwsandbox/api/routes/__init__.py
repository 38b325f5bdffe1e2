"""`/api/v1`: tenants, reset, uploads (with the long poll), emails, the
directory, plan/validate, clock, host keys, faults. Thin: each route reads
its input, calls bwsandbox.control or the ingest module that owns the rule,
and shapes JSON. One module per group of resources; they are included in
this order, which is also the order of the OpenAPI document."""

from __future__ import annotations

from fastapi import APIRouter

from bwsandbox.api.routes import checks, clock, directory, emails, faults, hostkeys, tenants, uploads

router = APIRouter()
for group in (tenants, uploads, emails, directory, checks, clock, hostkeys, faults):
    router.include_router(group.router)
