"""`/clock`: the sandbox's today."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bwsandbox import clock as clock_mod
from bwsandbox import control
from bwsandbox.api import models
from bwsandbox.api.routes.deps import DB, SB

router = APIRouter()


@router.get("/clock", tags=["clock"], summary="the sandbox's today")
def get_clock(conn: DB) -> dict[str, Any]:
    return control.clock_state(conn)


@router.put("/clock", tags=["clock"], summary="set today (deactivation dates reached take effect)")
def set_clock(body: models.ClockSet, sandbox: SB, conn: DB) -> dict[str, Any]:
    return control.set_clock(conn, sandbox.settings, clock_mod.offset_for(body.today))


@router.post("/clock/advance", tags=["clock"], summary="move today by DAYS")
def advance_clock(body: models.ClockAdvance, sandbox: SB, conn: DB) -> dict[str, Any]:
    return control.set_clock(conn, sandbox.settings, clock_mod.advanced(clock_mod.load(conn), body.days))


@router.delete("/clock", tags=["clock"], summary="back to the real date")
def reset_clock(sandbox: SB, conn: DB) -> dict[str, Any]:
    return control.set_clock(conn, sandbox.settings, 0)
