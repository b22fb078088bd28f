"""OrderWorkflow on the time-skipping server, with real activities, real Postgres and the simulator as WMS."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from temporalio.client import WorkflowHandle
from temporalio.worker import Worker

from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Order
from infra.db.tables import Reservation
from infra.db.uow import UowFactory
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, build_network, eventually, make_order, stock_row
from tests.workflows.conftest import NewWorker, RecordHistory
from workflows import order_workflow_id
from workflows.contracts import OrderStatusView, OrderWorkflowInput, ShipmentEventReceived, SignalName
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.db

Simulator = tuple[FastAPI, httpx.AsyncClient]
Handle = WorkflowHandle[OrderWorkflow, OrderStatusView]

TWO_DCS = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK)]


async def start(worker: Worker, order: Order) -> Handle:
    return await worker.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order),
        id=order_workflow_id(order.order_id),
        task_queue=worker.task_queue,
    )


async def wait_for_stage(handle: Handle, stage: OrderStage) -> OrderStatusView:
    return await eventually(lambda: handle.query(OrderWorkflow.status), lambda v: v.stage is stage)


async def report(
    handle: Handle,
    shipment_id: str,
    *stages: ShipmentStage,
    event_prefix: str = "evt",
    tracking_number: str | None = None,
) -> None:
    for stage in stages:
        await handle.signal(
            OrderWorkflow.shipment_event_received,
            ShipmentEventReceived(
                event_id=f"{event_prefix}:{shipment_id}:{stage}",
                shipment_id=shipment_id,
                stage=stage,
                occurred_at=datetime.now(UTC),
                tracking_number=tracking_number,
            ),
        )


async def reservations(uow: UowFactory, order_id: str) -> list[Reservation]:
    async with uow() as u:
        return list(await u.session.scalars(select(Reservation).where(Reservation.order_id == order_id)))


async def simulator_releases(simulator: Simulator, order_id: str) -> list[dict[str, object]]:
    stats = (await simulator[1].get("/wms/releases")).json()
    return [r for r in stats["releases"] if r["order_id"] == order_id]


ALL_THE_WAY = (ShipmentStage.PICKED, ShipmentStage.PACKED, ShipmentStage.SHIPPED, ShipmentStage.DELIVERED)


async def test_order_flows_from_receipt_to_delivery(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5, ("NEWARK", "DRILL"): 50})
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)

        # The nearest node that has everything was chosen, and the decision says why.
        assert [s.node_id for s in released.shipments] == [net.node("AUSTIN")]
        assert released.plan is not None
        assert net.node("AUSTIN") in released.plan.explanation.decision
        assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (5, 2)

        shipment_id = released.shipments[0].shipment_id
        await report(handle, shipment_id, *ALL_THE_WAY)
        final = await handle.result()

    assert final.stage is OrderStage.COMPLETED
    assert final.shipments[0].stage is ShipmentStage.DELIVERED
    assert final.shipments[0].provider_reference
    # Shipping consumed the reservation: the units left the building.
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (3, 0)
    assert [r.state for r in await reservations(uow_factory, order.order_id)] == ["consumed"]
    releases = await simulator_releases(simulator, order.order_id)
    assert [(r["shipment_id"], r["attempts"]) for r in releases] == [(shipment_id, 1)]
    stages = [e.event for e in final.timeline if e.event.startswith("order ")]
    assert stages == [
        "order received", "order validated", "order planned", "order reserved", "order released",
        "order in_fulfilment", "order completed",
    ]  # fmt: skip

    await record_history(handle, "delivered")


async def test_unknown_sku_is_rejected_without_side_effects(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    order = order.model_copy(
        update={"lines": [*order.lines, order.lines[0].model_copy(update={"line_id": "9", "sku": "NO-SUCH-SKU"})]}
    )
    async with new_worker() as worker:
        handle = await start(worker, order)
        result = await handle.result()
    assert result.stage is OrderStage.REJECTED
    assert result.failure is not None
    assert "NO-SUCH-SKU" in result.failure
    assert await reservations(uow_factory, order.order_id) == []

    await record_history(handle, "rejected_unknown_sku")


async def test_split_order_releases_each_shipment_once(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await build_network(
        uow_factory,
        [NodeSpec("AUSTIN", AUSTIN), NodeSpec("DALLAS", DALLAS)],
        {("AUSTIN", "DRILL"): 3, ("DALLAS", "LADDER"): 2},
    )
    order = make_order(net, {"DRILL": 2, "LADDER": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        assert sorted(s.node_id for s in released.shipments) == sorted([net.node("AUSTIN"), net.node("DALLAS")])
        for shipment in released.shipments:
            await report(handle, shipment.shipment_id, *ALL_THE_WAY)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    releases = await simulator_releases(simulator, order.order_id)
    assert sorted(str(r["node_id"]) for r in releases) == sorted([net.node("AUSTIN"), net.node("DALLAS")])
    assert all(r["attempts"] == 1 for r in releases)
    assert await stock_row(uow_factory, net.node("DALLAS"), net.sku("LADDER")) == (1, 0)

    await record_history(handle, "split_two_nodes")


async def test_duplicate_and_out_of_order_events_never_move_a_shipment_backwards(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        shipment_id = released.shipments[0].shipment_id

        await report(handle, shipment_id, ShipmentStage.SHIPPED)
        await report(handle, shipment_id, ShipmentStage.SHIPPED)  # the same event id again: dropped
        await report(handle, shipment_id, ShipmentStage.PICKED)  # late: recorded, not applied
        view = await eventually(
            lambda: handle.query(OrderWorkflow.status), lambda v: any("stale" in e.event for e in v.timeline)
        )
        assert view.shipments[0].stage is ShipmentStage.SHIPPED
        assert sum(e.event == "shipment shipped" for e in view.timeline) == 1
        # Consumed exactly once, although "shipped" arrived twice.
        await eventually(lambda: stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")), lambda s: s == (4, 0))

        await report(handle, shipment_id, ShipmentStage.DELIVERED)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (4, 0)

    await record_history(handle, "stale_and_duplicate_events")


async def test_event_that_arrives_before_planning_is_held_then_applied(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    """As after a reset, when Temporal reapplies the old run's signals ahead of the new run's plan."""
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    shipment_id = f"{order.order_id}:p1:{net.node('AUSTIN')}"
    early = ShipmentEventReceived(
        event_id="early-picked", shipment_id=shipment_id, stage=ShipmentStage.PICKED, occurred_at=datetime.now(UTC)
    )
    async with new_worker() as worker:
        handle = await worker.client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(order=order),
            id=order_workflow_id(order.order_id),
            task_queue=worker.task_queue,
            start_signal=SignalName.SHIPMENT_EVENT_RECEIVED,
            start_signal_args=[early],
        )
        view = await wait_for_stage(handle, OrderStage.IN_FULFILMENT)
        assert view.shipments[0].stage is ShipmentStage.PICKED
        events = [e.event for e in view.timeline]
        assert events.index("event held until its shipment is planned") < events.index("order planned")
        assert events.index("order planned") < events.index("shipment picked")

        await report(handle, shipment_id, ShipmentStage.SHIPPED, ShipmentStage.DELIVERED)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "early_event_held")
