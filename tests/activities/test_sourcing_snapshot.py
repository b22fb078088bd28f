"""What one sourcing decision reads, on real PostgreSQL: ``InventoryRepository.snapshot_for_order``.

It must bring everything the engine's filters, costs and promises use, and nothing it should not: the home
branch even when it holds none of the SKUs (a transfer can fill it), holidays and capacity only inside the
promise horizon, only lanes into the receiving node, the customer's view, and the SKUs' weights and flags.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy.dialects.postgresql import insert

from domain.network import (
    CustomerSegment,
    CustomerSpec,
    Holiday,
    NodeSpec,
    SkuSpec,
    TransferLaneSpec,
)
from domain.orders import Address, Order, OrderLine
from infra.db.repositories import PROMISE_HORIZON_DAYS
from infra.db.tables import NodeCapacityUsage, Stock

pytestmark = pytest.mark.db

NOW = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # a Monday, 10:00 in Austin


def node(node_id: str, kind: str, **changes: object) -> NodeSpec:
    capabilities = ["ship", "transfer_origin"] if kind == "dc" else ["ship", "pickup", "transfer_destination"]
    return NodeSpec.model_validate(
        {
            "node_id": node_id,
            "name": node_id,
            "kind": kind,
            "location": {"lat": 30.27, "lon": -97.74},
            "address": {"city": "Austin", "region": "TX", "country": "US"},
            "timezone": "America/Chicago",
            "capabilities": capabilities,
            "operating_hours": {"mon": ["08:00", "18:00"], "tue": ["08:00", "18:00"]},
            "cutoff_local": "15:00",
            "capacity_orders_per_day": 50,
            **changes,
        }
    )


async def test_snapshot_brings_what_the_engine_reads(uow_factory):
    p = f"T{uuid.uuid4().hex[:8].upper()}"
    dc, branch, far = f"{p}-DC", f"{p}-BR", f"{p}-FAR"
    drill, saw = f"{p}-DRILL", f"{p}-SAW"
    customer = f"{p}-CUST"
    async with uow_factory() as u:
        for spec in (node(dc, "dc"), node(branch, "store"), node(far, "dc")):
            await u.network.upsert_node(spec)
        await u.network.upsert_sku(SkuSpec(sku=drill, name="drill", weight_g=1800, hazmat=True))
        await u.network.upsert_sku(SkuSpec(sku=saw, name="saw", weight_g=400))
        await u.session.execute(
            insert(Stock),
            [
                {"node_id": dc, "sku": drill, "on_hand": 40},
                {"node_id": dc, "sku": saw, "on_hand": 10, "safety_stock": 2},
                {"node_id": far, "sku": saw, "on_hand": 5},
            ],
        )
        await u.network.upsert_customer(
            CustomerSpec(
                customer_id=customer,
                name="Builder",
                segment=CustomerSegment.B2B,
                home_node_id=branch,
                excluded_node_ids=[far],
            )
        )
        lane = {"transit_hours": 9, "cost_minor": 1200, "departure_days": ["mon"], "departure_local": time(20, 0)}
        await u.network.upsert_lane(
            TransferLaneSpec.model_validate({"origin_node_id": dc, "destination_node_id": branch, **lane})
        )
        await u.network.upsert_lane(
            TransferLaneSpec.model_validate({"origin_node_id": branch, "destination_node_id": dc, **lane})
        )
        today = date(2026, 11, 23)
        await u.network.upsert_holiday(dc, Holiday(day=today + timedelta(days=3), name="Thanksgiving"))
        await u.network.upsert_holiday(dc, Holiday(day=today + timedelta(days=PROMISE_HORIZON_DAYS + 5), name="far"))
        await u.session.execute(
            insert(NodeCapacityUsage),
            [
                {"node_id": dc, "day": today, "orders": 49, "units": 300},
                {"node_id": dc, "day": today - timedelta(days=10), "orders": 50, "units": 10},
            ],
        )
        await u.commit()

    order = Order(
        order_id=f"{p}-O1",
        customer_id=customer,
        ship_to=Address(name="B", line1="1 Main", city="Austin", region="TX", postal_code="78701", country="US"),
        lines=[OrderLine(line_id="1", sku=drill, quantity=2), OrderLine(line_id="2", sku=saw, quantity=3)],
        placed_at=NOW,
    )
    async with uow_factory() as u:
        snapshot = await u.inventory.snapshot_for_order(order, now=NOW)

    views = {n.node_id: n for n in snapshot.nodes}
    # The home branch has no stock of either SKU, and is there anyway; the excluded node is there too (the
    # engine removes it, and says so in the explanation).
    assert set(views) == {dc, branch, far}
    assert snapshot.atp_of(dc, saw) == 8  # safety stock kept back
    assert snapshot.atp_of(branch, drill) == 0
    assert snapshot.customer is not None
    assert snapshot.customer.home_node_id == branch
    assert snapshot.customer.excluded_node_ids == frozenset({far})
    assert snapshot.customer.segment is CustomerSegment.B2B
    assert snapshot.skus[drill].weight_g == 1800
    assert snapshot.skus[drill].hazmat
    # Only lanes into the receiving node matter to a transfer.
    assert [(lane.origin_node_id, lane.destination_node_id) for lane in snapshot.lanes] == [(dc, branch)]
    dc_view = views[dc]
    assert dc_view.holidays == frozenset({date(2026, 11, 26)})
    assert dc_view.orders_left(date(2026, 11, 23)) == 1
    assert dc_view.used_orders == {date(2026, 11, 23): 49}
    assert dc_view.cutoff_local == time(15, 0)
    assert dc_view.operating_hours is not None
    assert dc_view.operating_hours.as_json()["mon"] == ["08:00", "18:00"]
    assert dc_view.country == "US"
    assert dc_view.timezone == "America/Chicago"


async def test_unknown_customer_plans_as_plain_b2c(uow_factory):
    p = f"T{uuid.uuid4().hex[:8].upper()}"
    async with uow_factory() as u:
        await u.network.upsert_node(node(f"{p}-DC", "dc", operating_hours={}))
        await u.network.upsert_sku(SkuSpec(sku=f"{p}-S", name="s"))
        await u.session.execute(insert(Stock), [{"node_id": f"{p}-DC", "sku": f"{p}-S", "on_hand": 3}])
        await u.commit()
    order = Order(
        order_id=f"{p}-O",
        customer_id=f"{p}-NOBODY",
        ship_to=Address(name="B", line1="1 Main", city="Austin", region="TX", postal_code="78701", country="US"),
        lines=[OrderLine(line_id="1", sku=f"{p}-S", quantity=1)],
        placed_at=NOW,
    )
    async with uow_factory() as u:
        snapshot = await u.inventory.snapshot_for_order(order, now=NOW, pickup_node_id=None)
    assert snapshot.customer is None
    assert [n.node_id for n in snapshot.nodes] == [f"{p}-DC"]
    # No hours declared: no calendar (the engine then makes no promise rather than calling the node closed).
    assert snapshot.nodes[0].operating_hours is None
