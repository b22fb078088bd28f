"""``POST /webhooks/wms`` as a gate: HMAC-SHA256 over ``<t>.<raw body>``, a timestamp tolerance, two secrets during a
rotation, deduplication by event id, events for unknown orders kept and listed (``GET /webhooks/unmatched``), and
out-of-order events that never move an order backwards.

Every refused call is checked to leave nothing behind: the same event, then signed correctly, is still accepted.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Address, Order, OrderLine
from infra.db.uow import UowFactory
from infra.interceptors import LoggingInterceptor
from infra.settings import Settings
from infra.temporal import DATA_CONVERTER, ensure_search_attributes
from integrations.partners import Partners
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from integrations.webhooks import SIGNATURE_HEADER, sign
from tests.support import AUSTIN, DALLAS, IMMEDIATE, NodeSpec, api_key_headers, build_network, eventually, make_order
from worker import WORKFLOWS, build_activities
from workflows import order_workflow_id
from workflows.contracts import OrderStatusView, OrderWorkflowInput
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.db

CURRENT = "whsec-current"
PREVIOUS = "whsec-previous"
RETIRED = "whsec-retired"
TOLERANCE_S = 300
DEFAULT_SECRET = Settings.model_validate({}).webhook_secret.get_secret_value()


@dataclass
class Gate:
    """The API with a secret being rotated (``CURRENT`` new, ``PREVIOUS`` still accepted), on a Temporal test server
    of its own: its workflows run on a queue no worker serves (the server records the signals, nothing runs)."""

    http: httpx.AsyncClient
    env: WorkflowEnvironment


@pytest_asyncio.fixture(scope="module")
async def gate(database_url: str) -> AsyncIterator[Gate]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        await ensure_search_attributes(env.client)
        settings = Settings.model_validate(
            {
                **IMMEDIATE,
                "ORCH_DATABASE_URL": database_url,
                "ORCH_WEBHOOK_SECRET": CURRENT,
                "ORCH_WEBHOOK_SECRET_PREVIOUS": PREVIOUS,
                "ORCH_WEBHOOK_TOLERANCE_S": TOLERANCE_S,
            }
        )
        app = create_app(settings, temporal=env.client)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
            ) as http,
        ):
            yield Gate(http=http, env=env)
    finally:
        await env.shutdown()


def event(order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:10]}",
        "order_id": order_id,
        "shipment_id": f"{order_id}:p1:DC-1",
        "stage": "picked",
        "occurred_at": "2026-11-22T10:00:00Z",
        **fields,
    }


def raw(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


async def post(http: httpx.AsyncClient, body: bytes, header: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"} | ({SIGNATURE_HEADER: header} if header is not None else {})
    return await http.post("/webhooks/wms", content=body, headers=headers)


async def post_signed(http: httpx.AsyncClient, body: dict[str, Any], secret: str = CURRENT) -> httpx.Response:
    data = raw(body)
    return await post(http, data, sign(secret, int(time.time()), data))


@asynccontextmanager
async def unserved_order(env: WorkflowEnvironment) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    order_id = f"SEC-{uuid.uuid4().hex[:8]}"
    order = Order(
        order_id=order_id,
        customer_id="C-1",
        ship_to=Address(name="Ada", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"),
        lines=[OrderLine(line_id="1", sku="DRILL", quantity=1)],
        placed_at=datetime.now(UTC),
    )
    handle = await env.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order),
        id=order_workflow_id(order_id),
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield handle
    finally:
        await handle.terminate("test over")


async def signalled_event_ids(handle: WorkflowHandle[Any, Any]) -> list[str]:
    """The event ids of the shipment signals in a workflow's history, in the order received."""
    ids = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = e.workflow_execution_signaled_event_attributes
            [payload] = attrs.input.payloads
            ids.append(json.loads(payload.data)["event_id"])
    return ids


def _tampered(body: bytes) -> bytes:
    return body.replace(b'"picked"', b'"packed"')


