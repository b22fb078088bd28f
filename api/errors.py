"""Every error the API returns is mapped here, once. No stack trace ever reaches a caller."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

log = structlog.get_logger(__name__)


class ApiError(Exception):
    """An error with a status code and a message meant for the caller."""

    def __init__(self, status_code: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers
        self.extra = extra


class FieldError(BaseModel):
    # The field's path in the request (``lines.0.quantity``, ``quote_id``); ``body`` for the body as a whole.
    field: str
    message: str
    type: str | None = None


class ErrorBody(BaseModel):
    """What every error answer carries (4xx and 5xx alike): a message for a person, naming the field when one is
    at fault. A 422 for a malformed request lists each field in ``errors``; some answers add fields of their own
    (``type`` for a refused override, ``field`` and ``code`` for a quote that cannot be honoured)."""

    model_config = ConfigDict(extra="allow")

    message: str
    errors: list[FieldError] | None = None


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


def document_errors(app: FastAPI) -> None:
    """Say in the OpenAPI schema what error answers look like: every documented 4xx and 5xx is an ``ErrorBody``
    (FastAPI would otherwise advertise its own ``{"detail": ...}`` for 422, which this API never sends)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        for name, model in (("ErrorBody", ErrorBody), ("FieldError", FieldError)):
            components[name] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components[name].pop("$defs", None)
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for code, response in operation.get("responses", {}).items():
                    if code[0] in "45":
                        response["content"] = error
                        if response.get("description") == "Validation Error":
                            response["description"] = "a malformed request: each error names its field"
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error(exc.errors())
        return JSONResponse(status_code=422, content={"message": error.message, **error.extra})

    @app.exception_handler(HTTPException)
    async def _http_error(_: Request, exc: HTTPException) -> JSONResponse:
        # Raised by the framework, not by our routes: an unknown path or method, and a body that cannot be read at
        # all (bytes that are not UTF-8). The latter is a malformed body like any other: 422, naming the body,
        # as FastAPI itself answers JSON that does not parse (so every operation's documented 422 covers it).
        if exc.status_code == 400:
            error = validation_error([{"loc": ("body",), "msg": str(exc.detail), "type": "body_unreadable"}])
            return JSONResponse(status_code=422, content={"message": error.message, **error.extra})
        return JSONResponse(status_code=exc.status_code, content={"message": str(exc.detail)}, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            status_code=exc.status_code, content={"message": exc.message, **exc.extra}, headers=exc.headers
        )

    @app.exception_handler(WorkflowUpdateFailedError)
    async def _update_refused(_: Request, exc: WorkflowUpdateFailedError) -> JSONResponse:
        # The workflow's validator (or its handler) said no: its reason, verbatim, is the message. Nothing was
        # recorded in the order's history when a validator refused.
        cause = exc.cause
        reason = cause.message if isinstance(cause, FailureError) else str(cause)
        kind = getattr(cause, "type", None)
        return JSONResponse(status_code=422, content={"message": reason, "type": kind})

    @app.exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError)
    async def _update_timed_out(_: Request, exc: WorkflowUpdateRPCTimeoutOrCancelledError) -> JSONResponse:
        # A call about an update timed out (the override routes answer 503 or 202 themselves; this is the net
        # under any other caller). The update may still be applied later.
        log.warning("update not answered in time", error=str(exc.__cause__ or exc))
        return JSONResponse(status_code=503, content={"message": "workflow service unavailable, retry later"})

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
