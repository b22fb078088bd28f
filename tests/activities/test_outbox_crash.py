"""The outbox under failure: the dispatcher killed mid-delivery, PostgreSQL restarted (between deliveries and in
the middle of one). No event is lost, the idempotent receiver applies none twice, each order's events arrive in
order.

PostgreSQL here is an embedded server of this test's own (stopped and started by the test), never the session's.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from infra.db.migrate import upgrade
from infra.db.outbox import PENDING
from infra.db.uow import UowFactory
from infra.dispatcher import DispatchConfig, Dispatcher
from infra.services import EmbeddedPostgres, ensure_database
from tests.activities.outbox_support import Oms, deliveries, oms, publish, subscribe
from tests.private_db import unit_of_work_factory

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
ORDERS = ["K-1", "K-2", "K-3", "K-4"]
# Calls are cut by the test, not by the timeout; a lease this short makes an abandoned delivery due again soon.
CONFIG = DispatchConfig(
    interval_s=0.02, max_attempts=100, timeout_s=30.0, backoff_base_s=0.01, backoff_max_s=0.1, lease_s=0.5
)


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(ROOT / ".data" / f"test-pg-outbox-{uuid.uuid4().hex[:8]}")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.pgdata, ignore_errors=True)


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        with contextlib.suppress(Exception):  # the database may be on its way back up
            if await condition():
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def applied(receiver: Oms, at_least: int) -> bool:
    return receiver.subscriber.report().received >= at_least


async def nothing_pending(uow: UowFactory) -> bool:
    return not [d for d in await deliveries(uow) if d.state == PENDING]


async def stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_no_event_lost_or_applied_twice_across_dispatcher_crash_and_postgres_restarts(
    own_postgres: EmbeddedPostgres,
) -> None:
    ensure_database(own_postgres.admin_url(), "outbox")
    url = own_postgres.admin_url("outbox")
    upgrade(url)
    async with unit_of_work_factory(url) as uow, oms() as receiver:
        sub = await subscribe(uow)
        for order in ORDERS:
            await publish(uow, order, range(1, 4))

        # 1. The dispatcher is killed mid-delivery: the receiver has applied the events and is still answering.
        receiver.subscriber.hang_s = 60
        dispatcher = asyncio.create_task(Dispatcher(uow, receiver.http, CONFIG).run())
        await until(lambda: applied(receiver, len(ORDERS)), "the first deliveries to reach the receiver")
        await stop_task(dispatcher)
        receiver.subscriber.hang_s = 0
        assert receiver.subscriber.report().received == len(ORDERS)

        # 2. PostgreSQL restarts; a new dispatcher starts while it is down, and keeps trying.
        own_postgres.stop()
        dispatcher = asyncio.create_task(Dispatcher(uow, receiver.http, CONFIG).run())
        await asyncio.sleep(0.5)
        own_postgres.start()
        for order in ORDERS:
            await publish(uow, order, range(4, 7))
        await until(lambda: nothing_pending(uow), "every delivery after the restart")
        await stop_task(dispatcher)

        # 3. PostgreSQL goes down in the middle of a delivery: the receiver applies it, its outcome cannot be
        # written, and it is delivered again once the database is back.
        for order in ORDERS:
            await publish(uow, order, range(7, 9))
        receiver.subscriber.hang_s = 1.0
        before = receiver.subscriber.report().received
        dispatcher = asyncio.create_task(Dispatcher(uow, receiver.http, CONFIG).run())
        await until(lambda: applied(receiver, before + 1), "a delivery in flight")
        own_postgres.stop()
        await asyncio.sleep(1.5)  # the receiver answers; the dispatcher cannot record it
        own_postgres.start()
        receiver.subscriber.hang_s = 0
        await until(lambda: nothing_pending(uow), "every delivery after the second restart")
        await stop_task(dispatcher)

        report = receiver.subscriber.report()
        rows = await deliveries(uow, sub)

    expected = list(range(1, 9))
    assert {order: r.seqs for order, r in report.orders.items()} == dict.fromkeys(ORDERS, expected)
    assert report.received == len(ORDERS) * len(expected)  # every event, applied once
    assert report.out_of_order == 0
    assert report.duplicates >= len(ORDERS) + 1  # redeliveries happened, and the receiver recognised them
    assert {d.state for d in rows} == {"delivered"}
    assert len(rows) == len(ORDERS) * len(expected)
