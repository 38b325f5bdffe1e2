"""`/hostkeys`: fingerprints, known_hosts lines, and rotating the keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from bwsandbox.api import models
from bwsandbox.api.routes.deps import SB, client_host, host_key_view
from bwsandbox.server import hostkeys

router = APIRouter()


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
    host = client_host(sandbox, request)
    lines = []
    for region, endpoint in sandbox.endpoints.items():
        lines.append(f"# bwsandbox {region} endpoint")
        lines += [hostkeys.known_hosts_line(host, endpoint.port, k) for k in sandbox.host_keys]
    return "\n".join(lines) + "\n"


@router.post("/hostkeys/rotate", tags=["host keys"],
             summary="simulate production changing its host keys (in use after a restart)")
def rotate(body: models.RotateIn, sandbox: SB, request: Request) -> dict[str, Any]:
    rotation = hostkeys.rotate(sandbox.data_dir, announce=body.announce)
    new, active = rotation.keys, rotation.active
    host = client_host(sandbox, request)
    lines = [hostkeys.known_hosts_line(host, endpoint.port, k)
             for endpoint in sandbox.endpoints.values() for k in new]
    def shown(path: Path) -> str:  # as the data directory names it
        return str(path.relative_to(sandbox.data_dir)) if path.is_relative_to(sandbox.data_dir) else path.name

    return {"new": [host_key_view(k).model_dump() for k in new], "active_after_restart": active,
            "known_hosts": lines, "note": "restart `bwsandbox serve` to offer them",
            # Unreadable key files met on the way, kept aside (never deleted), as the CLI says them.
            "set_aside": [{"was": shown(was), "now": shown(now)} for was, now in rotation.set_aside],
            "remade_now": [shown(path) for path in rotation.remade]}
