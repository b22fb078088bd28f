"""``ReservationSweeperWorkflow`` on the time-skipping server with the real activity over real PostgreSQL.

The activity's clock here is the server's: ``current_attempt_scheduled_time`` is the (skipped) time at which
the server scheduled the sweep, so a reservation expiring an hour after "now" lapses when the test skips an
hour, not when an hour of wall time has passed.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import structlog
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, Interceptor, OutboundInterceptor, StartWorkflowInput, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.inventory import InventoryActivities
from domain.sourcing import Allocation
from infra.db.uow import UowFactory
from infra.temporal import DATA_CONVERTER
from tests.support import AUSTIN, NodeSpec, build_network, eventually, states_of, stock_row
from worker import start_sweeper
from workflows.contracts import ReservationSweeperInput, ReservationSweeperStatus
from workflows.sweeper import ReservationSweeperWorkflow

pytestmark = pytest.mark.db

INTERVAL = timedelta(hours=1)
Handle = WorkflowHandle[ReservationSweeperWorkflow, None]


def server_clock() -> datetime:
    return activity.info().current_attempt_scheduled_time


@pytest_asyncio.fixture
async def sweeper_worker(temporal_env: WorkflowEnvironment, uow_factory: UowFactory) -> AsyncIterator[Worker]:
    inventory = InventoryActivities(uow_factory, clock=server_clock)
    async with Worker(
        temporal_env.client,
        task_queue=f"test-sweeper-{uuid.uuid4().hex[:8]}",
        workflows=[ReservationSweeperWorkflow],
        activities=[inventory.expire_reservations],
    ) as worker:
        yield worker


async def status(handle: Handle) -> ReservationSweeperStatus:
    return await handle.query(ReservationSweeperWorkflow.status)


async def test_the_sweeper_releases_lapsed_holds_after_its_timer_and_continues_as_new(
    temporal_env: WorkflowEnvironment, sweeper_worker: Worker, uow_factory: UowFactory
) -> None:
    net = await build_network(uow_factory, [NodeSpec("AUSTIN", AUSTIN)], {("AUSTIN", "DRILL"): 10})
    node, sku = net.node("AUSTIN"), net.sku("DRILL")
    now = await temporal_env.get_current_time()
    keys = {name: f"T{net.prefix}-{name}:reserve:plan-1" for name in ("lapsing", "committed", "open-ended")}
    async with uow_factory() as u:
        for name, key in keys.items():
            expires_at = None if name == "open-ended" else now + timedelta(minutes=30)
            one = [Allocation(line_id="1", node_id=node, sku=sku, quantity=1)]
            await u.inventory.reserve(key, key.split(":")[0], one, expires_at=expires_at)
        await u.inventory.commit(keys["committed"])
        await u.commit()

    handle: Handle = await temporal_env.client.start_workflow(
        ReservationSweeperWorkflow.run,
        ReservationSweeperInput(interval=INTERVAL, sweeps_per_run=2),
        id=f"test-sweeper-{uuid.uuid4().hex[:8]}",
        task_queue=sweeper_worker.task_queue,
    )
    first_run = handle.result_run_id
    try:
        # The first sweep runs at once, before anything has lapsed.
        await eventually(lambda: status(handle), lambda s: s.sweeps_this_run == 1)
        assert await states_of(uow_factory, keys["lapsing"]) == ["held"]

        # An hour later (skipped), the second sweep finds the lapsed hold and releases it; nothing else.
        await temporal_env.sleep(INTERVAL)
        await eventually(lambda: states_of(uow_factory, keys["lapsing"]), lambda s: s == ["released"])
        assert await states_of(uow_factory, keys["committed"]) == ["committed"]
        assert await states_of(uow_factory, keys["open-ended"]) == ["held"]
        assert await stock_row(uow_factory, node, sku) == (10, 2)
        swept = await eventually(lambda: status(handle), lambda s: s.sweeps_this_run == 2)
        assert swept.last_swept_at is not None
        assert swept.last_swept_at >= now + INTERVAL

        # After two sweeps the run hands over to a fresh one, carrying the count of what it released.
        await temporal_env.sleep(INTERVAL)
        latest: WorkflowHandle[ReservationSweeperWorkflow, None] = temporal_env.client.get_workflow_handle_for(
            ReservationSweeperWorkflow.run, handle.id
        )
        described = await eventually(latest.describe, lambda d: d.run_id != first_run)
        history = await temporal_env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
        assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        carried = await latest.query(ReservationSweeperWorkflow.status)
        # At least this test's hold; a sweep is global, so holds other tests left lapsed count too.
        assert carried.reservations_released >= 1
        assert described.run_id is not None
    finally:
        await temporal_env.client.get_workflow_handle(handle.id).terminate("test over")


async def test_every_worker_start_finds_the_one_running_sweeper(
    temporal_env: WorkflowEnvironment, sweeper_worker: Worker
) -> None:
    workflow_id = f"test-sweeper-{uuid.uuid4().hex[:8]}"
    client, queue = temporal_env.client, sweeper_worker.task_queue
    try:
        first = await start_sweeper(client, queue, workflow_id=workflow_id)
        again = await start_sweeper(client, queue, workflow_id=workflow_id)
        assert first is not None
        assert again == first
    finally:
        await client.get_workflow_handle(workflow_id).terminate("test over")


class _ServerRefusesStarts(Interceptor):
    """Stands in for a server that refuses the start (no such namespace, no permission): the time-skipping
    server accepts any namespace, so the refusal is made on the client side, where the worker would see it."""

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        class Refuse(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                raise RPCError("namespace no-such-namespace is not found", RPCStatusCode.NOT_FOUND, b"")

        return Refuse(next)


async def test_a_sweeper_that_cannot_start_is_a_warning_not_a_crash(temporal_env: WorkflowEnvironment) -> None:
    refusing = Client(
        temporal_env.client.service_client, data_converter=DATA_CONVERTER, interceptors=[_ServerRefusesStarts()]
    )
    with structlog.testing.capture_logs() as logs:
        assert await start_sweeper(refusing, "nowhere", workflow_id=f"test-sweeper-{uuid.uuid4().hex[:8]}") is None
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["could not start the reservation sweeper"]
    assert "not found" in warnings[0]["error"]
