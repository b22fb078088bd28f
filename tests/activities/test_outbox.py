"""The status outbox: publishing is one transaction and idempotent; the dispatcher delivers in order per order,
retries with backoff, dead-letters, and replays. Each test has a database of its own (subscriptions are global:
a subscription left in the session's database would collect every other test's events)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select

from infra.db.outbox import PENDING
from infra.db.tables import OrderStatus, OutboxDelivery, OutboxEvent
from infra.db.uow import UowFactory
from infra.dispatcher import DispatchConfig, Dispatcher, backoff_s, event_body
from integrations.simulator.subscriber import OmsSubscriber
from integrations.webhooks import SIGNATURE_HEADER, verify
from tests.activities.outbox_support import OMS_SECRET, deliveries, oms, publish, subscribe
from tests.private_db import private_database, unit_of_work_factory

pytestmark = pytest.mark.db

FAST = DispatchConfig(interval_s=0.01, max_attempts=3, timeout_s=2.0, backoff_base_s=0.01, backoff_max_s=0.05)


@pytest_asyncio.fixture
async def uow(postgres_server_url: str) -> AsyncIterator[UowFactory]:
    with private_database(postgres_server_url, "outbox") as url:
        async with unit_of_work_factory(url) as factory:
            yield factory


async def drain(dispatcher: Dispatcher, uow: UowFactory, *, turns: int = 500) -> None:
    """Run the dispatcher until nothing is pending (waiting out backoffs), or fail."""
    for _ in range(turns):
        await dispatcher.run_once()
        if not [d for d in await deliveries(uow) if d.state == PENDING]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("deliveries still pending")


# --- publishing ---------------------------------------------------------------------------------------------


async def test_publishing_writes_status_event_and_deliveries_together_once(uow: UowFactory) -> None:
    every = await subscribe(uow)
    completed_only = await subscribe(uow, event_types=["order.completed"])
    prefix = await subscribe(uow, event_types=["order.*"])
    gone = await subscribe(uow)
    async with uow() as u:
        await u.outbox.deactivate(gone)
        await u.commit()

    first = await publish(uow, "O-1", range(1, 8))
    assert first.published == [f"O-1:status:{n}" for n in range(1, 8)]
    assert first.replayed == []
    assert first.deliveries == 7 + 1 + 7  # every type, completed only, the prefix; none to the inactive one

    again = await publish(uow, "O-1", range(1, 8))
    assert again.published == []
    assert again.replayed == first.published
    assert again.deliveries == 0

    async with uow() as u:
        assert await u.outbox.status("O-1") == (7, "completed")
        assert await u.session.scalar(select(func.count()).select_from(OutboxEvent)) == 7
        event = (await u.outbox.events_for_order("O-1"))[0]
    assert event.type == "order.received"
    assert event.payload["event_id"] == "O-1:status:1"
    assert event.payload["seq"] == 1
    assert event.payload["data"]["customer_id"] == "C-1"
    assert event.payload["data"]["stage"] == "received"
    rows = await deliveries(uow)
    assert {(d.subscription_id, d.seq) for d in rows if d.subscription_id == completed_only} == {(completed_only, 7)}
    assert len([d for d in rows if d.subscription_id == every]) == 7
    assert len([d for d in rows if d.subscription_id == prefix]) == 7
    assert not [d for d in rows if d.subscription_id == gone]
    assert {d.state for d in rows} == {PENDING}
    assert {d.attempts for d in rows} == {0}


async def test_the_status_only_moves_forward(uow: UowFactory) -> None:
    await publish(uow, "O-2", [3])
    await publish(uow, "O-2", [2])  # a late publish of an earlier change: the event is kept, the status is not
    async with uow() as u:
        assert await u.outbox.status("O-2") == (3, "planned")
        assert [e.seq for e in await u.outbox.events_for_order("O-2")] == [2, 3]
        row = await u.session.get(OrderStatus, "O-2")
    assert row is not None
    assert row.customer_id == "C-1"
    assert row.channel == "web"


async def test_a_failed_publish_leaves_nothing(uow: UowFactory) -> None:
    """Status, event and deliveries commit together: a publish that fails part-way writes none of them."""
    await subscribe(uow)
    async with uow() as u:
        await u.outbox.record_status(
            event_id="O-3:status:1", order_id="O-3", seq=1, stage="received", customer_id="C-1", channel="web",
            at=datetime.now(UTC), payload={},
        )  # fmt: skip
        # no commit: the unit of work ends, everything is rolled back
    async with uow() as u:
        assert await u.outbox.status("O-3") is None
        assert await u.outbox.events_for_order("O-3") == []
    assert await deliveries(uow) == []


# --- the dispatcher -----------------------------------------------------------------------------------------


async def test_events_are_delivered_signed_once_each_in_order_per_order(uow: UowFactory) -> None:
    sub = await subscribe(uow)
    for order in ("A", "B", "C"):
        await publish(uow, order, range(1, 6))
    async with oms() as receiver:
        receiver.subscriber.fail_next = 4  # a few refusals along the way: retried, never reordered
        dispatcher = Dispatcher(uow, receiver.http, FAST)
        await drain(dispatcher, uow)
        report = receiver.subscriber.report()
    assert report.received == 15
    assert report.duplicates == 0
    assert report.out_of_order == 0
    assert {order: r.seqs for order, r in report.orders.items()} == {o: [1, 2, 3, 4, 5] for o in "ABC"}
    rows = await deliveries(uow, sub)
    assert {d.state for d in rows} == {"delivered"}
    assert all(d.delivered_at for d in rows)
    assert sum(d.attempts for d in rows) == 15 + 4


async def test_the_next_seq_waits_while_an_earlier_one_is_pending(uow: UowFactory) -> None:
    sub = await subscribe(uow)
    await publish(uow, "H", range(1, 4))
    await publish(uow, "I", range(1, 2))
    async with oms() as receiver:
        receiver.subscriber.fail_next = 1
        dispatcher = Dispatcher(uow, receiver.http, FAST)
        assert await dispatcher.run_once() == 2  # the heads only: H:1 and I:1
        rows = {(d.order_id, d.seq): d for d in await deliveries(uow, sub)}
        assert rows["H", 2].attempts == 0
        assert rows["H", 3].attempts == 0
        failed = next(d for key, d in rows.items() if d.state == PENDING and d.attempts == 1)
        assert failed.last_error is not None
        assert "503" in failed.last_error
        await drain(dispatcher, uow)
        assert receiver.subscriber.report().orders["H"].seqs == [1, 2, 3]


async def test_a_delivery_failing_every_attempt_goes_dead_then_replays(uow: UowFactory) -> None:
    sub = await subscribe(uow)
    await publish(uow, "D", range(1, 3))
    async with oms() as receiver:
        receiver.subscriber.fail_next = FAST.max_attempts  # seq 1 fails every attempt
        dispatcher = Dispatcher(uow, receiver.http, FAST)
        await drain(dispatcher, uow)
        rows = {d.seq: d for d in await deliveries(uow, sub)}
        assert rows[1].state == "dead"
        assert rows[1].attempts == FAST.max_attempts
        assert rows[2].state == "delivered"  # a dead letter no longer holds up the order's later events
        async with uow() as u:
            assert [d.event_id for d in await u.outbox.dead_letters(sub)] == ["D:status:1"]
            assert await u.outbox.replay(sub, "D:status:2") is None  # delivered: nothing to replay
            replayed = await u.outbox.replay(sub, "D:status:1")
            await u.commit()
        assert replayed is not None
        assert replayed.state == PENDING
        assert replayed.attempts == 0
        await drain(dispatcher, uow)
        report = receiver.subscriber.report()
    assert report.orders["D"].seqs == [2, 1]  # the replay arrives after: subscribers order by seq
    async with uow() as u:
        assert await u.outbox.dead_letters(sub) == []


async def test_an_inactive_subscription_is_not_delivered_to(uow: UowFactory) -> None:
    sub = await subscribe(uow)
    await publish(uow, "X", [1])
    async with uow() as u:
        await u.outbox.deactivate(sub)
        await u.commit()
    async with oms() as receiver:
        assert await Dispatcher(uow, receiver.http, FAST).run_once() == 0
        assert receiver.subscriber.requests == 0


class Recording(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.inner.handle_async_request(request)


async def test_what_is_posted_is_the_signed_event(uow: UowFactory) -> None:
    await subscribe(uow)
    await publish(uow, "S", [1])
    subscriber = OmsSubscriber(OMS_SECRET)
    app = FastAPI()
    app.include_router(subscriber.router())
    transport = Recording(httpx.ASGITransport(app=app))
    async with httpx.AsyncClient(transport=transport) as http:
        await Dispatcher(uow, http, FAST).run_once()
    async with uow() as u:
        event = (await u.outbox.events_for_order("S"))[0]
    (request,) = transport.requests
    assert request.content == event_body(event.payload)
    assert request.headers["Orch-Event-Id"] == "S:status:1"
    assert request.headers["Orch-Event-Type"] == "order.received"
    verify(request.headers[SIGNATURE_HEADER], request.content, [OMS_SECRET], now=int(time.time()), tolerance_s=60)
    assert subscriber.report().received == 1


def test_backoff_doubles_with_a_deterministic_jitter() -> None:
    config = DispatchConfig(backoff_base_s=2.0, backoff_max_s=100.0)
    delays = [backoff_s(config, "sub", "O:status:1", n) for n in range(1, 10)]
    assert delays == [backoff_s(config, "sub", "O:status:1", n) for n in range(1, 10)]  # reproducible
    for n, delay in enumerate(delays, start=1):
        ceiling = min(2.0 * 2 ** (n - 1), 100.0)
        assert ceiling / 2 <= delay <= ceiling
    assert backoff_s(config, "sub", "O:status:1", 3) != backoff_s(config, "sub", "O:status:2", 3)  # spread out
    assert backoff_s(DispatchConfig(), "s", "e", 10_000) <= DispatchConfig().backoff_max_s


async def test_two_dispatchers_never_deliver_an_order_out_of_order(uow: UowFactory) -> None:
    await subscribe(uow)
    for order in ("P", "Q"):
        await publish(uow, order, range(1, 11))
    async with oms() as receiver:
        receiver.subscriber.fail_next = 3
        first, second = Dispatcher(uow, receiver.http, FAST), Dispatcher(uow, receiver.http, FAST)
        for _ in range(300):
            await asyncio.gather(first.run_once(), second.run_once())
            if not [d for d in await deliveries(uow) if d.state == PENDING]:
                break
            await asyncio.sleep(0.01)
        report = receiver.subscriber.report()
    assert report.out_of_order == 0
    assert report.duplicates == 0
    assert report.received == 20
    assert {o: r.seqs for o, r in report.orders.items()} == {o: list(range(1, 11)) for o in "PQ"}
    async with uow() as u:
        counts = await u.session.scalar(
            select(func.count()).select_from(OutboxDelivery).where(OutboxDelivery.state == "delivered")
        )
    assert counts == 20
