"""NetworkRepository on real PostgreSQL: upserts create then replace, reads give back what was written, unknown
references are reported by field with nothing written, lists filter and page. Ids are unique per test."""

from __future__ import annotations

import random
import uuid
from datetime import date, time
from typing import Any

import pytest
from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert

from domain.network import (
    AllocationTierSpec,
    Capability,
    CarrierServiceSpec,
    CustomerSpec,
    Holiday,
    NodeKind,
    NodeSpec,
    NodeStatus,
    SkuSpec,
    StockProtectionSpec,
    TransferLaneSpec,
)
from domain.orders import ServiceLevel
from infra.db.network import RankTaken, UnknownReferences
from infra.db.tables import CarrierService, NodeCapacityUsage, Stock

pytestmark = pytest.mark.db


def prefix() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def rank() -> int:
    """A rank no other test (nor the demo seed's 1 to 3) will take."""
    return random.randint(2_000_000, 2_000_000_000)


def node(node_id: str, kind: str = "dc", **changes: Any) -> NodeSpec:
    return NodeSpec.model_validate(
        {
            "node_id": node_id,
            "name": f"{node_id} node",
            "kind": kind,
            "location": {"lat": 30.27, "lon": -97.74},
            "address": {"city": "Austin", "region": "TX", "country": "US"},
            "timezone": "America/Chicago",
            "capabilities": ["ship", "transfer_origin"] if kind == "dc" else ["ship", "pickup", "ship_from_store"],
            "operating_hours": {"mon": ["06:00", "22:00"], "sat": ["08:00", "12:00"]},
            "cutoff_local": "15:00",
            "pick_pack_minutes": 90,
            "capacity_orders_per_day": 100,
            "capacity_units_per_day": None,
            **changes,
        }
    )


async def test_node_upsert_creates_then_replaces_and_keeps_the_status(uow_factory):
    p = prefix()
    first = node(f"{p}-DC")
    async with uow_factory() as u:
        created = await u.network.upsert_node(first)
        await u.commit()
    assert created.created
    assert created.value.status == NodeStatus.ACTIVE

    async with uow_factory() as u:
        assert await u.network.get_node(first.node_id) == created.value
        assert await u.network.set_node_status(first.node_id, NodeStatus.PAUSED) == NodeStatus.ACTIVE
        await u.commit()

    second = node(f"{p}-DC", kind="store", name="Renamed", cutoff_local=None, capacity_units_per_day=50)
    async with uow_factory() as u:
        replaced = await u.network.upsert_node(second)
        await u.commit()
    assert not replaced.created
    assert replaced.value.status == NodeStatus.PAUSED  # replacing a description never wakes a paused node
    async with uow_factory() as u:
        stored = await u.network.get_node(first.node_id)
    assert stored is not None
    assert stored.spec == second
    assert stored.status == NodeStatus.PAUSED


async def test_status_changes_report_the_previous_status_and_unknown_nodes(uow_factory):
    spec = node(f"{prefix()}-DC")
    async with uow_factory() as u:
        await u.network.upsert_node(spec)
        assert await u.network.set_node_status(spec.node_id, NodeStatus.PAUSED) == NodeStatus.ACTIVE
        assert await u.network.set_node_status(spec.node_id, NodeStatus.PAUSED) == NodeStatus.PAUSED
        assert await u.network.set_node_status(spec.node_id, NodeStatus.ACTIVE) == NodeStatus.PAUSED
        assert await u.network.set_node_status(f"{prefix()}-NONE", NodeStatus.PAUSED) is None
        await u.commit()
    async with uow_factory() as u:
        stored = await u.network.get_node(spec.node_id)
        assert stored is not None
        assert stored.status == NodeStatus.ACTIVE
        assert await u.network.get_node(f"{prefix()}-NONE") is None


