"""Liveness and readiness: can this process reach its database and Temporal?"""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import text

from api.deps import TemporalDep, UowDep

router = APIRouter(tags=["health"])


@router.get("/health")
async def health(response: Response, client: TemporalDep, uow: UowDep) -> dict[str, str]:
    checks: dict[str, str] = {}
    try:
        async with uow:
            await uow.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as err:  # a health check reports, it does not raise
        checks["database"] = f"error: {type(err).__name__}"
    try:
        await client.service_client.check_health()
        checks["temporal"] = "ok"
    except Exception as err:
        checks["temporal"] = f"error: {type(err).__name__}"
    if any(v != "ok" for v in checks.values()):
        response.status_code = 503
    return checks