# (what is sent, given the body and "now") -> (body sent, header), and the reason the API gives.
REFUSALS: list[Any] = [
    pytest.param(lambda b, t: (b, None), "missing Orch-Signature header", id="missing-header"),
    pytest.param(lambda b, t: (b, ""), "missing Orch-Signature header", id="empty-header"),
    pytest.param(lambda b, t: (b, f"t={t}"), "malformed", id="no-v1"),
    pytest.param(lambda b, t: (b, sign(CURRENT, t, b).split(",")[1]), "malformed", id="no-timestamp"),
    pytest.param(lambda b, t: (_tampered(b), sign(CURRENT, t, b)), "does not match", id="tampered-body"),
    pytest.param(lambda b, t: (b, sign("not-the-secret", t, b)), "does not match", id="wrong-secret"),
    pytest.param(lambda b, t: (b, sign(RETIRED, t, b)), "does not match", id="retired-secret"),
    pytest.param(lambda b, t: (b, sign(CURRENT, t - TOLERANCE_S - 60, b)), "tolerance", id="stale-timestamp"),
    pytest.param(lambda b, t: (b, sign(CURRENT, t + TOLERANCE_S + 60, b)), "tolerance", id="future-timestamp"),
    # A captured signature with its timestamp moved into the window: the timestamp is signed too.
    pytest.param(
        lambda b, t: (b, sign(CURRENT, t - TOLERANCE_S - 60, b).replace(f"t={t - TOLERANCE_S - 60}", f"t={t}")),
        "does not match",
        id="timestamp-moved",
    ),
]


@pytest.mark.parametrize(("forge", "reason"), REFUSALS)
async def test_refused_and_nothing_kept(
    gate: Gate, forge: Callable[[bytes, int], tuple[bytes, str | None]], reason: str
) -> None:
    async with unserved_order(gate.env) as handle:
        body = event(handle.id.removeprefix("order:"))
        data, header = forge(raw(body), int(time.time()))
        refused = await post(gate.http, data, header)
        assert refused.status_code == 401, refused.text
        assert reason in refused.json()["message"]
        assert await signalled_event_ids(handle) == []

        # The refusal left no trace: the genuine event is still accepted, and applied.
        genuine = await post_signed(gate.http, body)
        assert (genuine.status_code, genuine.json()["outcome"]) == (202, "applied")
        assert await signalled_event_ids(handle) == [body["event_id"]]


@pytest.mark.parametrize(
    "header_for",
    [
        pytest.param(lambda b, t: sign(CURRENT, t, b), id="current-secret"),
        pytest.param(lambda b, t: sign(PREVIOUS, t, b), id="previous-secret"),
        # A sender mid-rotation signs with both: either v1 may match.
        pytest.param(lambda b, t: f"{sign(PREVIOUS, t, b)},v1={sign(CURRENT, t, b).split('v1=')[1]}", id="both"),
        pytest.param(lambda b, t: sign(CURRENT, t - TOLERANCE_S + 5, b), id="old-within-tolerance"),
        pytest.param(lambda b, t: sign(CURRENT, t + TOLERANCE_S - 5, b), id="ahead-within-tolerance"),
    ],
)
async def test_accepted_exactly_once(gate: Gate, header_for: Callable[[bytes, int], str]) -> None:
    async with unserved_order(gate.env) as handle:
        body = event(handle.id.removeprefix("order:"))
        data = raw(body)
        first = await post(gate.http, data, header_for(data, int(time.time())))
        assert (first.status_code, first.json()) == (202, {"event_id": body["event_id"], "outcome": "applied"})
        # Replays: the same capture, and the same event freshly signed (a sender's retry), change nothing.
        for header in (header_for(data, int(time.time())), sign(CURRENT, int(time.time()), data)):
            again = await post(gate.http, data, header)
            assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        assert await signalled_event_ids(handle) == [body["event_id"]]


async def test_replayed_event_id_with_other_content_is_a_duplicate(gate: Gate) -> None:
    """Deduplication is by event id: a second body under an id already accepted is not applied."""
    async with unserved_order(gate.env) as handle:
        body = event(handle.id.removeprefix("order:"))
        assert (await post_signed(gate.http, body)).status_code == 202
        changed = {**body, "stage": "shipped", "tracking_number": "1Z999"}
        again = await post_signed(gate.http, changed)
        assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
        assert await signalled_event_ids(handle) == [body["event_id"]]