async def test_nodes_list_by_kind_status_and_capability_in_pages(uow_factory):
    p = prefix()
    specs = [node(f"{p}-DC-{i}") for i in range(3)] + [node(f"{p}-BR-{i}", kind="store") for i in range(2)]
    async with uow_factory() as u:
        for spec in specs:
            await u.network.upsert_node(spec)
        await u.network.set_node_status(f"{p}-DC-1", NodeStatus.PAUSED)
        await u.commit()

    async def ids(**filters: Any) -> list[str]:
        async with uow_factory() as u:
            records = await u.network.list_nodes(after=f"{p}-", limit=1_000, **filters)
        return [r.spec.node_id for r in records if r.spec.node_id.startswith(f"{p}-")]

    assert await ids() == sorted(s.node_id for s in specs)
    assert await ids(kind=NodeKind.STORE) == [f"{p}-BR-0", f"{p}-BR-1"]
    assert await ids(status=NodeStatus.PAUSED) == [f"{p}-DC-1"]
    assert await ids(kind=NodeKind.DC, status=NodeStatus.ACTIVE) == [f"{p}-DC-0", f"{p}-DC-2"]
    assert await ids(capability=Capability.SHIP_FROM_STORE) == [f"{p}-BR-0", f"{p}-BR-1"]
    async with uow_factory() as u:
        page = await u.network.list_nodes(after=f"{p}-BR-0", limit=2)
    assert [r.spec.node_id for r in page] == [f"{p}-BR-1", f"{p}-DC-0"]


async def test_holidays_upsert_delete_and_read_from_a_day(uow_factory):
    spec = node(f"{prefix()}-DC")
    christmas, new_year = date(2027, 12, 24), date(2027, 12, 31)
    async with uow_factory() as u:
        await u.network.upsert_node(spec)
        assert (await u.network.upsert_holiday(spec.node_id, Holiday(day=christmas, name="Xmas"))).created
        assert (await u.network.upsert_holiday(spec.node_id, Holiday(day=new_year, name="New Year"))).created
        replaced = await u.network.upsert_holiday(spec.node_id, Holiday(day=christmas, name="Christmas Day"))
        assert not replaced.created
        with pytest.raises(UnknownReferences) as unknown:
            await u.network.upsert_holiday(f"{spec.node_id}-NONE", Holiday(day=christmas, name="x"))
        await u.commit()
    assert unknown.value.missing == {"node_id": [f"{spec.node_id}-NONE"]}

    async with uow_factory() as u:
        assert await u.network.holidays(spec.node_id) == [
            Holiday(day=christmas, name="Christmas Day"),
            Holiday(day=new_year, name="New Year"),
        ]
        assert await u.network.holidays(spec.node_id, since=date(2027, 12, 25)) == [
            Holiday(day=new_year, name="New Year")
        ]
        assert await u.network.delete_holiday(spec.node_id, christmas)
        assert not await u.network.delete_holiday(spec.node_id, christmas)
        await u.commit()
    async with uow_factory() as u:
        assert [h.day for h in await u.network.holidays(spec.node_id)] == [new_year]


async def test_capacity_usage_of_a_day_against_the_limits(uow_factory):
    spec = node(f"{prefix()}-DC", capacity_orders_per_day=100, capacity_units_per_day=None)
    day = date(2027, 3, 1)
    async with uow_factory() as u:
        await u.network.upsert_node(spec)
        await u.session.execute(insert(NodeCapacityUsage).values(node_id=spec.node_id, day=day, orders=40, units=95))
        await u.commit()
    async with uow_factory() as u:
        used = await u.network.capacity_usage(spec, day)
        idle = await u.network.capacity_usage(spec, date(2027, 3, 2))
    assert (used.orders, used.units, used.orders_left, used.units_left) == (40, 95, 60, None)
    assert (idle.orders, idle.units, idle.orders_left) == (0, 0, 100)


async def test_skus_round_trip_and_list_by_handling_flag(uow_factory):
    p = prefix()
    plain = SkuSpec(sku=f"{p}-PLAIN", name="Plain", weight_g=500, length_mm=300, width_mm=200, height_mm=100)
    hazmat = SkuSpec(sku=f"{p}-HAZ/1", name="Solvent", weight_g=1_000, hazmat=True)
    async with uow_factory() as u:
        assert (await u.network.upsert_sku(plain)).created
        assert (await u.network.upsert_sku(hazmat)).created
        assert not (await u.network.upsert_sku(hazmat.model_copy(update={"ship_alone": True}))).created
        await u.commit()
    async with uow_factory() as u:
        assert await u.network.get_sku(plain.sku) == plain
        assert await u.network.get_sku(hazmat.sku) == hazmat.model_copy(update={"ship_alone": True})
        assert await u.network.get_sku(f"{p}-NONE") is None
        flagged = await u.network.list_skus(hazmat=True, after=f"{p}-", limit=1_000)
        unflagged = await u.network.list_skus(hazmat=False, after=f"{p}-", limit=1_000)
    assert [s.sku for s in flagged if s.sku.startswith(p)] == [hazmat.sku]
    assert [s.sku for s in unflagged if s.sku.startswith(p)] == [plain.sku]


