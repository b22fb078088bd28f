"""Three pure ASGI middlewares: authentication before anything is read, a cap on request bodies, and the journal
of mutating calls.

``Authenticate`` checks the API key of every request to a route that needs one before its body is read: an
anonymous caller (or one with an unknown or revoked key) gets 401 without a byte of its upload being parsed or
buffered, and never learns from a 422 what a valid body looks like. The key's principal is left in the scope for
the route's gate (``api.auth.authorize``), which then checks the role for the route.

``BodyLimit`` refuses a body over ``ORCH_MAX_BODY_BYTES`` with 413, from its Content-Length or, for a body sent
in chunks, as soon as it passes the limit. The inventory feeds (CSV imports) keep their own larger cap
(``api.routes.inventory_feeds.MAX_BODY_BYTES``); the webhook its smaller one.

``Journal`` records every POST/PUT/PATCH/DELETE that passed authentication (``api.auth.authorize`` leaves the
caller in the scope): who (key, actor, role, tenant), what (method, path, a truncated summary of the JSON body),
why (``X-Reason``, else the body's ``reason_code``), and how it ended (status and a truncated summary of the
response: the "after"). It is written in its own unit of work once the response has been sent; a failure to
write it is logged, never turned into a failed request.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import PRINCIPAL_KEY, SCOPE_KEY, Principal, principal_of, public_path
from api.errors import ApiError
from infra.db.api_keys import JournalEntry

log = structlog.get_logger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Paths whose route enforces a cap of its own (larger than the default): left to it.
OWN_CAP_PATHS = frozenset({"/inventory/snapshots", "/inventory/adjustments", "/inventory/import"})
# How much of a body is kept in the journal, and how much is read to summarise it.
SUMMARY_CHARS = 4096
CAPTURE_BYTES = 64 * 1024


class Authenticate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = getattr(getattr(scope.get("app"), "state", None), "orchestrator", None)
        if scope["type"] != "http" or state is None or public_path(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            scope[PRINCIPAL_KEY] = await principal_of(state, authorization)
        except ApiError as refused:
            body = json.dumps({"message": refused.message, **refused.extra}).encode()
            head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            head += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (refused.headers or {}).items()]
            await send({"type": "http.response.start", "status": refused.status_code, "headers": head})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OWN_CAP_PATHS:
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode("latin-1")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        # No length declared (a chunked body): read it here, at most the limit, then hand it on.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        handed = False

        async def replay() -> Message:
            nonlocal handed
            if handed:
                return await receive()
            handed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"message": f"body larger than {limit} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _summary(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if "json" in content_type:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        else:
            text = json.dumps(parsed, separators=(",", ":"), default=str)
            if len(text) <= SUMMARY_CHARS:
                return parsed
            return {"truncated": True, "bytes": len(raw), "head": text[:SUMMARY_CHARS]}
    return {"content_type": content_type or None, "bytes": len(raw)}


def _reason(headers: dict[bytes, bytes], request: Any) -> str | None:
    given = headers.get(b"x-reason")
    if given:
        return given.decode("utf-8", "replace")[:200]
    if isinstance(request, dict):
        code = request.get("reason_code")
        if isinstance(code, str):
            return code[:200]
    return None


class Journal:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        holder: dict[str, Principal] = {}
        scope[SCOPE_KEY] = holder
        request_body = bytearray()
        response_body = bytearray()
        status_code = 0
        response_type = ""

        async def capturing_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(request_body) < CAPTURE_BYTES:
                request_body.extend(message.get("body", b"")[: CAPTURE_BYTES - len(request_body)])
            return message

        async def capturing_send(message: Message) -> None:
            nonlocal status_code, response_type
            if message["type"] == "http.response.start":
                status_code = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() == b"content-type":
                        response_type = value.decode("latin-1")
            elif message["type"] == "http.response.body" and len(response_body) < CAPTURE_BYTES:
                response_body.extend(message.get("body", b"")[: CAPTURE_BYTES - len(response_body)])
            await send(message)

        try:
            await self.app(scope, capturing_receive, capturing_send)
        finally:
            principal = holder.get("principal")
            if principal is not None and status_code:
                await self._write(
                    scope, principal, status_code, bytes(request_body), bytes(response_body), response_type
                )

    async def _write(
        self, scope: Scope, principal: Principal, status_code: int, request: bytes, response: bytes, response_type: str
    ) -> None:
        headers = dict(scope.get("headers") or [])
        summary = _summary(request, headers.get(b"content-type", b"").decode("latin-1"))
        entry = JournalEntry(
            key_id=principal.key_id,
            actor=principal.name,
            role=principal.role.value,
            tenant=principal.tenant,
            method=scope["method"],
            path=scope["path"][:2000],
            status_code=status_code,
            reason=_reason(headers, summary),
            request=summary,
            response=_summary(response, response_type),
        )
        try:
            state = scope["app"].state.orchestrator
            async with state.uow() as uow:
                await uow.api_keys.journal(entry)
                await uow.commit()
        except Exception:
            log.exception("could not journal an API call", method=entry.method, path=entry.path, status=status_code)
