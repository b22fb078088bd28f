"""A stalled parcel is polled at the carrier before it is traced (patch ``carrier-poll``), on the time-skipping
server with real activities, real Postgres and the simulator as warehouse and carrier.

The simulator's playback is held, so shipment facts arrive as signals; three days of silence pass through
``temporal_env.sleep``. Where the carrier has news, a stand-in ``track_parcel`` gives it (the simulator's own
tracking endpoint is covered in ``tests/unit/test_carrier_tracking.py``); where it has none, the real activity
asks the simulator about a tracking number it never issued and gets a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio import activity
from temporalio.testing import WorkflowEnvironment

from domain.exceptions import ExceptionCode
from domain.lifecycle import OrderStage, ShipmentStage
from infra.db.uow import UowFactory
from tests.support import make_order
from tests.workflows.conftest import NewWorker, RecordHistory
from tests.workflows.test_lifecycle import Handle, follow_ups, start, two_dcs, until
from tests.workflows.test_order_workflow import Simulator, report, wait_for_stage
from workflows.contracts import ActivityName, TrackParcelInput, TrackParcelResult

pytestmark = pytest.mark.db

STALL = timedelta(days=3, hours=1)


async def ship(handle: Handle, shipment_id: str, tracking_number: str) -> None:
    """Picked, then shipped with a tracking number, then silence."""
    await report(handle, shipment_id, ShipmentStage.PICKED)
    await report(handle, shipment_id, ShipmentStage.SHIPPED, tracking_number=tracking_number)
    await until(handle, lambda v: v.shipments[0].stage is ShipmentStage.SHIPPED)


async def test_poll_finds_the_parcel_delivered_so_nothing_is_traced(
    new_worker: NewWorker,
    uow_factory: UowFactory,
    simulator: Simulator,
    temporal_env: WorkflowEnvironment,
    record_history: RecordHistory,
) -> None:
    asked: list[TrackParcelInput] = []

    @activity.defn(name=ActivityName.TRACK_PARCEL)
    async def carrier_says_delivered(input: TrackParcelInput) -> TrackParcelResult:
        asked.append(input)
        return TrackParcelResult(stage=ShipmentStage.DELIVERED, occurred_at=datetime(2026, 1, 2, tzinfo=UTC))

    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker(replace=[carrier_says_delivered]) as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        await ship(handle, shipment.shipment_id, "TRK-DELIVERED")
        await temporal_env.sleep(STALL)
        final = await handle.result()

    assert final.stage is OrderStage.COMPLETED
    assert final.shipments[0].stage is ShipmentStage.DELIVERED
    assert not final.shipments[0].escalated
    assert final.exception_code is None
    assert [(a.shipment_id, a.tracking_number) for a in asked] == [(shipment.shipment_id, "TRK-DELIVERED")]
    assert await follow_ups(simulator, order.order_id) == []
    polled = [e for e in final.timeline if e.actor == "carrier-poll"]
    assert [e.event for e in polled] == ["shipment delivered"]
    assert not [e for e in final.timeline if e.event.startswith("escalated")]
    await record_history(handle, "carrier_poll_delivered")


async def test_poll_with_nothing_new_traces_and_escalates_as_before(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, temporal_env: WorkflowEnvironment
) -> None:
    net = await two_dcs(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        shipment = (await wait_for_stage(handle, OrderStage.RELEASED)).shipments[0]
        # A tracking number the simulated carrier never issued: it answers 404, the poll has nothing new.
        await ship(handle, shipment.shipment_id, "TRK-UNKNOWN")
        await temporal_env.sleep(STALL)
        view = await until(handle, lambda v: v.exception_code == ExceptionCode.TRACKING_STALLED)
        assert view.shipments[0].escalated
        assert view.shipments[0].stage is ShipmentStage.SHIPPED
        assert await follow_ups(simulator, order.order_id) == ["trace"]
        # The carrier refused to register a number it never issued; the poll then had nothing new.
        carrier = [e.event for e in view.timeline if e.actor == "carrier"]
        assert carrier[:2] == ["tracking registration refused", "poll: nothing new"]
        await report(handle, shipment.shipment_id, ShipmentStage.DELIVERED)
        assert (await handle.result()).stage is OrderStage.COMPLETED