async def test_tier_ranks_are_unique(uow_factory):
    p = prefix().lower()
    gold = AllocationTierSpec(tier=f"{p}-gold", rank=rank(), description="trade")
    async with uow_factory() as u:
        assert (await u.network.upsert_tier(gold)).created
        assert not (await u.network.upsert_tier(gold.model_copy(update={"description": "trade accounts"}))).created
        await u.commit()
    clash = AllocationTierSpec(tier=f"{p}-silver", rank=gold.rank)
    async with uow_factory() as u:
        with pytest.raises(RankTaken) as taken:
            await u.network.upsert_tier(clash)
    assert (taken.value.rank, taken.value.holder) == (gold.rank, gold.tier)
    async with uow_factory() as u:
        assert await u.network.get_tier(clash.tier) is None
        assert await u.network.get_tier(gold.tier) == gold.model_copy(update={"description": "trade accounts"})
        ranks = [t.rank for t in await u.network.list_tiers()]
    assert ranks == sorted(ranks)
    assert gold.rank in ranks


async def test_customer_references_are_checked_all_at_once_and_nothing_is_written(uow_factory):
    p = prefix()
    home, dc = node(f"{p}-BR", kind="store"), node(f"{p}-DC")
    tier = AllocationTierSpec(tier=f"{p}-vip", rank=rank())
    async with uow_factory() as u:
        await u.network.upsert_node(home)
        await u.network.upsert_node(dc)
        await u.network.upsert_tier(tier)
        await u.commit()

    bad = CustomerSpec(
        customer_id=f"{p}-C1",
        name="Acme",
        tier=f"{p}-nope",
        home_node_id=f"{p}-GONE",
        allowed_node_ids=[f"{p}-GONE", dc.node_id, f"{p}-X"],
        excluded_node_ids=[f"{p}-Y"],
    )
    async with uow_factory() as u:
        with pytest.raises(UnknownReferences) as unknown:
            await u.network.upsert_customer(bad)
    assert unknown.value.missing == {
        "tier": [f"{p}-nope"],
        "home_node_id": [f"{p}-GONE"],
        "allowed_node_ids": [f"{p}-GONE", f"{p}-X"],
        "excluded_node_ids": [f"{p}-Y"],
    }

    good = CustomerSpec(
        customer_id=f"{p}-C1",
        name="Acme",
        segment="b2b",
        tier=tier.tier,
        home_node_id=home.node_id,
        excluded_node_ids=[dc.node_id],
        credit_limit_minor=5_000_000,
    )
    async with uow_factory() as u:
        assert await u.network.get_customer(good.customer_id) is None  # the refused write left nothing
        assert (await u.network.upsert_customer(good)).created
        assert not (await u.network.upsert_customer(good.model_copy(update={"name": "Acme Inc"}))).created
        await u.commit()
    async with uow_factory() as u:
        assert await u.network.get_customer(good.customer_id) == good.model_copy(update={"name": "Acme Inc"})


async def test_protection_needs_an_existing_stock_row_and_tier(uow_factory):
    p = prefix()
    dc, sku = node(f"{p}-DC"), SkuSpec(sku=f"{p}-S", name="S")
    tier = AllocationTierSpec(tier=f"{p}-vip", rank=rank())
    async with uow_factory() as u:
        await u.network.upsert_node(dc)
        await u.network.upsert_sku(sku)
        await u.network.upsert_tier(tier)
        await u.commit()

    spec = StockProtectionSpec(node_id=dc.node_id, sku=sku.sku, tier=tier.tier, quantity=5)
    async with uow_factory() as u:
        with pytest.raises(UnknownReferences) as no_stock:
            await u.network.upsert_protection(spec)
    assert no_stock.value.missing == {"stock": [f"{sku.sku} at {dc.node_id}"]}

    async with uow_factory() as u:
        await u.session.execute(insert(Stock).values(node_id=dc.node_id, sku=sku.sku, on_hand=25))
        with pytest.raises(UnknownReferences) as no_tier:
            await u.network.upsert_protection(spec.model_copy(update={"tier": f"{p}-nope"}))
        await u.commit()
    assert no_tier.value.missing == {"tier": [f"{p}-nope"]}

    async with uow_factory() as u:
        assert await u.network.get_protection(dc.node_id, sku.sku, tier.tier) is None
        assert (await u.network.upsert_protection(spec)).created
        assert not (await u.network.upsert_protection(spec.model_copy(update={"quantity": 7}))).created
        await u.commit()
    async with uow_factory() as u:
        assert await u.network.get_protection(dc.node_id, sku.sku, tier.tier) == spec.model_copy(update={"quantity": 7})


