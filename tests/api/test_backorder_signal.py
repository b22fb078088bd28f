"""A stock receipt posted to the API wakes the backordered orders waiting for it, without their re-check timer.

Two servers, because the time-skipping test server has no visibility API: ``ListWorkflowExecutions`` and
``CountWorkflowExecutions`` answer UNIMPLEMENTED (checked below, so a server that learns them shows up here).

- On the time-skipping server, the app's notifier lists through ``DescribedBackorders`` (a describe per order the
  test placed, filtered as the visibility query would) and everything else is real: API, commit, signal, worker,
  activities, PostgreSQL. The server's clock proves no re-check timer fired.
- On a dev server (``temporal server start-dev``, in memory, started once for this module in a few seconds)
  the real visibility query runs unchanged, end to end.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.backorders import BACKORDERED_QUERY, BackorderNotifier, RaisedStock
from domain.exceptions import ExceptionCode, PlaybookSettings
from domain.feeds import FeedKind, FeedReport, FeedRow, Outcome, RowReport, SnapshotLine
from domain.lifecycle import OrderStage
from domain.orders import Order
from infra.db.uow import UowFactory
from infra.interceptors import LoggingInterceptor
from infra.settings import Settings
from infra.temporal import DATA_CONVERTER
from integrations.partners import Partners
from tests.support import (
    AUSTIN,
    IMMEDIATE,
    NEWARK,
    NodeSpec,
    SeededNetwork,
    api_key_headers,
    build_network,
    eventually,
    make_order,
)
from tests.workflows import conftest as workflow_fixtures
from worker import WORKFLOWS, build_activities
from workflows import order_workflow_id
from workflows.contracts import SA_EXCEPTION_CODE, SEARCH_ATTRIBUTES

pytestmark = pytest.mark.db

simulator_clock = workflow_fixtures.simulator_clock
simulator = workflow_fixtures.simulator
new_worker = workflow_fixtures.new_worker

BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
TWO_DCS = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK)]
RECHECK = PlaybookSettings().backorder_recheck
SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED


@dataclass
class DescribedBackorders:
    """The visibility query's answer for the orders a test placed, found by describing each: what the
    time-skipping server can do. Records the queries it was asked, to check the notifier sends the real one."""

    client: Client
    order_ids: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)

    async def __call__(self, query: str, limit: int) -> AsyncIterator[str]:
        self.queries.append(query)
        for order_id in self.order_ids[:limit]:
            described = await self.client.get_workflow_handle(order_workflow_id(order_id)).describe()
            backordered = described.typed_search_attributes.get(SA_EXCEPTION_CODE) == ExceptionCode.BACKORDERED
            if described.status == WorkflowExecutionStatus.RUNNING and backordered:
                yield described.id


@dataclass
class Api:
    http: httpx.AsyncClient
    client: Client
    app: FastAPI
    placed: list[str] = field(default_factory=list)

    async def place(self, order: Order) -> None:
        response = await self.http.post("/orders", json=order.model_dump(mode="json", exclude={"placed_at"}))
        assert response.status_code == 201, response.text
        self.placed.append(order.order_id)

    async def view(self, order_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/orders/{order_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def wait_for_stage(self, order_id: str, stage: OrderStage) -> dict[str, Any]:
        return await eventually(lambda: self.view(order_id), lambda v: v["stage"] == stage)

    async def receive(self, net: SeededNetwork, node: str, sku: str, delta: int, kind: str = "receipt") -> None:
        row = {"node_id": net.node(node), "sku": net.sku(sku), "kind": kind, "delta": delta, "reason": "PO-1"}
        response = await self.http.post("/inventory/adjustments", json={"source": "wms", "rows": [row]})
        assert response.status_code == 200, response.text

    async def signals(self, order_id: str) -> int:
        history = await self.client.get_workflow_handle(order_workflow_id(order_id)).fetch_history()
        return sum(1 for event in history.events if event.event_type == SIGNALED)

    async def terminate_placed(self) -> None:
        """Leave no order running: on the time-skipping server, one whose worker is gone stalls later tests' time."""
        for order_id in self.placed:
            handle = self.client.get_workflow_handle(order_workflow_id(order_id))
            try:
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate(reason="test finished")
            except RPCError:
                pass


