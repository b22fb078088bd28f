"""The fraud-screening port: score an order before any stock is held or money moved.

Wire protocol (JSON over HTTPS): ``POST /fraud/screen`` with a ``ScreenRequest`` body answers ``200`` with a
``ScreenResponse``: ``score`` from 0 (safe) to 1 (certain fraud) and the ``reasons`` behind it. Screening
changes nothing, so it needs no idempotency key; the same order scores the same. Any error status raises an
``httpx`` error, which the orchestrator retries.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field

from domain.orders import Order


class ScreenRequest(BaseModel):
    """What the screen sees of an order: who, how much, where to (no names or street addresses)."""

    model_config = ConfigDict(frozen=True)

    order_id: str
    customer_id: str
    channel: str
    currency: str
    amount_minor: int
    lines: int
    units: int
    payment_method: str
    ship_to_country: str
    ship_to_postal_code: str
    pickup: bool = False

    @classmethod
    def of(cls, order: Order) -> ScreenRequest:
        return cls(
            order_id=order.order_id,
            customer_id=order.customer_id,
            channel=order.channel,
            currency=order.currency,
            amount_minor=order.total_minor,
            lines=len(order.lines),
            units=sum(line.quantity for line in order.lines),
            payment_method=order.payment_method,
            ship_to_country=order.ship_to.country,
            ship_to_postal_code=order.ship_to.postal_code,
            pickup=order.pickup_node_id is not None,
        )


class ScreenResponse(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)


class FraudScreen:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def screen(self, order: Order) -> ScreenResponse:
        response = await self._http.post("/fraud/screen", json=ScreenRequest.of(order).model_dump(mode="json"))
        response.raise_for_status()
        return ScreenResponse.model_validate(response.json())
