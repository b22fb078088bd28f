"""Liveness (is this process serving?) apart from readiness (can it reach its database and Temporal?).

A liveness probe that failed during a Temporal outage would have the platform restart healthy API processes
for nothing; readiness is what should take an instance out of a load balancer.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from api.deps import TemporalDep, UowDep

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(response: Response, client: TemporalDep, uow: UowDep) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with uow:
            await uow.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:  # a readiness check reports, it does not raise
        checks["database"] = f"error: {type(err).__name__}"
    try:
        await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"error: {type(err).__name__}"
    if any(v != "ok" for v in checks.values()):
        response.status_code = 503
    return checks
