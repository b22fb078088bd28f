"""The transactional outbox: order status changes, the events announcing them, subscriptions and deliveries.

``record_status`` is called inside the same unit of work as the status projection it announces, so the change
and its outgoing event commit together or not at all. The dispatcher (``infra.dispatcher``) then works through
``outbox_delivery``: ``claim_due`` hands out only the head of each (subscription, order) queue, so an order's
events reach a subscriber in ``seq`` order; each claim is fenced by its attempt number, so a dispatcher that
lost its lease can never overwrite the outcome of the one that took over.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycle import OrderStage
from infra.db.tables import OrderStatus, OutboxDelivery, OutboxEvent, Subscription

# Outgoing event types: one per order stage, ``order.<stage>``. A subscription's filter names types exactly,
# or ends in ``*`` to match a prefix (``order.*``); an empty filter takes every type.
EVENT_TYPES: tuple[str, ...] = tuple(f"order.{stage}" for stage in OrderStage)
PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


def status_event_type(stage: str) -> str:
    return f"order.{stage}"


def type_matches(filters: list[str], event_type: str) -> bool:
    if not filters:
        return True
    return any(event_type.startswith(f[:-1]) if f.endswith("*") else event_type == f for f in filters)


def valid_filter(entry: str) -> bool:
    """A filter entry names a known type, or is a prefix (ending in ``*``) of at least one."""
    if entry.endswith("*"):
        return any(t.startswith(entry[:-1]) for t in EVENT_TYPES)
    return entry in EVENT_TYPES


@dataclass(frozen=True)
class SubscriptionRecord:
    subscription_id: str
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime


@dataclass(frozen=True)
class DeliveryRecord:
    subscription_id: str
    event_id: str
    order_id: str
    seq: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None


@dataclass(frozen=True)
class EventRecord:
    event_id: str
    order_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery handed to one dispatcher until ``lease`` runs out; ``attempt`` fences its outcome."""

    subscription_id: str
    event_id: str
    order_id: str
    seq: int
    attempt: int
    url: str
    secret: str
    event_type: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Recorded:
    inserted: bool
    deliveries: int


# Only the head of each (subscription, order) queue is due: nothing earlier may still be pending for that
# subscription. A head in flight is itself still pending (leased), so the next seq waits for its outcome.
_CLAIM = text(
    """
    WITH due AS (
        SELECT d.subscription_id, d.event_id
        FROM outbox_delivery AS d
        JOIN subscription AS s ON s.subscription_id = d.subscription_id AND s.active
        WHERE d.state = 'pending'
          AND d.next_attempt_at <= now()
          AND NOT EXISTS (
              SELECT 1 FROM outbox_delivery AS e
              WHERE e.subscription_id = d.subscription_id
                AND e.order_id = d.order_id
                AND e.state = 'pending'
                AND e.seq < d.seq
          )
        ORDER BY d.next_attempt_at, d.seq
        LIMIT :limit
        FOR UPDATE OF d SKIP LOCKED
    )
    UPDATE outbox_delivery AS d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => :lease_s)
    FROM due, subscription AS s, outbox_event AS ev
    WHERE d.subscription_id = due.subscription_id AND d.event_id = due.event_id
      AND s.subscription_id = d.subscription_id AND ev.event_id = d.event_id
    RETURNING d.subscription_id, d.event_id, d.order_id, d.seq, d.attempts, s.url, s.secret, ev.type, ev.payload
    """
)


class OutboxRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- writing status changes -------------------------------------------------------------------------

    async def record_status(
        self,
        *,
        event_id: str,
        order_id: str,
        seq: int,
        stage: str,
        customer_id: str,
        channel: str,
        at: datetime,
        payload: dict[str, Any],
    ) -> Recorded:
        """Move the order's status forward to ``seq`` (never back), write the event unless it is there, and
        queue one delivery per active subscription whose filter takes it. A repeat changes nothing."""
        values = {"seq": seq, "stage": stage, "customer_id": customer_id, "channel": channel, "updated_at": at}
        upsert = insert(OrderStatus).values(order_id=order_id, **values)
        await self._session.execute(
            upsert.on_conflict_do_update(
                index_elements=[OrderStatus.order_id],
                set_={name: upsert.excluded[name] for name in values},
                where=OrderStatus.seq < upsert.excluded.seq,
            )
        )
        event_type = status_event_type(stage)
        inserted = await self._session.scalar(
            insert(OutboxEvent)
            .values(event_id=event_id, order_id=order_id, seq=seq, type=event_type, payload=payload)
            .on_conflict_do_nothing()
            .returning(OutboxEvent.event_id)
        )
        if inserted is None:
            return Recorded(inserted=False, deliveries=0)
        rows = await self._session.execute(
            select(Subscription.subscription_id, Subscription.event_types).where(Subscription.active)
        )
        targets = [sid for sid, filters in rows if type_matches(list(filters), event_type)]
        if targets:
            await self._session.execute(
                insert(OutboxDelivery)
                .values(
                    [
                        {"subscription_id": sid, "event_id": event_id, "order_id": order_id, "seq": seq}
                        for sid in targets
                    ]
                )
                .on_conflict_do_nothing()
            )
        return Recorded(inserted=True, deliveries=len(targets))

    async def status(self, order_id: str) -> tuple[int, str] | None:
        row = (
            await self._session.execute(
                select(OrderStatus.seq, OrderStatus.stage).where(OrderStatus.order_id == order_id)
            )
        ).first()
        return None if row is None else (row.seq, row.stage)

    async def events_for_order(self, order_id: str) -> list[EventRecord]:
        rows = await self._session.scalars(
            select(OutboxEvent).where(OutboxEvent.order_id == order_id).order_by(OutboxEvent.seq)
        )
        return [EventRecord(r.event_id, r.order_id, r.seq, r.type, r.payload, r.created_at) for r in rows]

    # --- subscriptions ----------------------------------------------------------------------------------

    async def add_subscription(self, url: str, secret: str, event_types: list[str]) -> SubscriptionRecord:
        subscription_id = f"sub_{secrets.token_hex(8)}"
        row = Subscription(subscription_id=subscription_id, url=url, secret=secret, event_types=event_types)
        self._session.add(row)
        await self._session.flush()
        await self._session.refresh(row)
        return _subscription(row)

    async def subscriptions(self) -> list[SubscriptionRecord]:
        rows = await self._session.scalars(select(Subscription).order_by(Subscription.created_at))
        return [_subscription(r) for r in rows]

    async def subscription(self, subscription_id: str) -> SubscriptionRecord | None:
        row = await self._session.get(Subscription, subscription_id)
        return None if row is None else _subscription(row)

    async def deactivate(self, subscription_id: str) -> SubscriptionRecord | None:
        """Stop queuing and delivering to it (its pending deliveries stay, undelivered). ``None``: unknown."""
        row = await self._session.get(Subscription, subscription_id, with_for_update=True)
        if row is None:
            return None
        row.active = False
        await self._session.flush()
        return _subscription(row)

    # --- dead letters -----------------------------------------------------------------------------------

    async def dead_letters(self, subscription_id: str, limit: int = 100) -> list[DeliveryRecord]:
        rows = await self._session.scalars(
            select(OutboxDelivery)
            .where(OutboxDelivery.subscription_id == subscription_id, OutboxDelivery.state == DEAD)
            .order_by(OutboxDelivery.order_id, OutboxDelivery.seq)
            .limit(limit)
        )
        return [_delivery(r) for r in rows]

    async def delivery(self, subscription_id: str, event_id: str) -> DeliveryRecord | None:
        row = await self._session.get(OutboxDelivery, (subscription_id, event_id))
        return None if row is None else _delivery(row)

    async def replay(self, subscription_id: str, event_id: str) -> DeliveryRecord | None:
        """A dead delivery back to pending, due now, with its attempts reset. ``None`` if it is not dead."""
        row = await self._session.scalar(
            update(OutboxDelivery)
            .where(
                OutboxDelivery.subscription_id == subscription_id,
                OutboxDelivery.event_id == event_id,
                OutboxDelivery.state == DEAD,
            )
            .values(state=PENDING, attempts=0, next_attempt_at=func.now())
            .returning(OutboxDelivery)
        )
        return None if row is None else _delivery(row)

    # --- the dispatcher's side --------------------------------------------------------------------------

    async def claim_due(self, *, limit: int, lease_s: float) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries (the head of each queue), counting the attempt now: a
        dispatcher that dies mid-call leaves the delivery pending, and it is due again when the lease ends."""
        rows = await self._session.execute(_CLAIM, {"limit": limit, "lease_s": lease_s})
        return [
            ClaimedDelivery(
                subscription_id=r.subscription_id, event_id=r.event_id, order_id=r.order_id, seq=r.seq,
                attempt=r.attempts, url=r.url, secret=r.secret, event_type=r.type, payload=r.payload,
            )
            for r in rows
        ]  # fmt: skip

    async def mark_delivered(self, claim: ClaimedDelivery) -> bool:
        result = await self._session.execute(
            update(OutboxDelivery)
            .where(*_fenced(claim))
            .values(state=DELIVERED, delivered_at=func.now(), last_error=None)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark_failed(self, claim: ClaimedDelivery, error: str, *, retry_in_s: float | None) -> bool:
        """Record a failed attempt: due again in ``retry_in_s``, or ``dead`` when it is ``None``."""
        values: dict[str, Any] = {"last_error": error[:2000]}
        if retry_in_s is None:
            values["state"] = DEAD
        else:
            values["next_attempt_at"] = func.now() + func.make_interval(0, 0, 0, 0, 0, 0, retry_in_s)
        result = await self._session.execute(update(OutboxDelivery).where(*_fenced(claim)).values(**values))
        return bool(result.rowcount)  # type: ignore[attr-defined]


def _fenced(claim: ClaimedDelivery) -> tuple[Any, ...]:
    """Only the claim that is still current may write an outcome (a later claim has a higher attempt)."""
    return (
        OutboxDelivery.subscription_id == claim.subscription_id,
        OutboxDelivery.event_id == claim.event_id,
        OutboxDelivery.state == PENDING,
        OutboxDelivery.attempts == claim.attempt,
    )


def _subscription(row: Subscription) -> SubscriptionRecord:
    return SubscriptionRecord(row.subscription_id, row.url, list(row.event_types), row.active, row.created_at)


def _delivery(row: OutboxDelivery) -> DeliveryRecord:
    return DeliveryRecord(
        row.subscription_id, row.event_id, row.order_id, row.seq, row.state, row.attempts,
        row.next_attempt_at, row.last_error, row.delivered_at,
    )  # fmt: skip
