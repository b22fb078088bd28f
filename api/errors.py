"""Every error the API returns is mapped here, once. No stack trace ever reaches a caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.service import RPCError, RPCStatusCode

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """An error with a status code and a message meant for the caller."""

    def __init__(self, status_code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.extra = extra


def _field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_error(errors: Sequence[Mapping[str, Any]], what: str = "request") -> ApiError:
    """The one 422 shape: a summary naming the fields, and every error with its field path."""
    items = [
        {"field": _field_path(e.get("loc", ())), "message": e.get("msg", "invalid"), "type": e.get("type")}
        for e in errors
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in items[:5])
    return ApiError(422, f"invalid {what}: {summary}", errors=items)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error(exc.errors())
        return JSONResponse(status_code=422, content={"message": error.message, **error.extra})

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(status_code=exc.status_code, content={"message": exc.message, **exc.extra})

    @app.exception_handler(RPCError)
    async def _temporal_error(_: Request, exc: RPCError) -> JSONResponse:
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            log.warning("temporal unavailable", error=str(exc))
            return JSONResponse(status_code=503, content={"message": "workflow service unavailable, retry later"})
        log.error("temporal error", error=str(exc), status=str(exc.status))
        return JSONResponse(status_code=502, content={"message": "workflow service error"})

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse(status_code=500, content={"message": "internal error"})