@asynccontextmanager
async def serving(client: Client, database_url: str, task_queue: str) -> AsyncIterator[Api]:
    settings = Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url, "ORCH_TASK_QUEUE": task_queue})
    app = create_app(settings, temporal=client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
        ) as http,
    ):
        api = Api(http, client, app)
        try:
            yield api
        finally:
            notifier: BackorderNotifier | None = getattr(app.state, "backorder_notifier", None)
            if notifier is not None:
                await notifier.drain()
            await api.terminate_placed()


# --- time-skipping server: everything real but the listing ------------------------------------------------


@pytest_asyncio.fixture
async def api(
    new_worker: workflow_fixtures.NewWorker, database_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[tuple[Api, DescribedBackorders]]:
    async with new_worker() as worker, serving(temporal_env.client, database_url, worker.task_queue) as api:
        lister = DescribedBackorders(temporal_env.client)
        api.app.state.backorder_notifier = BackorderNotifier(temporal_env.client, lister=lister)
        yield api, lister


async def backordered_order(api: Api, uow_factory: UowFactory) -> tuple[SeededNetwork, Order]:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 0, ("NEWARK", "HAMMER"): 5})
    order = make_order(net, {"DRILL": 2})
    await api.place(order)
    view = await api.wait_for_stage(order.order_id, OrderStage.BACKORDERED)
    assert view["exception_code"] == ExceptionCode.BACKORDERED
    return net, order


async def test_a_receipt_through_the_api_releases_a_backordered_order_at_once(
    api: tuple[Api, DescribedBackorders], uow_factory: UowFactory, temporal_env: WorkflowEnvironment
) -> None:
    http, lister = api
    net, order = await backordered_order(http, uow_factory)
    lister.order_ids.append(order.order_id)
    before = await temporal_env.get_current_time()

    await http.receive(net, "AUSTIN", "DRILL", 3)

    view = await http.wait_for_stage(order.order_id, OrderStage.RELEASED)
    assert view["backorder"] is None
    assert [s["node_id"] for s in view["shipments"]] == [net.node("AUSTIN")]
    assert lister.queries == [BACKORDERED_QUERY]
    assert await http.signals(order.order_id) == 1
    # The signal did it: the server's clock is far short of the 6-hour re-check.
    assert await temporal_env.get_current_time() - before < RECHECK


async def test_stock_of_another_sku_is_signalled_but_ignored_and_a_decrease_signals_nothing(
    api: tuple[Api, DescribedBackorders], uow_factory: UowFactory
) -> None:
    http, lister = api
    net, order = await backordered_order(http, uow_factory)
    lister.order_ids.append(order.order_id)

    await http.receive(net, "NEWARK", "HAMMER", -1, kind="damage")
    await http.receive(net, "NEWARK", "HAMMER", 4)
    await eventually(lambda: http.signals(order.order_id), lambda n: n == 1)

    assert lister.queries == [BACKORDERED_QUERY]  # the damage report listed nothing
    view = await http.view(order.order_id)
    assert view["stage"] == OrderStage.BACKORDERED
    assert not view["backorder"]["stock_signalled"]  # the order wants DRILL, not HAMMER: the signal was ignored


async def test_the_notifier_counts_closed_orders_respects_its_cap_and_survives_a_listing_failure(
    temporal_env: WorkflowEnvironment,
) -> None:
    gone = [order_workflow_id(f"NOPE-{uuid.uuid4().hex[:6]}") for _ in range(5)]

    async def listed(query: str, limit: int) -> AsyncIterator[str]:
        for workflow_id in gone[:limit]:
            yield workflow_id

    capped = BackorderNotifier(temporal_env.client, lister=listed, max_orders=3)
    result = await capped.notify(["DRILL"])
    assert (result.listed, result.signalled, result.closed, result.failed, result.truncated) == (4, 0, 3, 0, True)

    # The real lister on the time-skipping server: visibility is unimplemented there; the notice gives up quietly.
    with pytest.raises(RPCError) as unimplemented:
        await temporal_env.client.count_workflows(BACKORDERED_QUERY)
    assert unimplemented.value.status == RPCStatusCode.UNIMPLEMENTED
    result = await BackorderNotifier(temporal_env.client).notify(["DRILL"])
    assert (result.listed, result.signalled, result.failed) == (0, 0, 0)


