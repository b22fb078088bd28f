"""The order lifecycle's exception paths on the time-skipping server: real activities, real Postgres, and the
simulator as warehouse, carrier, payment gateway and fraud screen.

Warehouse and carrier facts are delivered as signals (the simulator's own playback is held), so each test
says exactly what happened and when; days-long timers (review escalation, acknowledgement SLA, tracking
stall, pickup deadline, backorder wait) pass in milliseconds through ``temporal_env.sleep`` or while the
test waits for the result.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.exceptions import ExceptionCode, PlaybookSettings, ShipmentIssue
from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Order, PaymentMethod, ServiceLevel
from infra.db.tables import Stock
from infra.db.uow import UowFactory
from tests.support import AUSTIN, NEWARK, NodeSpec, SeededNetwork, build_network, eventually, make_order, stock_row
from tests.workflows.conftest import NewWorker, RecordHistory
from tests.workflows.test_order_workflow import ALL_THE_WAY, Simulator, report, reservations, wait_for_stage
from workflows import order_workflow_id
from workflows.contracts import (
    ActivityName,
    AddNote,
    CancelOrder,
    ChangeAddress,
    ChangeServiceLevel,
    CheckNodesInput,
    CheckNodesResult,
    DecideReview,
    HoldOrder,
    NodeReadiness,
    OrderStatusView,
    OrderWorkflowInput,
    OverrideResult,
    ReleaseHold,
    RerouteShipment,
    Role,
    ShipmentIssueReported,
    StockAvailable,
)
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.db

Handle = WorkflowHandle[OrderWorkflow, OrderStatusView]

TWO_DCS = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK)]
PRICE = 2_500
CSR: dict[str, Any] = {"actor": "ana@csr", "role": Role.CSR, "reason_code": "customer_request"}


def priced(order: Order, price: int = PRICE, **changes: Any) -> Order:
    lines = [line.model_copy(update={"unit_price_minor": price}) for line in order.lines]
    return order.model_copy(update={"lines": lines, **changes})


async def start(worker: Worker, order: Order, settings: PlaybookSettings | None = None) -> Handle:
    return await worker.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order, settings=settings or PlaybookSettings()),
        id=order_workflow_id(order.order_id),
        task_queue=worker.task_queue,
    )


async def override(handle: Handle, update: Any, request: Any) -> OverrideResult:
    """An update through the client (its typing does not follow ``async`` update methods)."""
    result = await handle.execute_update(update, request)
    assert isinstance(result, OverrideResult)
    return result


async def status(handle: Handle) -> OrderStatusView:
    return await handle.query(OrderWorkflow.status)


async def until(handle: Handle, check: Any) -> OrderStatusView:
    return await eventually(lambda: status(handle), check)


def live(view: OrderStatusView) -> list[Any]:
    return [s for s in view.shipments if s.live]


async def issue(handle: Handle, shipment_id: str, kind: ShipmentIssue, **fields: Any) -> None:
    await handle.signal(
        OrderWorkflow.shipment_issue_reported,
        ShipmentIssueReported(
            event_id=f"issue:{shipment_id}:{kind}", shipment_id=shipment_id, issue=kind,
            occurred_at=datetime.now(UTC), **fields,
        ),
    )  # fmt: skip


async def sim(simulator: Simulator, path: str) -> Any:
    response = await simulator[1].get(path)
    response.raise_for_status()
    return response.json()


async def behave(simulator: Simulator, **change: Any) -> None:
    (await simulator[1].patch("/control/behaviour", json={"hold_events": True, **change})).raise_for_status()


async def ledger(simulator: Simulator, order_id: str) -> dict[str, Any]:
    return dict(await sim(simulator, f"/payments/orders/{order_id}"))


async def notices(simulator: Simulator, order_id: str) -> list[str]:
    stats = await sim(simulator, "/notifications")
    return [str(n["kind"]) for n in stats["notifications"] if n["order_id"] == order_id]


async def cancellations(simulator: Simulator, order_id: str) -> list[dict[str, Any]]:
    stats = await sim(simulator, "/wms/cancellations")
    return [c for c in stats["cancellations"] if str(c["shipment_id"]).startswith(order_id)]


async def follow_ups(simulator: Simulator, order_id: str) -> list[str]:
    stats = await sim(simulator, "/carrier/follow-ups")
    return [str(f["kind"]) for f in stats["follow_ups"] if f["order_id"] == order_id]


def update_events(history: Any) -> int:
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in history.events)


async def two_dcs(uow: UowFactory, austin: int = 5, newark: int = 5) -> SeededNetwork:
    stock = {("AUSTIN", "DRILL"): austin, ("NEWARK", "DRILL"): newark}
    return await build_network(uow, TWO_DCS, {k: v for k, v in stock.items() if v} or {("AUSTIN", "DRILL"): 0})


# --- the happy paths ------------------------------------------------------------------------------------


async def test_delivery_is_paid_per_shipment_and_completes(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 2}))
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        assert released.payment is not None
        assert released.payment.authorized_minor == 2 * PRICE
        (shipment,) = released.shipments
        await report(handle, shipment.shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert final.payment is not None
    assert final.payment.captured_minor == 2 * PRICE
    money = await ledger(simulator, order.order_id)
    assert (money["authorized_minor"], money["captured_minor"], money["voided_minor"]) == (2 * PRICE, 2 * PRICE, 0)
    stages = [e.event for e in final.timeline if e.event.startswith("order ")]
    assert stages == [
        "order received", "order validated", "order planned", "order reserved", "order released",
        "order in_fulfilment", "order completed",
    ]  # fmt: skip
    await record_history(handle, "v2_delivered")


async def test_pickup_is_collected_at_the_branch(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await build_network(
        uow_factory,
        [NodeSpec("BRANCH", AUSTIN, kind="store", capabilities=("ship", "pickup")), NodeSpec("NEWARK", NEWARK)],
        {("BRANCH", "DRILL"): 4, ("NEWARK", "DRILL"): 10},
    )
    order = make_order(net, {"DRILL": 1}).model_copy(update={"pickup_node_id": net.node("BRANCH")})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        (shipment,) = released.shipments
        assert shipment.node_id == net.node("BRANCH")
        assert shipment.method == "pickup"
        await report(
            handle, shipment.shipment_id, ShipmentStage.ACKNOWLEDGED, ShipmentStage.PICKED,
            ShipmentStage.PACKED, ShipmentStage.READY_FOR_PICKUP, ShipmentStage.COLLECTED,
        )  # fmt: skip
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert final.shipments[0].stage is ShipmentStage.COLLECTED
    assert await stock_row(uow_factory, net.node("BRANCH"), net.sku("DRILL")) == (3, 0)
    await record_history(handle, "pickup_collected")


async def test_pickup_not_collected_is_reminded_then_cancelled_and_stock_returns(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await build_network(
        uow_factory,
        [NodeSpec("BRANCH", AUSTIN, kind="store", capabilities=("ship", "pickup"))],
        {("BRANCH", "DRILL"): 4},
    )
    order = priced(make_order(net, {"DRILL": 2}), pickup_node_id=net.node("BRANCH"))
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        shipment_id = released.shipments[0].shipment_id
        await report(handle, shipment_id, ShipmentStage.ACKNOWLEDGED, ShipmentStage.PACKED,
                     ShipmentStage.READY_FOR_PICKUP)  # fmt: skip
        await until(handle, lambda v: v.shipments[0].stage is ShipmentStage.READY_FOR_PICKUP)
        final = await handle.result()  # five days pass here
    assert final.stage is OrderStage.CANCELLED
    assert final.cancelled == {"1": 2}
    assert final.exception_code == ExceptionCode.PICKUP_NOT_COLLECTED
    assert await stock_row(uow_factory, net.node("BRANCH"), net.sku("DRILL")) == (4, 0)
    assert [c["shipment_id"] for c in await cancellations(simulator, order.order_id)] == [shipment_id]
    sent = await notices(simulator, order.order_id)
    assert sent.index("pickup_reminder") < sent.index("pickup_cancelled")
    money = await ledger(simulator, order.order_id)
    assert (money["captured_minor"], money["voided_minor"]) == (0, 2 * PRICE)
    await record_history(handle, "pickup_not_collected")


# --- validation, review, payment ------------------------------------------------------------------------


async def test_fraud_review_waits_escalates_and_continues_when_approved(
    new_worker: NewWorker,
    uow_factory: UowFactory,
    simulator: Simulator,
    temporal_env: WorkflowEnvironment,
    record_history: RecordHistory,
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    await behave(simulator, fraud_scores={order.customer_id: 0.93})
    async with new_worker() as worker:
        handle = await start(worker, order)
        held = await wait_for_stage(handle, OrderStage.ON_HOLD)
        assert [h.code for h in held.holds] == ["review"]
        assert await reservations(uow_factory, order.order_id) == []

        await temporal_env.sleep(timedelta(hours=9))  # two escalation periods: it never times out silently
        escalated = await until(handle, lambda v: v.exception_code == ExceptionCode.REVIEW_OVERDUE)
        assert escalated.stage is OrderStage.ON_HOLD
        assert (await notices(simulator, order.order_id)).count(f"escalation:{ExceptionCode.REVIEW_OVERDUE}") >= 2

        result = await handle.execute_update(OrderWorkflow.approve, DecideReview(**CSR))
        assert "approved" in result.message
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    approval = next(e for e in final.timeline if e.event == "review approved")
    assert (approval.actor, approval.role, approval.reason_code) == ("ana@csr", "csr", "customer_request")
    await record_history(handle, "review_approved")


async def test_fraud_review_rejected_ends_the_order_with_nothing_held(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    await behave(simulator, fraud_scores={order.customer_id: 0.99})
    async with new_worker() as worker:
        handle = await start(worker, order)
        await wait_for_stage(handle, OrderStage.ON_HOLD)
        await handle.execute_update(OrderWorkflow.reject, DecideReview(**{**CSR, "reason_code": "fraud_confirmed"}))
        final = await handle.result()
    assert final.stage is OrderStage.REJECTED
    assert await reservations(uow_factory, order.order_id) == []
    assert (await ledger(simulator, order.order_id))["authorized_minor"] == 0
    await record_history(handle, "review_rejected")


async def test_declined_card_rejects_the_order(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 1}))
    await behave(simulator, decline_customers=[order.customer_id])
    async with new_worker() as worker:
        final = await (await start(worker, order)).result()
    assert final.stage is OrderStage.REJECTED
    assert final.exception_code == "PaymentDeclined"
    assert await reservations(uow_factory, order.order_id) == []


async def test_terms_order_over_the_credit_limit_waits_for_review_then_is_invoiced(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 2}), payment_method=PaymentMethod.TERMS)
    await behave(simulator, credit_limits={order.customer_id: PRICE})
    async with new_worker() as worker:
        handle = await start(worker, order)
        held = await wait_for_stage(handle, OrderStage.ON_HOLD)
        assert "credit limit" in held.holds[0].reason
        await handle.execute_update(OrderWorkflow.approve, DecideReview(**{**CSR, "reason_code": "credit_override"}))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert final.payment is not None
    assert final.payment.approved_without_authorization
    assert (await ledger(simulator, order.order_id))["captured_minor"] == 0
    await record_history(handle, "credit_limit_approved")


async def test_capture_failure_holds_and_escalates_until_a_csr_lifts_the_hold(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 1}))
    await behave(simulator, capture_fail_orders=[order.order_id])
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        shipment_id = released.shipments[0].shipment_id
        await report(handle, shipment_id, ShipmentStage.PICKED, ShipmentStage.PACKED, ShipmentStage.SHIPPED)
        held = await until(handle, lambda v: any(h.code == "payment" for h in v.holds))
        assert held.exception_code == ExceptionCode.CAPTURE_FAILED
        assert f"escalation:{ExceptionCode.CAPTURE_FAILED}" in await notices(simulator, order.order_id)

        await behave(simulator, capture_fail_orders=[])
        await handle.execute_update(OrderWorkflow.release_hold, ReleaseHold(**{**CSR, "reason_code": "card_updated"}))
        await report(handle, shipment_id, ShipmentStage.DELIVERED)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert (await ledger(simulator, order.order_id))["captured_minor"] == PRICE
    await record_history(handle, "capture_failed_then_released")


# --- node playbooks ---------------------------------------------------------------------------------------


async def test_short_pick_releases_there_and_replans_elsewhere(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order)
        first = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        assert first.node_id == net.node("AUSTIN")
        await report(handle, first.shipment_id, ShipmentStage.ACKNOWLEDGED)
        await issue(handle, first.shipment_id, ShipmentIssue.SHORT_PICKED, detail="bin empty")
        replanned = await until(
            handle, lambda v: any(s.node_id == net.node("NEWARK") and s.stage == "released" for s in v.shipments)
        )
        assert replanned.exception_code == ExceptionCode.SHORT_PICK
        assert [s.stage for s in replanned.shipments] == [ShipmentStage.CANCELLED, ShipmentStage.RELEASED]
        assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (5, 0)
        assert [c["shipment_id"] for c in await cancellations(simulator, order.order_id)] == [first.shipment_id]
        await report(handle, live(replanned)[0].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert await stock_row(uow_factory, net.node("NEWARK"), net.sku("DRILL")) == (3, 0)
    await record_history(handle, "short_pick_replanned")


async def test_node_refusing_the_release_is_replaced_by_the_next_best(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    await behave(simulator, reject_nodes=[net.node("AUSTIN")])
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order)
        view = await until(handle, lambda v: any(s.stage == "released" for s in v.shipments))
        assert [(s.node_id, s.stage) for s in view.shipments] == [
            (net.node("AUSTIN"), ShipmentStage.CANCELLED), (net.node("NEWARK"), ShipmentStage.RELEASED),
        ]  # fmt: skip
        assert view.exception_code == ExceptionCode.NODE_REJECTED
        assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (5, 0)
        await report(handle, live(view)[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "node_rejected_replanned")


async def test_node_silent_past_its_sla_is_cancelled_there_and_replanned(
    new_worker: NewWorker,
    uow_factory: UowFactory,
    simulator: Simulator,
    temporal_env: WorkflowEnvironment,
    record_history: RecordHistory,
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        first = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        await temporal_env.sleep(timedelta(hours=2, minutes=1))
        view = await until(handle, lambda v: len(v.shipments) == 2 and v.shipments[1].stage == "released")
        assert view.exception_code == ExceptionCode.NO_ACK
        assert view.shipments[1].node_id == net.node("NEWARK")
        # The provider was asked first (patch ``provider-poll``): the held simulator has it, unacknowledged.
        polled = [e for e in view.timeline if e.event == "poll: nothing new"]
        assert [(e.actor, e.detail) for e in polled] == [(net.node("AUSTIN"), f"{first.shipment_id}: released")]
        assert [c["shipment_id"] for c in await cancellations(simulator, order.order_id)] == [first.shipment_id]
        await report(handle, view.shipments[1].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "no_ack_replanned")


async def test_node_paused_before_release_is_planned_around(
    temporal_env: WorkflowEnvironment, new_worker: NewWorker, uow_factory: UowFactory
) -> None:
    net = await two_dcs(uow_factory)
    asked: list[list[str]] = []

    @activity.defn(name=ActivityName.CHECK_NODES)
    async def austin_paused_once(input: CheckNodesInput) -> CheckNodesResult:
        """The node was paused between the plan and the release (a race the engine cannot see)."""
        asked.append(input.node_ids)
        first = len(asked) == 1
        return CheckNodesResult(
            nodes=[
                NodeReadiness(
                    node_id=n, ready=not (first and n == net.node("AUSTIN")), reason="paused" if first else None
                )
                for n in input.node_ids
            ]
        )

    order = make_order(net, {"DRILL": 1})
    async with new_worker(replace=[austin_paused_once]) as worker:
        handle = await start(worker, order)
        view = await until(handle, lambda v: any(s.stage == "released" for s in v.shipments))
        assert [(s.node_id, s.stage) for s in view.shipments] == [
            (net.node("AUSTIN"), ShipmentStage.CANCELLED), (net.node("NEWARK"), ShipmentStage.RELEASED),
        ]  # fmt: skip
        assert view.exception_code == ExceptionCode.NODE_UNAVAILABLE
        await report(handle, view.shipments[1].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED


# --- backorders -----------------------------------------------------------------------------------------


async def test_backorder_waits_for_stock_and_is_planned_when_it_arrives(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory, austin=0, newark=0)
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order)
        waiting = await wait_for_stage(handle, OrderStage.BACKORDERED)
        assert waiting.backorder is not None
        assert waiting.exception_code == ExceptionCode.BACKORDERED

        async with uow_factory() as u:
            await u.session.execute(
                update(Stock)
                .where(Stock.node_id == net.node("AUSTIN"), Stock.sku == net.sku("DRILL"))
                .values(on_hand=3)
            )
            await u.commit()
        await handle.signal(OrderWorkflow.stock_available, StockAvailable(skus=[net.sku("DRILL")]))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        assert released.backorder is None
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "backorder_filled")


async def test_backorder_that_never_fills_is_cancelled_at_its_deadline(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory, austin=1, newark=1)
    order = make_order(net, {"DRILL": 5})
    async with new_worker() as worker:
        handle = await start(worker, order)
        await wait_for_stage(handle, OrderStage.BACKORDERED)
        final = await handle.result()  # fourteen days of re-checks pass here
    assert final.stage is OrderStage.CANCELLED
    assert final.cancelled == {"1": 5}
    assert await reservations(uow_factory, order.order_id) == []
    assert "backorder_cancelled" in await notices(simulator, order.order_id)
    await record_history(handle, "backorder_expired")


# --- carrier playbooks ------------------------------------------------------------------------------------


async def test_carrier_delay_repromises_notifies_and_escalates(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        promised = shipment.promised_date or date.today()
        await report(handle, shipment.shipment_id, ShipmentStage.PICKED, ShipmentStage.SHIPPED)
        late = promised + timedelta(days=5)
        await issue(handle, shipment.shipment_id, ShipmentIssue.DELAYED, new_estimate=late, detail="weather")
        view = await until(handle, lambda v: v.shipments[0].current_promise == late and v.exception_code is not None)
        assert view.shipments[0].promised_date == shipment.promised_date
        assert view.exception_code == ExceptionCode.CARRIER_DELAY
        sent = await notices(simulator, order.order_id)
        assert "delayed" in sent
        assert f"escalation:{ExceptionCode.CARRIER_DELAY}" in sent
        await report(handle, shipment.shipment_id, ShipmentStage.DELIVERED)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "carrier_delay")


async def test_stalled_tracking_is_traced_and_escalated(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, temporal_env: WorkflowEnvironment
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        await report(handle, shipment.shipment_id, ShipmentStage.PICKED, ShipmentStage.SHIPPED)
        await until(handle, lambda v: v.shipments[0].stage is ShipmentStage.SHIPPED)
        await temporal_env.sleep(timedelta(days=3, hours=1))
        view = await until(handle, lambda v: v.exception_code == ExceptionCode.TRACKING_STALLED)
        assert view.shipments[0].escalated
        assert await follow_ups(simulator, order.order_id) == ["trace"]
        await report(handle, shipment.shipment_id, ShipmentStage.DELIVERED)
        assert (await handle.result()).stage is OrderStage.COMPLETED


async def test_lost_parcel_is_reshipped_once_then_refunded(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 1}))
    async with new_worker() as worker:
        handle = await start(worker, order)
        first = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        await report(handle, first.shipment_id, ShipmentStage.PICKED, ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT)
        await until(handle, lambda v: v.payment is not None and v.payment.captured_minor == PRICE)
        await issue(handle, first.shipment_id, ShipmentIssue.LOST)
        again = await until(handle, lambda v: len(v.shipments) == 2 and v.shipments[1].stage == "released")
        assert again.shipments[0].stage is ShipmentStage.LOST
        second = again.shipments[1]
        await report(handle, second.shipment_id, ShipmentStage.PICKED, ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT,
                     event_prefix="second")  # fmt: skip
        await issue(handle, second.shipment_id, ShipmentIssue.LOST)
        final = await handle.result()
    assert final.stage is OrderStage.CANCELLED
    assert [s.stage for s in final.shipments] == [ShipmentStage.LOST, ShipmentStage.LOST]
    money = await ledger(simulator, order.order_id)
    # Two parcels shipped for one unit: one capture, the replacement captured nothing more, one refund.
    assert (money["captured_minor"], money["refunded_minor"]) == (PRICE, PRICE)
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (3, 0)
    await record_history(handle, "lost_reshipped_refunded")


# --- cancellation at every stage ----------------------------------------------------------------------------

CANCEL_POINTS = {
    "on_hold": (),
    "released": (),
    "picked": (ShipmentStage.PICKED,),
    "shipped": (ShipmentStage.PICKED, ShipmentStage.SHIPPED),
    "delivered": (ShipmentStage.PICKED, ShipmentStage.SHIPPED, ShipmentStage.DELIVERED),
}


@pytest.mark.parametrize("point", list(CANCEL_POINTS))
async def test_cancel_at_every_stage_undoes_exactly_what_was_done(
    point: str,
    new_worker: NewWorker,
    uow_factory: UowFactory,
    simulator: Simulator,
    record_history: RecordHistory,
) -> None:
    net = await two_dcs(uow_factory)
    order = priced(make_order(net, {"DRILL": 2}))
    if point == "on_hold":
        await behave(simulator, fraud_scores={order.customer_id: 0.9})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment_id = None
        if point == "on_hold":
            await wait_for_stage(handle, OrderStage.ON_HOLD)
        else:
            shipment_id = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0].shipment_id
            await report(handle, shipment_id, *CANCEL_POINTS[point])
            last = CANCEL_POINTS[point][-1] if CANCEL_POINTS[point] else ShipmentStage.RELEASED
            await until(handle, lambda v: v.shipments[0].stage is last)
        answer = await override(handle, OrderWorkflow.cancel, CancelOrder(**CSR))
        assert answer.stage is OrderStage.CANCELLED
        final = await handle.result()

    assert final.stage is OrderStage.CANCELLED
    money = await ledger(simulator, order.order_id)
    stock = await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL"))
    shipped = point in ("shipped", "delivered")
    if point == "on_hold":
        assert money["authorized_minor"] == 0
        assert stock == (5, 0)
    elif not shipped:
        # Released or picked: the node stopped it, the stock is free again, the authorization given back.
        assert [c["shipment_id"] for c in await cancellations(simulator, order.order_id)] == [shipment_id]
        assert stock == (5, 0)
        assert (money["captured_minor"], money["voided_minor"]) == (0, 2 * PRICE)
    else:
        # It had left: the follow-up that can still help, and the money stays captured until the goods return.
        assert await follow_ups(simulator, order.order_id) == ["intercept" if point == "shipped" else "return"]
        assert stock == (3, 0)
        assert (money["captured_minor"], money["voided_minor"]) == (2 * PRICE, 0)
    assert "cancelled" in await notices(simulator, order.order_id)
    await record_history(handle, f"cancelled_{point}")


async def test_cancelling_one_line_replans_the_rest_and_releases_its_money(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5, ("AUSTIN", "LADDER"): 5})
    order = priced(make_order(net, {"DRILL": 1, "LADDER": 2}))
    async with new_worker() as worker:
        handle = await start(worker, order)
        first = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        answer = await override(handle, OrderWorkflow.cancel, CancelOrder(**CSR, line_ids=["2"]))
        assert "2 unit(s) cancelled" in answer.message
        view = await until(handle, lambda v: len(v.shipments) == 2 and v.shipments[1].stage == "released")
        assert view.shipments[0].shipment_id == first.shipment_id
        assert view.shipments[0].stage is ShipmentStage.CANCELLED
        assert [a.line_id for a in view.shipments[1].allocations] == ["1"]
        assert view.cancelled == {"2": 2}
        await report(handle, view.shipments[1].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    money = await ledger(simulator, order.order_id)
    assert (money["captured_minor"], money["voided_minor"]) == (PRICE, 2 * PRICE)
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("LADDER")) == (5, 0)


# --- overrides ----------------------------------------------------------------------------------------------


async def test_invalid_overrides_are_refused_with_a_reason_and_leave_no_trace(
    new_worker: NewWorker, uow_factory: UowFactory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        before = update_events(await handle.fetch_history())
        refusals = {
            OrderWorkflow.approve: (DecideReview(**CSR), "not waiting for review"),
            OrderWorkflow.release_hold: (ReleaseHold(**CSR), "no CSR or payment hold"),
            OrderWorkflow.reroute: (RerouteShipment(**CSR, shipment_id="nope", node_id=net.node("NEWARK")), "unknown"),
            OrderWorkflow.cancel: (CancelOrder(**CSR, line_ids=["9"]), "unknown line_ids: 9"),
            OrderWorkflow.change_service_level: (
                ChangeServiceLevel(**CSR, service_level=ServiceLevel.EXPEDITED), "already released",
            ),
        }  # fmt: skip
        for update_method, (request, reason) in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await override(handle, update_method, request)
            assert reason in str(refused.value.cause), (update_method, refused.value.cause)
        assert update_events(await handle.fetch_history()) == before
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        await handle.result()


async def test_reroute_moves_a_released_shipment_and_shows_the_effect(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory, austin=5, newark=7)
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order)
        first = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        answer = await override(handle, OrderWorkflow.reroute,
            RerouteShipment(**{**CSR, "reason_code": "branch_closing"}, shipment_id=first.shipment_id,
                            node_id=net.node("NEWARK")),
        )  # fmt: skip
        assert answer.before is not None
        assert answer.after is not None
        assert answer.before.node_ids == [net.node("AUSTIN")]
        assert answer.after.node_ids == [net.node("NEWARK")]
        sku = net.sku("DRILL")
        assert answer.before.atp[net.node("NEWARK")][sku] == 7
        assert answer.after.atp[net.node("NEWARK")][sku] == 5
        assert answer.after.atp[net.node("AUSTIN")][sku] == 5
        view = await until(handle, lambda v: len(v.shipments) == 2 and v.shipments[1].stage == "released")
        await report(handle, view.shipments[1].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert [c["shipment_id"] for c in await cancellations(simulator, order.order_id)] == [first.shipment_id]
    journal = next(e for e in final.timeline if e.event == "shipment rerouted")
    assert journal.reason_code == "branch_closing"
    await record_history(handle, "rerouted")


async def test_hold_stops_planning_until_released_and_service_level_can_change_meanwhile(
    new_worker: NewWorker, uow_factory: UowFactory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        await handle.execute_update(OrderWorkflow.hold, HoldOrder(**{**CSR, "reason_code": "address_check"}))
        held = await wait_for_stage(handle, OrderStage.VALIDATED)
        assert held.shipments == []
        assert held.holds[0].code == "csr"
        await override(
            handle, OrderWorkflow.change_service_level, ChangeServiceLevel(**CSR, service_level=ServiceLevel.EXPEDITED)
        )
        await handle.execute_update(OrderWorkflow.add_note, AddNote(**{**CSR, "note": "customer called twice"}))
        await handle.execute_update(OrderWorkflow.release_hold, ReleaseHold(**CSR))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        assert released.service_level == ServiceLevel.EXPEDITED
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    note = next(e for e in final.timeline if e.event == "note")
    assert (note.actor, note.detail) == ("ana@csr", "customer called twice")


async def test_address_change_before_release_replans_and_a_bad_address_changes_nothing(
    new_worker: NewWorker, uow_factory: UowFactory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    newark = order.ship_to.model_copy(
        update={"city": "Newark", "region": "NJ", "postal_code": "07102", "location": NEWARK}
    )
    async with new_worker() as worker:
        handle = await start(worker, order)
        await handle.execute_update(OrderWorkflow.hold, HoldOrder(**CSR))
        await wait_for_stage(handle, OrderStage.VALIDATED)
        bad = newark.model_copy(update={"postal_code": "ABCDE"})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await override(handle, OrderWorkflow.change_address, ChangeAddress(**CSR, ship_to=bad))
        assert "postal_code" in str(refused.value.cause)
        assert (await status(handle)).stage is OrderStage.VALIDATED

        await override(handle, OrderWorkflow.change_address, ChangeAddress(**CSR, ship_to=newark))
        await handle.execute_update(OrderWorkflow.release_hold, ReleaseHold(**CSR))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        # The nearest node to the new address now ships it.
        assert released.shipments[0].node_id == net.node("NEWARK")
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED


async def test_cancelling_a_backordered_order_holds_nothing_and_charges_nothing(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    net = await two_dcs(uow_factory, austin=0, newark=0)
    order = priced(make_order(net, {"DRILL": 2}))
    async with new_worker() as worker:
        handle = await start(worker, order)
        await wait_for_stage(handle, OrderStage.BACKORDERED)
        answer = await override(handle, OrderWorkflow.cancel, CancelOrder(**CSR))
        assert answer.stage is OrderStage.CANCELLED
        final = await handle.result()
    assert final.cancelled == {"1": 2}
    assert final.backorder is None
    money = await ledger(simulator, order.order_id)
    assert (money["authorized_minor"], money["voided_minor"], money["captured_minor"]) == (2 * PRICE, 2 * PRICE, 0)


async def test_overrides_racing_completion_are_applied_or_refused_never_lost(
    new_worker: NewWorker, uow_factory: UowFactory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment_id = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0].shipment_id
        await report(handle, shipment_id, ShipmentStage.PICKED, ShipmentStage.SHIPPED)

        async def note(i: int) -> str:
            try:
                await handle.execute_update(OrderWorkflow.add_note, AddNote(**{**CSR, "note": f"race {i}"}))
            except WorkflowUpdateFailedError:
                return "refused"
            except Exception as err:  # the workflow closed between the call and its acceptance
                return f"closed: {type(err).__name__}"
            return "applied"

        notes = [asyncio.create_task(note(i)) for i in range(8)]
        await report(handle, shipment_id, ShipmentStage.DELIVERED)
        outcomes = await asyncio.gather(*notes)
        final = await handle.result()
    applied = {f"race {i}" for i, o in enumerate(outcomes) if o == "applied"}
    journaled = {e.detail for e in final.timeline if e.event == "note"}
    assert applied == journaled
    assert final.stage is OrderStage.COMPLETED


# --- continue-as-new --------------------------------------------------------------------------------------


async def test_long_history_continues_as_new_carrying_the_whole_state(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order, PlaybookSettings(history_event_limit=50))
        shipment_id = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0].shipment_id
        for i in range(12):
            await handle.execute_update(OrderWorkflow.add_note, AddNote(**{**CSR, "note": f"note {i}"}))
        await until(handle, lambda v: any(e.event == "continued as new" for e in v.timeline))
        await report(handle, shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert [e.detail for e in final.timeline if e.event == "note"] == [f"note {i}" for i in range(12)]
    assert sum(e.event == "order received" for e in final.timeline) == 1
    assert [r.state for r in await reservations(uow_factory, order.order_id)] == ["consumed"]


async def test_when_every_node_refuses_the_order_backorders_then_expires(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    """Both nodes refused and are excluded for this order: nothing else can supply it, so it waits, then ends."""
    net = await two_dcs(uow_factory)
    await behave(simulator, reject_nodes=[net.node("AUSTIN"), net.node("NEWARK")])
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order, PlaybookSettings(backorder_wait=timedelta(hours=1)))
        final = await handle.result()
    assert final.stage is OrderStage.CANCELLED
    assert [s.stage for s in final.shipments] == [ShipmentStage.CANCELLED, ShipmentStage.CANCELLED]
    assert await stock_row(uow_factory, net.node("NEWARK"), net.sku("DRILL")) == (5, 0)


async def test_plan_attempt_budget_fails_the_order_with_a_typed_reason(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    net = await build_network(
        uow_factory,
        [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK), NodeSpec("THIRD", NEWARK)],
        {("AUSTIN", "DRILL"): 5, ("NEWARK", "DRILL"): 5, ("THIRD", "DRILL"): 5},
    )
    await behave(simulator, reject_nodes=list(net.node_ids.values()))
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order, PlaybookSettings(max_plan_attempts=2))
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        view = await status(handle)
    assert view.stage is OrderStage.FAILED
    assert view.exception_code == ExceptionCode.PLAN_ATTEMPTS_EXHAUSTED
    assert getattr(failure.value.cause, "type", None) == ExceptionCode.PLAN_ATTEMPTS_EXHAUSTED
    assert all(r.state == "released" for r in await reservations(uow_factory, order.order_id))
