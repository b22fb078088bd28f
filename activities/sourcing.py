"""Planning: read the network picture for the order's SKUs, then let the pure engine decide."""

from __future__ import annotations

from temporalio import activity

from activities import business_failures
from domain import sourcing
from infra.db.uow import UowFactory
from workflows.contracts import ActivityName, PlanOrderInput


class SourcingActivities:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow

    @activity.defn(name=ActivityName.PLAN_ORDER)
    async def plan_order(self, input: PlanOrderInput) -> sourcing.Plan:
        async with self._uow() as uow:
            # Judged for this customer's tier: stock protected for higher tiers is not planned with.
            snapshot = await uow.inventory.snapshot_for(
                (line.sku for line in input.order.lines), customer_id=input.order.customer_id
            )
        async with business_failures():
            return sourcing.plan(
                input.order,
                snapshot,
                destination=input.destination,
                attempt=input.attempt,
                excluded_nodes=input.excluded_nodes,
            )