# --- which writes raise availability (pure) ---------------------------------------------------------------


def _report(*rows: RowReport, kind: FeedKind = FeedKind.ADJUSTMENT, replayed: bool = False) -> FeedReport:
    return FeedReport(
        batch_id="b",
        kind=kind,
        accepted=True,
        replayed=replayed,
        applied=len(rows),
        stale=0,
        refused=0,
        rows=list(rows),
    )


def _row(
    n: int, sku: str, before: int | None, after: int | None, *, node: str = "N1", outcome: Outcome = Outcome.APPLIED
) -> RowReport:
    return RowReport(row=n, node_id=node, sku=sku, outcome=outcome, before=before, after=after)


SNAPSHOT_ROWS = [
    FeedRow(1, SnapshotLine(node_id="N1", sku="A", on_hand=5)),
    FeedRow(2, SnapshotLine(node_id="N1", sku="B", on_hand=5, safety_stock=0)),
    FeedRow(3, SnapshotLine(node_id="N2", sku="C", on_hand=5)),
]


@pytest.mark.parametrize(
    ("report", "rows", "expected"),
    [
        (_report(_row(1, "A", 0, 3)), [], RaisedStock(["A"], "N1")),
        (_report(_row(1, "A", 5, 3)), [], RaisedStock([])),
        (_report(_row(1, "A", 0, 3), replayed=True), [], RaisedStock([])),
        (_report(_row(1, "A", 0, 3), _row(2, "B", 1, 2, node="N2")), [], RaisedStock(["A", "B"], None)),
        (_report(_row(1, "A", 0, None, outcome=Outcome.STALE)), [], RaisedStock([])),
        # A snapshot row that set safety stock may have lowered it: it counts, after the rows whose on_hand rose.
        (
            _report(_row(1, "A", 5, 5), _row(2, "B", 5, 5), _row(3, "C", 0, 5, node="N2"), kind=FeedKind.SNAPSHOT),
            SNAPSHOT_ROWS,
            RaisedStock(["C", "B"], None),
        ),
    ],
)
def test_raised_stock_of_a_feed(report: FeedReport, rows: list[FeedRow[Any]], expected: RaisedStock) -> None:
    assert RaisedStock.of_feed(report, rows) == expected


# --- dev server: the real visibility query -----------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=DATA_CONVERTER,
        search_attributes=list(SEARCH_ATTRIBUTES),
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


async def test_on_a_dev_server_the_visibility_query_finds_the_backorder_and_the_receipt_releases_it(
    dev_env: WorkflowEnvironment,
    database_url: str,
    uow_factory: UowFactory,
    simulator: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    activities = build_activities(uow_factory, Partners.over(simulator[1]))
    queue = f"test-{uuid.uuid4().hex[:8]}"
    async with (
        Worker(
            dev_env.client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities,
            interceptors=[LoggingInterceptor()],
        ),
        serving(dev_env.client, database_url, queue) as api,
    ):
        net, order = await backordered_order(api, uow_factory)
        # Visibility is updated a moment after the workflow: wait until the query sees the order, as it will.
        await eventually(lambda: dev_env.client.count_workflows(BACKORDERED_QUERY), lambda c: c.count == 1)
        started = datetime.now(UTC)

        await api.receive(net, "AUSTIN", "DRILL", 3)

        await api.wait_for_stage(order.order_id, OrderStage.RELEASED)
        assert datetime.now(UTC) - started < timedelta(seconds=30)  # real time here, and the re-check is 6 hours
        assert await api.signals(order.order_id) == 1
