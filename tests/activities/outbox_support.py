"""Helpers for the status outbox tests: publishing status changes, a simulated OMS to deliver to."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from activities.status import StatusActivities
from domain.lifecycle import OrderStage
from infra.db.tables import OutboxDelivery
from infra.db.uow import UowFactory
from integrations.simulator.subscriber import OmsSubscriber
from workflows.contracts import PublishStatusInput, PublishStatusResult, StatusEvent

OMS_URL = "http://oms/oms/events"
OMS_SECRET = "oms-test-secret-0123456789"
STAGES = [
    OrderStage.RECEIVED,
    OrderStage.VALIDATED,
    OrderStage.PLANNED,
    OrderStage.RESERVED,
    OrderStage.RELEASED,
    OrderStage.IN_FULFILMENT,
    OrderStage.COMPLETED,
]
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def events(seqs: range | list[int]) -> list[StatusEvent]:
    return [StatusEvent(seq=seq, stage=STAGES[(seq - 1) % len(STAGES)], at=T0 + timedelta(minutes=seq)) for seq in seqs]


async def publish(uow: UowFactory, order_id: str, seqs: range | list[int]) -> PublishStatusResult:
    return await StatusActivities(uow).publish_status(
        PublishStatusInput(order_id=order_id, customer_id="C-1", channel="web", events=events(seqs))
    )


async def subscribe(uow: UowFactory, url: str = OMS_URL, event_types: list[str] | None = None) -> str:
    async with uow() as u:
        record = await u.outbox.add_subscription(url, OMS_SECRET, event_types or [])
        await u.commit()
    return record.subscription_id


async def deliveries(uow: UowFactory, subscription_id: str | None = None) -> list[OutboxDelivery]:
    async with uow() as u:
        query = select(OutboxDelivery).order_by(OutboxDelivery.order_id, OutboxDelivery.seq)
        if subscription_id is not None:
            query = query.where(OutboxDelivery.subscription_id == subscription_id)
        return list(await u.session.scalars(query))


@dataclass
class Oms:
    subscriber: OmsSubscriber
    http: httpx.AsyncClient


@asynccontextmanager
async def oms() -> AsyncIterator[Oms]:
    """The simulator's OMS subscriber in-process, reached over ASGI at ``http://oms``."""
    subscriber = OmsSubscriber(OMS_SECRET)
    app = FastAPI()
    app.include_router(subscriber.router())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oms") as http:
        yield Oms(subscriber, http)
