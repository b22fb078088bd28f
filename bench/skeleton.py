"""The order workflow's shape with nothing inside, for bench/orders.py.

It lives in its own module because the workflow sandbox re-imports a workflow's module, which it cannot do
for a script run as ``__main__``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from domain.lifecycle import ShipmentStage
    from workflows.contracts import ShipmentEventReceived, SignalName

EVENTS = (ShipmentStage.PICKED, ShipmentStage.PACKED, ShipmentStage.SHIPPED, ShipmentStage.DELIVERED)
LOCAL_TIMEOUT = timedelta(seconds=15)


@activity.defn(name="skeleton_step")
async def skeleton_step(_: str) -> str:
    return "ok"


@workflow.defn(name="SkeletonWorkflow")
class SkeletonWorkflow:
    """The order workflow's shape with nothing inside: the engine's own cost for the same steps."""

    def __init__(self) -> None:
        self._events: set[str] = set()

    @workflow.run
    async def run(self, order_id: str) -> str:
        for step in ("validate", "plan", "reserve"):
            await workflow.execute_local_activity(skeleton_step, step, start_to_close_timeout=LOCAL_TIMEOUT)
        await workflow.execute_activity(skeleton_step, "release", start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: len(self._events) >= len(EVENTS))
        await workflow.execute_local_activity(skeleton_step, "consume", start_to_close_timeout=LOCAL_TIMEOUT)
        return order_id

    @workflow.signal(name=SignalName.SHIPMENT_EVENT_RECEIVED)
    def shipment_event_received(self, event: ShipmentEventReceived) -> None:
        self._events.add(event.event_id)
