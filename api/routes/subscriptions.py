"""Subscriptions to outgoing order status events, and their dead letters (the status outbox).

An OMS, ERP or sales channel subscribes with a URL, a secret and the event types it wants (``order.<stage>``,
``order.*``, or none for all). Every status change committed from then on is delivered to it, signed with that
secret, at least once and in order per order (``infra.dispatcher``). A delivery that failed every attempt is a
dead letter: listed here, and put back in the queue by a replay. The wire format is in docs/integrations.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Path, Query, status
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

from api.deps import UowDep
from api.errors import ApiError
from infra.db.outbox import EVENT_TYPES, DeliveryRecord, SubscriptionRecord, valid_filter

router = APIRouter(tags=["subscriptions"])
log = structlog.get_logger(__name__)

SubscriptionId = Annotated[str, Path(min_length=1, max_length=64)]
EventId = Annotated[str, Path(min_length=1, max_length=200)]
OrderIdPath = Annotated[str, Path(min_length=1, max_length=64)]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such subscription (or delivery)"}}
_REPLAY: dict[int | str, dict[str, Any]] = {**_NOT_FOUND, 409: {"description": "the delivery is not dead"}}


def _known_type(entry: str) -> str:
    if not valid_filter(entry):
        raise ValueError(f"unknown event type '{entry}'; one of {', '.join(EVENT_TYPES)}, or a prefix ending in '*'")
    return entry


EventType = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_known_type)]


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl = Field(description="where events are POSTed (http or https)")
    secret: str = Field(
        min_length=16, max_length=200, description="signs every event (HMAC-SHA256); kept to sign, never returned"
    )
    event_types: list[EventType] = Field(
        default_factory=list, max_length=len(EVENT_TYPES), description="types wanted; empty means every type"
    )


class SubscriptionPublic(BaseModel):
    subscription_id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime

    @classmethod
    def of(cls, record: SubscriptionRecord) -> SubscriptionPublic:
        return cls(
            subscription_id=record.subscription_id,
            url=record.url,
            event_types=record.event_types,
            active=record.active,
            created_at=record.created_at,
        )


class DeliveryPublic(BaseModel):
    subscription_id: str
    event_id: str
    order_id: str
    seq: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryPublic:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class OutboxEventPublic(BaseModel):
    event_id: str
    order_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


@router.post("/subscriptions", status_code=status.HTTP_201_CREATED, response_model=SubscriptionPublic)
async def create_subscription(body: SubscriptionCreate, uow: UowDep) -> SubscriptionPublic:
    """Subscribe: every matching status change from now on is delivered (earlier ones are not)."""
    async with uow:
        record = await uow.outbox.add_subscription(str(body.url), body.secret, list(body.event_types))
        await uow.commit()
    log.info("subscription created", subscription_id=record.subscription_id, event_types=record.event_types)
    return SubscriptionPublic.of(record)


@router.get("/subscriptions", response_model=list[SubscriptionPublic])
async def list_subscriptions(uow: UowDep) -> list[SubscriptionPublic]:
    async with uow:
        return [SubscriptionPublic.of(r) for r in await uow.outbox.subscriptions()]


@router.delete("/subscriptions/{subscription_id}", response_model=SubscriptionPublic, responses=_NOT_FOUND)
async def deactivate_subscription(subscription_id: SubscriptionId, uow: UowDep) -> SubscriptionPublic:
    """Deactivate: nothing more is queued or delivered to it. Kept, with its history and dead letters."""
    async with uow:
        record = await uow.outbox.deactivate(subscription_id)
        if record is None:
            raise ApiError(404, f"no subscription '{subscription_id}'")
        await uow.commit()
    log.info("subscription deactivated", subscription_id=subscription_id)
    return SubscriptionPublic.of(record)


@router.get("/subscriptions/{subscription_id}/dead-letters", response_model=list[DeliveryPublic], responses=_NOT_FOUND)
async def dead_letters(
    subscription_id: SubscriptionId, uow: UowDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> list[DeliveryPublic]:
    """Deliveries that failed every attempt, by order and seq, with the last error."""
    async with uow:
        if await uow.outbox.subscription(subscription_id) is None:
            raise ApiError(404, f"no subscription '{subscription_id}'")
        return [DeliveryPublic.of(r) for r in await uow.outbox.dead_letters(subscription_id, limit)]


@router.post(
    "/subscriptions/{subscription_id}/dead-letters/{event_id}/replay", response_model=DeliveryPublic, responses=_REPLAY
)
async def replay_dead_letter(subscription_id: SubscriptionId, event_id: EventId, uow: UowDep) -> DeliveryPublic:
    """Put a dead letter back in the queue, due now, with a fresh set of attempts."""
    async with uow:
        if await uow.outbox.subscription(subscription_id) is None:
            raise ApiError(404, f"no subscription '{subscription_id}'")
        replayed = await uow.outbox.replay(subscription_id, event_id)
        if replayed is None:
            current = await uow.outbox.delivery(subscription_id, event_id)
            if current is None:
                raise ApiError(404, f"no delivery of '{event_id}' to '{subscription_id}'")
            raise ApiError(409, f"'{event_id}' is {current.state}, not dead: nothing to replay", state=current.state)
        await uow.commit()
    log.info("dead letter replayed", subscription_id=subscription_id, event_id=event_id)
    return DeliveryPublic.of(replayed)


@router.get("/orders/{order_id}/events", response_model=list[OutboxEventPublic], tags=["orders"])
async def order_events(order_id: OrderIdPath, uow: UowDep) -> list[OutboxEventPublic]:
    """The status events published for an order, oldest first (empty for an unknown order)."""
    async with uow:
        events = await uow.outbox.events_for_order(order_id)
    return [
        OutboxEventPublic(
            event_id=e.event_id, order_id=e.order_id, seq=e.seq, type=e.type, payload=e.payload, created_at=e.created_at
        )
        for e in events
    ]