async def test_lanes_join_existing_nodes_and_page_by_origin_and_destination(uow_factory):
    p = prefix()
    dc, stores = node(f"{p}-DC"), [node(f"{p}-BR-{i}", kind="store") for i in range(3)]
    async with uow_factory() as u:
        for spec in [dc, *stores]:
            await u.network.upsert_node(spec)
        await u.commit()

    def lane(destination: str, **changes: Any) -> TransferLaneSpec:
        return TransferLaneSpec.model_validate(
            {
                "origin_node_id": dc.node_id,
                "destination_node_id": destination,
                "transit_hours": 12,
                "cost_minor": 9_000,
                "departure_days": ["mon", "wed"],
                "departure_local": "20:00",
                **changes,
            }
        )

    async with uow_factory() as u:
        with pytest.raises(UnknownReferences) as unknown:
            await u.network.upsert_lane(lane(f"{p}-NONE"))
        assert unknown.value.missing == {"destination_node_id": [f"{p}-NONE"]}
        for store in stores:
            assert (await u.network.upsert_lane(lane(store.node_id))).created
        replaced = await u.network.upsert_lane(lane(stores[0].node_id, transit_hours=30))
        assert not replaced.created
        await u.commit()

    async with uow_factory() as u:
        assert await u.network.get_lane(dc.node_id, stores[0].node_id) == lane(stores[0].node_id, transit_hours=30)
        assert await u.network.get_lane(stores[0].node_id, dc.node_id) is None
        everything = await u.network.list_lanes(origin_node_id=dc.node_id)
        second_page = await u.network.list_lanes(
            origin_node_id=dc.node_id, after=(dc.node_id, stores[0].node_id), limit=1
        )
        into_one = await u.network.list_lanes(destination_node_id=stores[2].node_id)
    assert [s.destination_node_id for s in everything] == [s.node_id for s in stores]
    assert [s.destination_node_id for s in second_page] == [stores[1].node_id]
    assert into_one == [lane(stores[2].node_id)]


async def test_carrier_services_round_trip_and_list_by_service_level(uow_factory):
    p = prefix()

    def service(service_id: str, level: str, cutoff: time | None) -> CarrierServiceSpec:
        return CarrierServiceSpec.model_validate(
            {
                "service_id": service_id,
                "carrier": "Demo Parcel",
                "service_level": level,
                "transit_days_by_zone": {"2": 2, "1": 1},
                "rate_by_zone": {
                    "1": {"base_minor": 800, "per_kg_minor": 60},
                    "2": {"base_minor": 875, "per_kg_minor": 80},
                },
                "cutoff_local": cutoff,
            }
        )

    ground, overnight = service(f"{p}-GROUND", "standard", time(18, 0)), service(f"{p}-NIGHT", "expedited", None)
    try:
        async with uow_factory() as u:
            assert (await u.network.upsert_carrier_service(ground)).created
            assert (await u.network.upsert_carrier_service(overnight)).created
            assert not (await u.network.upsert_carrier_service(ground)).created
            await u.commit()
        async with uow_factory() as u:
            assert await u.network.get_carrier_service(ground.service_id) == ground
            assert await u.network.get_carrier_service(f"{p}-NONE") is None
            expedited = await u.network.list_carrier_services(
                service_level=ServiceLevel.EXPEDITED, after=p, limit=1_000
            )
        assert [s for s in expedited if s.service_id.startswith(p)] == [overnight]
    finally:
        # Carrier services are network-wide: services that reach only zones 1-2 would change every plan the
        # other tests in this database make (nodes beyond zone 2 would have no carrier).
        async with uow_factory() as u:
            await u.session.execute(delete(CarrierService).where(CarrierService.service_id.startswith(p)))
            await u.commit()
