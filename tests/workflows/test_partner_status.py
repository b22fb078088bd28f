"""Asking partners instead of waiting on them: an unacknowledged release is first asked about at its node's
provider (patch ``provider-poll``), and a parcel's tracking number is registered with the carrier so its events
come to us (patch ``carrier-register``). On the time-skipping server with real activities, real Postgres and
the simulator as warehouse and carrier; its playback is held, so shipment facts arrive as signals. The real
status call answering ``released`` (escalate, plan elsewhere) is checked in ``test_lifecycle``'s missed-SLA case.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import OrderStage, ShipmentStage
from infra.db.uow import UowFactory
from integrations.simulator.warehouse import tracking_number_for
from tests.support import make_order
from tests.workflows.conftest import NewWorker, RecordHistory
from tests.workflows.test_lifecycle import cancellations, sim, start, two_dcs, until
from tests.workflows.test_order_workflow import ALL_THE_WAY, Simulator, report, wait_for_stage
from workflows.contracts import ActivityName, ShipmentStatusInput, ShipmentStatusResult

pytestmark = pytest.mark.db

ACK_OVERDUE = timedelta(hours=2, minutes=1)


async def test_an_overdue_ack_is_asked_about_and_work_already_done_is_kept(
    new_worker: NewWorker,
    uow_factory: UowFactory,
    simulator: Simulator,
    temporal_env: WorkflowEnvironment,
    record_history: RecordHistory,
) -> None:
    """The node picked the shipment but its webhooks were lost: the status call finds it picked, so nothing is
    escalated, cancelled or planned elsewhere."""
    asked: list[ShipmentStatusInput] = []

    @activity.defn(name=ActivityName.SHIPMENT_STATUS)
    async def provider_says_picked(input: ShipmentStatusInput) -> ShipmentStatusResult:
        asked.append(input)
        return ShipmentStatusResult(stage=ShipmentStage.PICKED, occurred_at=datetime(2026, 1, 2, tzinfo=UTC))

    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker(replace=[provider_says_picked]) as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        await temporal_env.sleep(ACK_OVERDUE)
        view = await until(handle, lambda v: v.shipments[0].stage is ShipmentStage.PICKED)
        assert [(a.shipment_id, a.node_id) for a in asked] == [(shipment.shipment_id, net.node("AUSTIN"))]
        assert len(view.shipments) == 1, "not planned elsewhere"
        assert view.exception_code is None
        assert await cancellations(simulator, order.order_id) == []
        assert [e.event for e in view.timeline if e.actor == "provider-poll"] == ["shipment picked"]
        # The webhooks come back: the picked one is stale (the poll got there first), the rest apply.
        await report(handle, shipment.shipment_id, *ALL_THE_WAY)
        final = await handle.result()

    assert final.stage is OrderStage.COMPLETED
    assert not [e for e in final.timeline if e.event.startswith("escalated")]
    await record_history(handle, "provider_poll_picked")


async def test_a_shipped_parcel_is_registered_with_the_carrier_once(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        releases = (await sim(simulator, "/wms/releases"))["releases"]
        release_id = next(r["release_id"] for r in releases if r["shipment_id"] == shipment.shipment_id)
        number = tracking_number_for(release_id)
        await report(handle, shipment.shipment_id, ShipmentStage.ACKNOWLEDGED, ShipmentStage.PICKED)
        await report(handle, shipment.shipment_id, ShipmentStage.SHIPPED, tracking_number=number)
        view = await until(handle, lambda v: v.shipments[0].tracking_reference is not None)
        # The carrier's next event repeats the number: nothing is registered again.
        await report(handle, shipment.shipment_id, ShipmentStage.IN_TRANSIT, tracking_number=number)
        await until(handle, lambda v: v.shipments[0].stage is ShipmentStage.IN_TRANSIT)
        await report(handle, shipment.shipment_id, ShipmentStage.DELIVERED)
        final = await handle.result()

    registrations = [
        r for r in (await sim(simulator, "/carrier/trackings"))["registrations"] if r["order_id"] == order.order_id
    ]
    assert [(r["shipment_id"], r["tracking_number"], r["attempts"]) for r in registrations] == [
        (shipment.shipment_id, number, 1)
    ]
    assert view.shipments[0].tracking_registered == number
    assert registrations[0]["reference"] == view.shipments[0].tracking_reference
    assert final.stage is OrderStage.COMPLETED
    carrier = [e.event for e in final.timeline if e.actor == "carrier"]
    assert carrier == ["tracking registered"]
    await record_history(handle, "tracking_registered")