async def test_unknown_order_is_kept_and_listed_once(gate: Gate) -> None:
    order_id = f"NOPE-{uuid.uuid4().hex[:8]}"
    body = event(order_id, stage="delivered")
    first = await post_signed(gate.http, body)
    assert (first.status_code, first.json()["outcome"]) == (202, "unknown_order")
    assert (await post_signed(gate.http, body)).json()["outcome"] == "duplicate"

    listed = await gate.http.get("/webhooks/unmatched", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    mine = [item for item in listed.json()["items"] if item["order_id"] == order_id]
    assert len(mine) == 1
    [item] = mine
    assert (item["event_id"], item["source"], item["outcome"]) == (body["event_id"], "wms", "unknown_order")
    assert item["payload"]["stage"] == "delivered"
    assert item["received_at"]


async def test_unmatched_lists_closed_orders_on_request_and_never_applied_events(gate: Gate) -> None:
    async with unserved_order(gate.env) as handle:
        order_id = handle.id.removeprefix("order:")
        applied = event(order_id)
        assert (await post_signed(gate.http, applied)).json()["outcome"] == "applied"
    # The workflow is terminated now: an event for it is kept as `order_closed`.
    late = event(order_id, stage="delivered")
    assert (await post_signed(gate.http, late)).json()["outcome"] == "order_closed"

    async def listed(**params: Any) -> set[str]:
        response = await gate.http.get("/webhooks/unmatched", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        return {item["event_id"] for item in response.json()["items"] if item["order_id"] == order_id}

    assert await listed() == set()
    assert await listed(outcome="order_closed") == {late["event_id"]}
    assert await listed(outcome=["unknown_order", "order_closed"]) == {late["event_id"]}
    assert (await gate.http.get("/webhooks/unmatched", params={"outcome": "applied"})).status_code == 422


# --- out of order, with a worker running the order ---------------------------------------------------------


@pytest_asyncio.fixture
async def worker(temporal_env: WorkflowEnvironment, uow_factory: UowFactory) -> AsyncIterator[Worker]:
    """A worker with every real activity, the simulator in-process as the WMS (its own events held back)."""
    config = SimulatorConfig(
        webhook_url="http://unused.invalid/webhooks/wms", webhook_secret="test", behaviour=Behaviour(hold_events=True)
    )
    simulator = create_simulator_app(config)
    transport = httpx.ASGITransport(app=simulator)
    async with (
        simulator.router.lifespan_context(simulator),
        httpx.AsyncClient(transport=transport, base_url="http://wms") as http,
        Worker(
            temporal_env.client,
            task_queue=f"test-{uuid.uuid4().hex[:8]}",
            workflows=WORKFLOWS,
            activities=build_activities(uow_factory, Partners.over(http)),
            interceptors=[LoggingInterceptor()],
        ) as running,
    ):
        yield running


async def test_delivered_before_shipped_never_moves_the_order_backwards(
    api_client: httpx.AsyncClient, worker: Worker, uow_factory: UowFactory
) -> None:
    # Two shipments, so the order is still open when the late "shipped" comes.
    net = await build_network(
        uow_factory,
        [NodeSpec("AUSTIN", AUSTIN), NodeSpec("DALLAS", DALLAS)],
        {("AUSTIN", "DRILL"): 3, ("DALLAS", "LADDER"): 2},
    )
    order = make_order(net, {"DRILL": 1, "LADDER": 1})
    handle: WorkflowHandle[Any, OrderStatusView] = await worker.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order),
        id=order_workflow_id(order.order_id),
        task_queue=worker.task_queue,
    )

    async def view() -> OrderStatusView:
        return await handle.query(OrderWorkflow.status)

    released = await eventually(view, lambda v: v.stage is OrderStage.RELEASED)
    first, second = (s.shipment_id for s in released.shipments)

    def stage_event(shipment_id: str, stage: str) -> dict[str, Any]:
        return event(order.order_id, shipment_id=shipment_id, stage=stage)

    async def send(body: dict[str, Any]) -> str:
        response = await post_signed(api_client, body, DEFAULT_SECRET)
        assert response.status_code == 202, response.text
        outcome: str = response.json()["outcome"]
        return outcome

    assert await send(stage_event(first, "delivered")) == "applied"
    late_shipped = {**stage_event(first, "shipped"), "tracking_number": "1ZLATE"}
    assert await send(late_shipped) == "applied"  # accepted and signalled: the workflow judges
    # The stale note is written when the signal arrives; the order's stage moves on the loop's next turn, after
    # the delivered shipment is settled (activities): wait for both, then check where it went.
    after = await eventually(
        view, lambda v: any("stale" in e.event for e in v.timeline) and v.stage is not OrderStage.RELEASED
    )
    [shipment] = [s for s in after.shipments if s.shipment_id == first]
    assert shipment.stage is ShipmentStage.DELIVERED
    # The late event's stage is ignored, but it is the one that carries the tracking number: that is kept.
    assert shipment.tracking_number == "1ZLATE"
    assert after.stage is OrderStage.IN_FULFILMENT
    assert sum(e.event == "shipment delivered" for e in after.timeline) == 1

    assert await send(stage_event(second, "delivered")) == "applied"
    final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert all(s.stage is ShipmentStage.DELIVERED for s in final.shipments)
