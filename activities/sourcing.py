"""Planning: read the network picture for the order, let the pure engine decide under the active policy, record
the decision (with the version of the policy that made it, and what it was asked, for the rules simulator).

An order placed with a checkout quote is planned under the customer's chosen method (``PlanVariant``), and its
first plan looks for the quoted plan first, at the quoted nodes: kept when it is still what those nodes can
supply, otherwise planned afresh under the same method, with the reason on ``explanation.quote``.

A plan is decided once per order and attempt. Any later call for the same attempt (a retry, a worker
crash, a reset from the Temporal UI) gets the recorded plan back: deciding again on today's stock could
choose another node, and the order would be released to two warehouses.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime

from temporalio import activity

from activities import business_failures
from domain import sourcing
from domain.errors import OutOfStock
from domain.network import NetworkSnapshot
from domain.options import plan_fingerprint, plan_variant
from domain.policy import PolicyDocument
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
            # Work at the node starts once the order is released: no earlier than the end of its change window.
            now = max(datetime.now(UTC), input.not_before or datetime.min.replace(tzinfo=UTC))
            snapshot = await uow.inventory.snapshot_for_order(order, now=now, pickup_node_id=order.pickup_node_id)
            policy = await uow.policies.active()
            excluded = set(input.excluded_nodes)
            if input.only_nodes is not None:
                # A CSR's reroute: every other node is out of the running, and the explanation says so.
                excluded |= {n.node_id for n in snapshot.nodes} - set(input.only_nodes)
            async with business_failures():
                decided = _Decision(input, snapshot, policy.document, policy.version_label, now).decide(excluded)
            # Two runs racing on the same attempt both leave with the first plan recorded.
            recorded = await uow.plans.record(order.order_id, decided, request=input.model_dump(mode="json"))
            await uow.commit()
        return recorded


class _Decision:
    """One plan for ``input``: under the customer's chosen method when there is one, keeping the quote if it can."""

    def __init__(
        self, input: PlanOrderInput, snapshot: NetworkSnapshot, policy: PolicyDocument, version: str, now: datetime
    ) -> None:
        self.input = input
        self.snapshot = snapshot
        self.policy = policy
        self.version = version
        self.now = now

    def run(self, excluded: Collection[str]) -> sourcing.Plan:
        order, input = self.input.order, self.input
        if input.variant is not None:
            return plan_variant(
                order,
                self.snapshot,
                self.policy,
                self.now,
                input.variant,
                destination=input.destination,
                attempt=input.attempt,
                excluded_nodes=sorted(excluded),
                policy_version=self.version,
            )
        return sourcing.plan(
            order,
            self.snapshot,
            self.policy,
            self.now,
            destination=input.destination,
            attempt=input.attempt,
            excluded_nodes=sorted(excluded),
            policy_version=self.version,
            pickup_node_id=order.pickup_node_id,
        )

    def decide(self, excluded: set[str]) -> sourcing.Plan:
        quote = self.input.quote
        if quote is None:
            return self.run(excluded)
        # The quoted plan, looked for where it was: only its own nodes are in the running.
        elsewhere = {n.node_id for n in self.snapshot.nodes} - set(quote.node_ids)
        try:
            kept = self.run(excluded | elsewhere)
        except OutOfStock as err:
            why = f"its nodes ({', '.join(quote.node_ids)}) can no longer supply it: {err.message}"
        else:
            if plan_fingerprint(kept) == quote.plan_fingerprint:
                return _noted(kept, f"kept the quoted option {quote.option_id}")
            why = f"stock or capacity at {', '.join(quote.node_ids)} changed since the quote"
        planned = self.run(excluded)
        return _noted(planned, f"the quoted option {quote.option_id} could not be kept: {why}; planned again")


def _noted(p: sourcing.Plan, quote_note: str) -> sourcing.Plan:
    return p.model_copy(update={"explanation": p.explanation.model_copy(update={"quote": quote_note})})
