"""CSR overrides over HTTP: the API in front of real order workflows (time-skipping server, real activities,
real PostgreSQL, the simulator as WMS).

The app is built on the task queue of a worker of its own (``tests.workflows.conftest.new_worker``), so the
orders it starts are run. Refusals are checked twice: the caller gets the workflow's reason (422), and the order's
history holds no trace of the refused update (a validator refuses before anything is written).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.routes import orders as order_routes
from api.schemas import OrderCreate, OrderPublic, WorkflowRef
from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Order, PaymentMethod
from infra.db.uow import UowFactory
from infra.settings import Settings
from tests.api.conftest import IsolatedApi
from tests.support import (
    AUSTIN,
    IMMEDIATE,
    NEWARK,
    TEST_ADMIN,
    NodeSpec,
    SeededNetwork,
    api_key_headers,
    build_network,
    eventually,
    make_order,
)
from tests.workflows import conftest as workflow_fixtures
from workflows import order_workflow_id
from workflows.contracts import Hold, HoldCode, OrderStatusView, PaymentState, TimelineEntry

pytestmark = pytest.mark.db

# The worker fixtures of the workflow tests: every real activity, the simulator in-process as the WMS.
simulator_clock = workflow_fixtures.simulator_clock
simulator = workflow_fixtures.simulator
new_worker = workflow_fixtures.new_worker

CSR = {"X-Actor": "casey@example.com"}
TWO_DCS = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK)]
UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


@dataclass
class Api:
    http: httpx.AsyncClient
    worker: Worker
    temporal: WorkflowEnvironment
    app: FastAPI

    def handle(self, order_id: str) -> WorkflowHandle[Any, Any]:
        return self.temporal.client.get_workflow_handle(order_workflow_id(order_id))


@pytest_asyncio.fixture
async def api(
    new_worker: workflow_fixtures.NewWorker, database_url: str, temporal_env: WorkflowEnvironment
) -> AsyncIterator[Api]:
    """The app, starting its orders on the task queue of a worker with the real activities."""
    async with new_worker() as worker:
        settings = Settings.model_validate(
            {**IMMEDIATE, "ORCH_DATABASE_URL": database_url, "ORCH_TASK_QUEUE": worker.task_queue}
        )
        assert settings.task_queue == worker.task_queue
        app = create_app(settings, temporal=temporal_env.client)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
            ) as http,
        ):
            yield Api(http, worker, temporal_env, app)


def body_of(order: Order) -> dict[str, Any]:
    return order.model_dump(mode="json", exclude={"placed_at"})


async def place(api: Api, order: Order) -> None:
    response = await api.http.post("/orders", json=body_of(order))
    assert response.status_code == 201, response.text


async def order_view(api: Api, order_id: str) -> dict[str, Any]:
    response = await api.http.get(f"/orders/{order_id}")
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def wait_for_stage(api: Api, order_id: str, stage: OrderStage) -> dict[str, Any]:
    return await eventually(lambda: order_view(api, order_id), lambda v: v["stage"] == stage)


async def updates_accepted(api: Api, order_id: str) -> int:
    history = await api.handle(order_id).fetch_history()
    return sum(1 for event in history.events if event.event_type == UPDATE_ACCEPTED)


async def released_order(api: Api, uow_factory: UowFactory) -> tuple[SeededNetwork, Order, dict[str, Any]]:
    """An order released to its node and waiting for the warehouse: it stays there until told otherwise."""
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5, ("NEWARK", "DRILL"): 5})
    order = make_order(net, {"DRILL": 2})
    await place(api, order)
    view = await wait_for_stage(api, order.order_id, OrderStage.RELEASED)
    return net, order, view


def override(reason_code: str = "customer_request", **fields: Any) -> dict[str, Any]:
    return {"reason_code": reason_code, **fields}


# --- the happy paths --------------------------------------------------------------------------------------


async def test_a_note_lands_on_the_timeline_with_who_and_why(api: Api, uow_factory: UowFactory) -> None:
    _, order, _ = await released_order(api, uow_factory)

    response = await api.http.post(
        f"/orders/{order.order_id}/notes",
        json=override("called_in", note="customer asked when it ships", role="supervisor"),
        headers=CSR,
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] is True
    assert result["stage"] == OrderStage.RELEASED
    timeline = [TimelineEntry.model_validate(e) for e in (await order_view(api, order.order_id))["timeline"]]
    notes = [e for e in timeline if e.reason_code == "called_in"]
    assert len(notes) == 1
    assert (notes[0].actor, notes[0].role) == (f"{TEST_ADMIN}:{CSR['X-Actor']}", "supervisor")
    assert (notes[0].event, notes[0].detail) == ("note", "customer asked when it ships")


async def test_hold_then_release_hold(api: Api, uow_factory: UowFactory) -> None:
    _, order, _ = await released_order(api, uow_factory)
    path = f"/orders/{order.order_id}"

    held = await api.http.post(f"{path}/hold", json=override("suspected_fraud", note="checking"), headers=CSR)
    assert held.status_code == 200, held.text
    view = await order_view(api, order.order_id)
    holds = [Hold.model_validate(h) for h in view["holds"]]
    assert [(h.code, h.actor) for h in holds] == [(HoldCode.CSR, f"{TEST_ADMIN}:{CSR['X-Actor']}")]

    released = await api.http.post(f"{path}/release-hold", json=override("cleared", hold="csr"), headers=CSR)
    assert released.status_code == 200, released.text
    assert (await order_view(api, order.order_id))["holds"] == []
    # Both overrides are on the timeline with their reasons.
    reasons = [e["reason_code"] for e in (await order_view(api, order.order_id))["timeline"] if e["reason_code"]]
    assert reasons == ["suspected_fraud", "cleared"]


async def test_cancelling_the_whole_order_ends_it_cancelled(api: Api, uow_factory: UowFactory) -> None:
    _, order, _ = await released_order(api, uow_factory)

    response = await api.http.post(f"/orders/{order.order_id}/cancel", json=override(), headers=CSR)

    assert response.status_code == 200, response.text
    final = OrderStatusView.model_validate(await api.handle(order.order_id).result())
    assert final.stage is OrderStage.CANCELLED
    assert all(s.stage is ShipmentStage.CANCELLED for s in final.shipments)
    assert sum(final.cancelled.values()) == sum(line.quantity for line in order.lines)
    view = await order_view(api, order.order_id)
    assert view["stage"] == OrderStage.CANCELLED
    assert view["workflow"]["status"] == "completed"

    # Finished: any further override is a conflict naming the stage.
    again = await api.http.post(f"/orders/{order.order_id}/cancel", json=override(), headers=CSR)
    assert again.status_code == 409, again.text
    assert again.json()["stage"] == OrderStage.CANCELLED


async def test_reroute_moves_the_shipment_and_shows_before_and_after(api: Api, uow_factory: UowFactory) -> None:
    net, order, view = await released_order(api, uow_factory)
    [shipment] = view["shipments"]
    assert shipment["node_id"] == net.node("AUSTIN")

    response = await api.http.post(
        f"/orders/{order.order_id}/reroute",
        json=override("closer_node", shipment_id=shipment["shipment_id"], node_id=net.node("NEWARK")),
        headers=CSR,
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["before"]["node_ids"] == [net.node("AUSTIN")]
    assert result["after"]["node_ids"] == [net.node("NEWARK")]
    after = await order_view(api, order.order_id)
    live = [s for s in after["shipments"] if s["stage"] not in (ShipmentStage.CANCELLED, ShipmentStage.LOST)]
    assert [s["node_id"] for s in live] == [net.node("NEWARK")]
    assert [e["reason_code"] for e in after["timeline"] if e["reason_code"]][-1] == "closer_node"


async def test_an_override_sent_twice_with_one_idempotency_key_is_applied_once(
    api: Api, uow_factory: UowFactory
) -> None:
    _, order, _ = await released_order(api, uow_factory)
    headers = {**CSR, "Idempotency-Key": "note-1"}
    body = override("called_in", note="asked for a delivery window")

    first = await api.http.post(f"/orders/{order.order_id}/notes", json=body, headers=headers)
    second = await api.http.post(f"/orders/{order.order_id}/notes", json=body, headers=headers)

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json() == second.json()
    timeline = (await order_view(api, order.order_id))["timeline"]
    assert [e["reason_code"] for e in timeline if e["reason_code"]] == ["called_in"]
    assert await updates_accepted(api, order.order_id) == 1


async def test_a_channel_key_acts_for_the_customer_whatever_role_its_body_claims(
    api: Api, uow_factory: UowFactory
) -> None:
    channel = await api_key_headers(api.app, role="channel", name="web-shop", tenant="shop-a")
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    assert (await api.http.post("/orders", json=body_of(order), headers=channel)).status_code == 201
    await wait_for_stage(api, order.order_id, OrderStage.RELEASED)

    body = override("called_in", role="csr", note="please ring before delivery")
    response = await api.http.post(f"/orders/{order.order_id}/notes", json=body, headers=channel)

    assert response.status_code == 200, response.text
    note = next(e for e in (await order_view(api, order.order_id))["timeline"] if e["event"] == "note")
    assert (note["actor"], note["role"]) == ("web-shop", "customer")


# --- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "reason_word"),
    [
        ("approve", override("looks_fine"), "review"),
        ("reject", override("fraud"), "review"),
        ("reroute", override("closer_node", shipment_id="NO-SUCH-SHIPMENT", node_id="NOWHERE"), "NO-SUCH-SHIPMENT"),
        ("cancel", override(line_ids=["no-such-line"]), "no-such-line"),
        # The order is released: the customer's own change of mind has ended (customer service may still act).
        ("pickup", override("changed_mind", role="customer", node_id="ANY-BRANCH"), "no longer change"),
        ("cancel", override("changed_mind", role="customer"), "needs customer service"),
    ],
)
async def test_a_refused_override_says_why_and_leaves_no_trace(
    api: Api, uow_factory: UowFactory, path: str, body: dict[str, Any], reason_word: str
) -> None:
    _, order, before = await released_order(api, uow_factory)
    accepted_before = await updates_accepted(api, order.order_id)

    response = await api.http.post(f"/orders/{order.order_id}/{path}", json=body, headers=CSR)

    assert response.status_code == 422, response.text
    assert reason_word.lower() in response.json()["message"].lower()
    # The validator refused: nothing in the history, nothing on the timeline, nothing changed.
    assert await updates_accepted(api, order.order_id) == accepted_before
    after = await order_view(api, order.order_id)
    assert (after["stage"], after["timeline"]) == (before["stage"], before["timeline"])


async def test_an_override_on_a_finished_order_is_a_conflict_naming_its_stage(
    api: Api, uow_factory: UowFactory
) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    order = order.model_copy(
        update={"lines": [*order.lines, order.lines[0].model_copy(update={"line_id": "9", "sku": "NO-SUCH-SKU"})]}
    )
    await place(api, order)
    await api.handle(order.order_id).result()

    response = await api.http.post(f"/orders/{order.order_id}/notes", json=override(note="too late"), headers=CSR)

    assert response.status_code == 409, response.text
    content = response.json()
    assert content["stage"] == OrderStage.REJECTED
    assert "rejected" in content["message"]
    assert content["workflow"]["status"] == "completed"


# --- slow answers: 202 and 503 -----------------------------------------------------------------------------


async def test_an_override_still_in_progress_is_accepted_and_then_done(
    api: Api, uow_factory: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, order, _ = await released_order(api, uow_factory)
    monkeypatch.setattr(order_routes, "UPDATE_WAIT", timedelta(0))
    headers = {**CSR, "Idempotency-Key": "cancel-1"}

    response = await api.http.post(f"/orders/{order.order_id}/cancel", json=override(), headers=headers)

    assert response.status_code == 202, response.text
    assert response.json()["update_id"] == "cancel:cancel-1"
    final = OrderStatusView.model_validate(await api.handle(order.order_id).result())
    assert final.stage is OrderStage.CANCELLED
    # The update was durable: exactly one cancellation, whatever the caller saw.
    assert await updates_accepted(api, order.order_id) == 1


async def test_an_override_no_worker_takes_is_unavailable(
    isolated_api: IsolatedApi, uow_factory: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    throwaway_api = isolated_api.http
    # This app starts orders on the default task queue, where no worker listens.
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    assert (await throwaway_api.post("/orders", json=body_of(order))).status_code == 201
    monkeypatch.setattr(order_routes, "UPDATE_TIMEOUT", timedelta(seconds=1))

    response = await throwaway_api.post(f"/orders/{order.order_id}/notes", json=override(note="x"), headers=CSR)

    assert response.status_code == 503, response.text
    assert "Idempotency-Key" in response.json()["message"]


# --- without a workflow: 404 and malformed requests ----------------------------------------------------------


async def test_an_override_for_an_unknown_order_is_not_found(api_client: httpx.AsyncClient) -> None:
    response = await api_client.post("/orders/NO-SUCH-ORDER/hold", json=override(), headers=CSR)
    assert response.status_code == 404
    assert response.json() == {"message": "order NO-SUCH-ORDER not found"}


@pytest.mark.parametrize(
    ("path", "body", "headers", "field"),
    [
        ("reroute", override(shipment_id="S-1"), CSR, "node_id"),
        ("hold", {"note": "no reason given"}, CSR, "reason_code"),
        ("hold", override("Not A Code"), CSR, "reason_code"),
        ("hold", override(role="admin"), CSR, "role"),
        ("hold", override(actor="someone-else"), CSR, "actor"),
        ("cancel", override(line_ids=[]), CSR, "line_ids"),
        ("service-level", override(service_level="overnight"), CSR, "service_level"),
        ("address", override(ship_to={"name": "A", "city": "Austin"}), CSR, "ship_to.line1"),
        ("pickup", override(), CSR, "node_id"),
        ("pickup", override(node_id="not a node id"), CSR, "node_id"),
        ("release-hold", override(hold="everything"), CSR, "hold"),
        ("notes", override(note="   "), CSR, "note"),
        ("notes", override(note="x"), {"X-Actor": "   "}, "X-Actor"),
    ],
)
async def test_a_malformed_override_names_the_field(
    api_client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], field: str
) -> None:
    # The order does not exist: a malformed body is refused before anything asks Temporal.
    response = await api_client.post(f"/orders/NO-SUCH-ORDER/{path}", json=body, headers=headers)
    assert response.status_code == 422, response.text
    content = response.json()
    assert field in [e["field"] for e in content["errors"]]
    assert field in content["message"]


# --- the order body's new fields --------------------------------------------------------------------------

BODY: dict[str, Any] = {
    "order_id": "FP-1",
    "customer_id": "C-1",
    "ship_to": {
        "name": "A",
        "line1": "1 Main",
        "city": "Austin",
        "region": "TX",
        "postal_code": "78701",
        "country": "US",
    },
    "lines": [{"line_id": "1", "sku": "S-1", "quantity": 2, "unit_price_minor": 100}],
}
# BODY's fingerprint as computed before payment_method and pickup_node_id existed (stored in orders' memos).
BODY_FINGERPRINT = "a65e80d780b75d031daa37242945af0cdf5eaaa2d47f8b05358565ba5db3c5e5"


def test_orders_placed_before_the_new_fields_keep_their_fingerprint() -> None:
    assert OrderCreate.model_validate(BODY).fingerprint() == BODY_FINGERPRINT
    explicit_defaults = {**BODY, "payment_method": "card", "pickup_node_id": None}
    assert OrderCreate.model_validate(explicit_defaults).fingerprint() == BODY_FINGERPRINT
    legacy = json.dumps(OrderCreate.model_validate(BODY).model_dump(mode="json", exclude={"placed_at"}), sort_keys=True)
    assert hashlib.sha256(legacy.encode()).hexdigest() != BODY_FINGERPRINT  # the new fields are in a plain dump


@pytest.mark.parametrize("extra", [{"payment_method": "terms"}, {"pickup_node_id": "BR-TX-AUSTIN"}])
def test_the_new_fields_are_part_of_the_fingerprint_and_reach_the_order(extra: dict[str, Any]) -> None:
    body = OrderCreate.model_validate({**BODY, **extra})
    assert body.fingerprint() != BODY_FINGERPRINT
    order = body.to_domain(received_at=datetime(2026, 11, 20, tzinfo=UTC))
    assert order.payment_method is PaymentMethod(extra.get("payment_method", "card"))
    assert order.pickup_node_id == extra.get("pickup_node_id")


def test_the_public_order_shows_holds_payment_and_cancellations() -> None:
    view = OrderStatusView(
        order_id="A-1",
        stage=OrderStage.ON_HOLD,
        customer_id="C-1",
        channel="web",
        service_level="standard",
        lines=1,
        shipments=[],
        timeline=[],
        holds=[Hold(code=HoldCode.REVIEW, reason="fraud score 0.93", actor="system", since=datetime.now(UTC))],
        payment=PaymentState(method=PaymentMethod.TERMS, authorized_minor=500),
        cancelled={"1": 1},
        exception_code="FraudReview",
        pickup_node_id="BR-TX-AUSTIN",
    )
    public = OrderPublic(**view.model_dump(), workflow=WorkflowRef(workflow_id="order:A-1"))
    assert public.holds == view.holds
    assert public.payment == view.payment
    assert (public.cancelled, public.exception_code, public.pickup_node_id) == ({"1": 1}, "FraudReview", "BR-TX-AUSTIN")
