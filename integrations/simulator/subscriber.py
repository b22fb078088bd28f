"""The simulated order management system: a subscriber to the orchestrator's outgoing status events.

What a real OMS, ERP or sales channel should do with them, done visibly: ``POST /oms/events`` checks the
signature (``Orch-Signature``, the subscription's secret), applies each ``event_id`` once (a redelivery is
answered 200 ``duplicate`` and changes nothing) and records, per order, the seqs in the order they arrived.
``GET /oms/events`` reports what came in: events received, duplicates, events older than one already applied
(out of order), and each order's seqs. ``PUT /oms/control`` sets the secret it verifies with and its faults
(refuse the next N events with 503, hold each answer for a while), so tests can make the dispatcher retry,
dead-letter, or time out mid-delivery.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, Field

from integrations.webhooks import SIGNATURE_HEADER, SignatureError, verify

# The secret the simulated OMS verifies with until told otherwise: subscribe it with this one in dev.
DEFAULT_OMS_SECRET = "dev-oms-subscriber-secret"
TOLERANCE_S = 300


class OmsControl(BaseModel):
    """Fields left out keep their value."""

    secret: str | None = Field(default=None, min_length=1, max_length=200)
    # Answer the next N events 503 without applying them.
    fail_next: int | None = Field(default=None, ge=0)
    # Apply each event, then hold the answer this many seconds (a slow or hanging receiver).
    hang_s: float | None = Field(default=None, ge=0, le=3600)


class OmsControlView(BaseModel):
    fail_next: int
    hang_s: float


class OrderEvents(BaseModel):
    seqs: list[int]
    stages: list[str]


class OmsReport(BaseModel):
    requests: int
    received: int
    duplicates: int
    out_of_order: int
    refused: int
    orders: dict[str, OrderEvents]


class OmsSubscriber:
    def __init__(self, secret: str = DEFAULT_OMS_SECRET) -> None:
        self.secret = secret
        self.fail_next = 0
        self.hang_s = 0.0
        self.requests = 0
        self.refused = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.applied: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, OrderEvents] = {}

    def report(self) -> OmsReport:
        return OmsReport(
            requests=self.requests,
            received=len(self.applied),
            duplicates=self.duplicates,
            out_of_order=self.out_of_order,
            refused=self.refused,
            orders=self.orders,
        )

    def _apply(self, event: dict[str, Any]) -> str:
        event_id = str(event.get("event_id", ""))
        if event_id in self.applied:
            self.duplicates += 1
            return "duplicate"
        self.applied[event_id] = event
        order_id, seq = str(event.get("order_id", "")), int(event.get("seq", 0))
        stage = str((event.get("data") or {}).get("stage", ""))
        history = self.orders.setdefault(order_id, OrderEvents(seqs=[], stages=[]))
        if history.seqs and seq < max(history.seqs):
            self.out_of_order += 1
        history.seqs.append(seq)
        history.stages.append(stage)
        return "applied"

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/oms/events")
        async def receive(
            request: Request, signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None
        ) -> dict[str, str]:
            self.requests += 1
            body = await request.body()
            try:
                verify(signature, body, [self.secret], now=int(time.time()), tolerance_s=TOLERANCE_S)
            except SignatureError as err:
                self.refused += 1
                raise HTTPException(401, f"event refused: {err}") from None
            if self.fail_next > 0:
                self.fail_next -= 1
                raise HTTPException(503, "order management system unavailable (injected)")
            try:
                event = await request.json()
            except ValueError:
                raise HTTPException(422, "body is not JSON") from None
            if not isinstance(event, dict) or not event.get("event_id"):
                raise HTTPException(422, "event_id: required")
            outcome = self._apply(event)
            if self.hang_s:
                await asyncio.sleep(self.hang_s)
            return {"event_id": str(event["event_id"]), "outcome": outcome}

        @router.get("/oms/events", response_model=OmsReport)
        async def events() -> OmsReport:
            return self.report()

        @router.put("/oms/control", response_model=OmsControlView)
        async def control(change: OmsControl) -> OmsControlView:
            if change.secret is not None:
                self.secret = change.secret
            if change.fail_next is not None:
                self.fail_next = change.fail_next
            if change.hang_s is not None:
                self.hang_s = change.hang_s
            return OmsControlView(fail_next=self.fail_next, hang_s=self.hang_s)

        return router


def router() -> APIRouter:
    """A fresh simulated OMS and its routes (its state lives as long as the app that includes them)."""
    return OmsSubscriber().router()
