"""A consolidated shipment (stock transferred into the customer's home branch) executed by the order workflow.

The plan activity is the one thing replaced here: it plans with the real engine on the real snapshot, under a
transfer policy, instead of the database's active policy (activating one would change every other test's plans).
What is checked is the workflow's side: stock is held where it is taken from (the branch and the DC that
transfers into it), one shipment is released, from the branch, and shipping consumes the stock at both nodes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.worker import Worker

from domain import sourcing
from domain.lifecycle import OrderStage
from domain.network import CustomerSegment, CustomerSpec, TransferLaneSpec
from domain.policy import PolicyDocument
from infra.db.uow import UowFactory
from infra.interceptors import LoggingInterceptor
from integrations.partners import Partners
from tests.support import AUSTIN, DALLAS, NodeSpec, build_network, make_order, stock_row
from tests.workflows.conftest import RecordHistory
from tests.workflows.test_order_workflow import (
    ALL_THE_WAY,
    Simulator,
    report,
    reservations,
    start,
    wait_for_stage,
)
from worker import WORKFLOWS, build_activities
from workflows.contracts import ActivityName, PlanOrderInput

pytestmark = pytest.mark.db

TRANSFER_POLICY = PolicyDocument.model_validate(
    {
        "name": "Branch first, transfers in",
        "profiles": [
            {
                "id": "default",
                "strategies": [
                    {
                        "id": "branch",
                        "ranking": [{"step": "home_branch"}, {"step": "fewest_shipments"}],
                        "split": {"mode": "never"},
                        "transfer": {"max_hours": 72},
                    }
                ],
            }
        ],
    }
)


def planning_under(policy: PolicyDocument, uow: UowFactory) -> Any:
    @activity.defn(name=ActivityName.PLAN_ORDER)
    async def plan_order(input: PlanOrderInput) -> sourcing.Plan:
        now = datetime.now(UTC)
        async with uow() as u:
            snapshot = await u.inventory.snapshot_for_order(input.order, now=now)
        return sourcing.plan(input.order, snapshot, policy, now, destination=input.destination, attempt=input.attempt)

    return plan_order


async def test_stock_transferred_into_the_home_branch_is_held_and_consumed_where_it_was_taken(
    temporal_env, uow_factory: UowFactory, simulator: Simulator, record_history: RecordHistory
) -> None:
    net = await build_network(
        uow_factory,
        [
            NodeSpec("BRANCH", AUSTIN, kind="store", capabilities=("ship", "pickup", "transfer_destination")),
            NodeSpec("DC", DALLAS, capabilities=("ship", "transfer_origin")),
        ],
        {("BRANCH", "DRILL"): 1, ("DC", "DRILL"): 10},
    )
    customer = f"T{net.prefix}-CUST"
    async with uow_factory() as u:
        await u.network.upsert_customer(
            CustomerSpec(
                customer_id=customer, name="Builder", segment=CustomerSegment.B2B, home_node_id=net.node("BRANCH")
            )
        )
        await u.network.upsert_lane(
            TransferLaneSpec(
                origin_node_id=net.node("DC"), destination_node_id=net.node("BRANCH"), transit_hours=6, cost_minor=900
            )
        )
        await u.commit()
    order = make_order(net, {"DRILL": 3}).model_copy(update={"customer_id": customer})

    activities = [a for a in build_activities(uow_factory, Partners.over(simulator[1])) if a.__name__ != "plan_order"]
    async with Worker(
        temporal_env.client,
        task_queue=f"test-{uuid.uuid4().hex[:8]}",
        workflows=WORKFLOWS,
        activities=[*activities, planning_under(TRANSFER_POLICY, uow_factory)],
        interceptors=[LoggingInterceptor()],
    ) as worker:
        handle = await start(worker, order)
        released = await wait_for_stage(handle, OrderStage.RELEASED)

        # One shipment, from the branch, with two units moved in from the DC.
        assert released.plan is not None
        (shipment,) = released.plan.shipments
        assert shipment.node_id == net.node("BRANCH")
        assert [(t.origin_node_id, t.quantity) for t in shipment.transfers_in] == [(net.node("DC"), 2)]
        # Held where the units are taken from.
        assert await stock_row(uow_factory, net.node("BRANCH"), net.sku("DRILL")) == (1, 1)
        assert await stock_row(uow_factory, net.node("DC"), net.sku("DRILL")) == (10, 2)

        await report(handle, shipment.shipment_id, *ALL_THE_WAY)
        final = await handle.result()
        await record_history(handle, "transfer_consolidated")

    assert final.stage is OrderStage.COMPLETED
    # Shipping the consolidated parcel consumed the stock at both nodes.
    assert await stock_row(uow_factory, net.node("BRANCH"), net.sku("DRILL")) == (0, 0)
    assert await stock_row(uow_factory, net.node("DC"), net.sku("DRILL")) == (8, 0)
    assert sorted(r.state for r in await reservations(uow_factory, order.order_id)) == ["consumed", "consumed"]
