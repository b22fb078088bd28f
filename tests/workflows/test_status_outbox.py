"""Each stage change of an order lands in the status outbox, numbered, in order, with the projection following
it (patch ``status-outbox``); a history recorded before the patch publishes nothing (tests/replay)."""

from __future__ import annotations

import json

import pytest
from temporalio.api.enums.v1 import EventType

from domain.lifecycle import OrderStage
from infra.db.uow import UowFactory
from tests.support import build_network, make_order
from tests.workflows.conftest import NewWorker
from tests.workflows.test_order_workflow import ALL_THE_WAY, TWO_DCS, report, start, wait_for_stage
from workflows.contracts import TimelineEntry
from workflows.order import PATCH_STATUS_OUTBOX

pytestmark = pytest.mark.db

MARKER = EventType.EVENT_TYPE_MARKER_RECORDED


def stage_changes(timeline: list[TimelineEntry]) -> list[str]:
    """The stages in the order's timeline (``order <stage>`` entries), as they happened."""
    return [e.event.removeprefix("order ") for e in timeline if e.event.startswith("order ")]


async def test_every_stage_change_is_published_in_order(new_worker: NewWorker, uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, TWO_DCS, {("AUSTIN", "DRILL"): 5})
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        final = await handle.result()
        history = await handle.fetch_history()

    assert final.stage is OrderStage.COMPLETED
    async with uow_factory() as uow:
        events = await uow.outbox.events_for_order(order.order_id)
        status = await uow.outbox.status(order.order_id)
    stages = [e.payload["data"]["stage"] for e in events]
    assert stages == stage_changes(final.timeline)
    assert stages[0] == "received"
    assert stages[-1] == "completed"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert [e.event_id for e in events] == [f"{order.order_id}:status:{n}" for n in range(1, len(events) + 1)]
    assert [e.type for e in events] == [f"order.{s}" for s in stages]
    # Each event names the stage it left, so a subscriber can tell a gap from a skipped stage.
    assert [e.payload["data"]["previous_stage"] for e in events[1:]] == stages[:-1]
    assert {e.payload["data"]["customer_id"] for e in events} == {order.customer_id}
    assert status == (len(events), "completed")

    markers = [e.marker_recorded_event_attributes for e in history.events if e.event_type == MARKER]
    patches = [
        json.loads(m.details["patch-data"].payloads[0].data)["id"] for m in markers if m.marker_name == "core_patch"
    ]
    assert PATCH_STATUS_OUTBOX in patches
    # Publishing is batched: one local activity per turn of the loop, not one per change.
    publishes = [
        m
        for m in markers
        if m.marker_name == "core_local_activity"
        and json.loads(m.details["data"].payloads[0].data)["activity_type"] == "publish_status"
    ]
    assert 0 < len(publishes) < len(events) + 1


async def test_a_rejected_order_publishes_its_rejection_with_the_reason(
    new_worker: NewWorker, uow_factory: UowFactory
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
    async with uow_factory() as uow:
        events = await uow.outbox.events_for_order(order.order_id)
    assert [(e.seq, e.payload["data"]["stage"]) for e in events] == [(1, "received"), (2, "rejected")]
    assert events[1].payload["data"]["exception_code"] == "OrderInvalid"
    assert "NO-SUCH-SKU" in events[1].payload["data"]["detail"]
