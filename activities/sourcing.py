"""Planning: read the network picture for the order, let the pure engine decide under the active policy, record
the decision (with the version of the policy that made it, and what it was asked, for the rules simulator).

A plan is decided once per order and attempt. Any later call for the same attempt (a retry, a worker
crash, a reset from the Temporal UI) gets the recorded plan back: deciding again on today's stock could
choose another node, and the order would be released to two warehouses.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
        order = input.order
        async with self._uow() as uow:
            recorded = await uow.plans.get(sourcing.plan_id(order.order_id, input.attempt))
            if recorded is not None:
                return recorded
            # Judged for this customer's tier: stock protected for higher tiers is not planned with.
            now = datetime.now(UTC)
            snapshot = await uow.inventory.snapshot_for_order(order, now=now)
            policy = await uow.policies.active()
            excluded = set(input.excluded_nodes)
            if input.only_nodes is not None:
                # A CSR's reroute: every other node is out of the running, and the explanation says so.
                excluded |= {n.node_id for n in snapshot.nodes} - set(input.only_nodes)
            async with business_failures():
                decided = sourcing.plan(
                    order,
                    snapshot,
                    policy.document,
                    now,
                    destination=input.destination,
                    attempt=input.attempt,
                    excluded_nodes=sorted(excluded),
                    policy_version=policy.version_label,
                    pickup_node_id=order.pickup_node_id,
                )
            # Two runs racing on the same attempt both leave with the first plan recorded.
            recorded = await uow.plans.record(order.order_id, decided, request=input.model_dump(mode="json"))
            await uow.commit()
        return recorded
