"""The demo network with its routing policy, on a database of its own (activating a policy is database-wide).

These are the decisions the README and ``docs/rules.md`` describe, made by the real engine on the real seeded
network read back from PostgreSQL, at a fixed moment so lane schedules and opening hours give the same answer
whatever day the suite runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from activities.sourcing import SourcingActivities
from domain import sourcing
from domain.orders import Address, GeoPoint, Order, OrderLine, ServiceLevel
from domain.policy import Method
from infra.db.uow import UowFactory
from infra.seed import DEMO_BRANCH, DEMO_CUSTOMER, DEMO_DRILL, demo_policy, seed_demo_network, seed_demo_policy
from tests.private_db import private_database, unit_of_work_factory
from workflows.contracts import PlanOrderInput

pytestmark = pytest.mark.db

AUSTIN = GeoPoint(lat=30.2672, lon=-97.7431)
# Tuesday 2026-11-24, 10:00 in Austin: the branch is open, the evening truck from Houston runs tonight.
NOW = datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_url(postgres_server_url: str) -> Iterator[str]:
    with private_database(postgres_server_url, "demo") as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def demo(demo_url: str) -> AsyncIterator[UowFactory]:
    async with unit_of_work_factory(demo_url) as uow:
        await seed_demo_network(uow)
        assert await seed_demo_policy(uow) == "v1"
        yield uow


def order(order_id: str, customer_id: str, quantity: int, **changes: object) -> Order:
    return Order.model_validate(
        {
            "order_id": order_id,
            "customer_id": customer_id,
            "ship_to": Address(
                name="Ada", line1="1 Congress Ave", city="Austin", region="TX", postal_code="78701", country="US"
            ),
            "lines": [OrderLine(line_id="1", sku=DEMO_DRILL, quantity=quantity)],
            "placed_at": NOW,
            **changes,
        }
    )


async def decide(uow: UowFactory, placed: Order) -> sourcing.Plan:
    async with uow() as u:
        snapshot = await u.inventory.snapshot_for_order(placed, now=NOW)
        active = await u.policies.active()
    return sourcing.plan(
        placed, snapshot, active.document, NOW, destination=AUSTIN, policy_version=active.version_label
    )


async def test_the_seed_activates_the_demo_policy_once(demo):
    assert await seed_demo_policy(demo) is None  # a policy is stored: the seed leaves it alone
    async with demo() as u:
        active = await u.policies.active()
    assert (active.version_label, active.document) == ("v1", demo_policy())


async def test_readme_order_ships_from_austin_under_the_default_profile(demo):
    plan = await decide(demo, order("DEMO-1", DEMO_CUSTOMER, 2))
    assert plan.node_ids == [DEMO_BRANCH]
    explanation = plan.explanation
    assert (explanation.policy_version, explanation.rule) == ("v1", "default/cheapest")
    assert "profile b2b-home-branch: segment b2c not in the list" in explanation.considered
    shipment = plan.shipments[0]
    assert shipment.carrier_service_id == "PARCEL-GROUND"
    assert shipment.ready_by is not None
    assert shipment.deliver_by is not None
    assert plan.cost_minor == shipment.cost_minor > 0


async def test_vip_contractor_is_served_by_the_home_branch_and_expedited(demo):
    plan = await decide(demo, order("DEMO-2", "C-1001", 3, service_level=ServiceLevel.STANDARD))
    assert plan.node_ids == [DEMO_BRANCH]
    assert plan.explanation.rule == "b2b-home-branch/branch-or-transfer"
    assert plan.service_level is ServiceLevel.EXPEDITED  # the vip-expedite shipping rule
    assert plan.shipments[0].carrier_service_id in {"PARCEL-2DAY", "PARCEL-OVERNIGHT"}


async def test_short_home_branch_is_filled_by_a_transfer_from_houston(demo):
    # Austin holds 25 drills; 30 needs 5 more, and the Houston truck (13 h) arrives well within 48 h.
    plan = await decide(demo, order("DEMO-3", "C-1001", 30))
    assert plan.node_ids == [DEMO_BRANCH]
    (shipment,) = plan.shipments
    assert [(t.origin_node_id, t.sku, t.quantity) for t in shipment.transfers_in] == [("DC-TX-HOUSTON", DEMO_DRILL, 5)]
    assert sorted((a.node_id, a.quantity) for a in shipment.allocations) == [(DEMO_BRANCH, 25), ("DC-TX-HOUSTON", 5)]
    arrival = shipment.transfers_in[0].arrives_at
    assert arrival is not None
    assert shipment.ready_by is not None
    assert shipment.ready_by >= arrival
    assert "transferred from DC-TX-HOUSTON" in plan.explanation.decision
    assert plan.method is Method.DELIVERY


async def test_the_plan_activity_records_the_active_version_and_the_request(demo):
    activities = SourcingActivities(demo)
    placed = order("DEMO-4", DEMO_CUSTOMER, 1, ship_to=Address(
        name="Ada", line1="1 Congress Ave", city="Austin", region="TX", postal_code="78701", country="US",
        location=AUSTIN,
    ))  # fmt: skip
    plan = await activities.plan_order(PlanOrderInput(order=placed, destination=AUSTIN, attempt=1))
    assert plan.explanation.policy_version == "v1"
    async with demo() as u:
        (request,) = [r for r in await u.policies.recent_plan_requests(10) if r.order.order_id == "DEMO-4"]
    assert request.destination == AUSTIN
