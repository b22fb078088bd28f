"""The demo network seed: what it inserts, that a second run changes nothing, and the generator behind it."""

from __future__ import annotations

import re
from datetime import date, time
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from domain.network import (
    AllocationTierSpec,
    CarrierServiceSpec,
    CustomerSpec,
    NodeSpec,
    SkuSpec,
    StockProtectionSpec,
    TransferLaneSpec,
    Weekday,
    haversine_km,
)
from domain.orders import GeoPoint
from infra.db.atp import atp_expression, customer_rank
from infra.db.tables import InventoryJournal, Stock
from infra.seed import (
    DEMO_BITS,
    DEMO_BRANCH,
    DEMO_CARRIER_SERVICES,
    DEMO_CUSTOMER,
    DEMO_CUSTOMERS,
    DEMO_DRILL,
    DEMO_HOLIDAY_YEAR,
    DEMO_LADDER,
    DEMO_NODE_COUNT,
    DEMO_PROTECTIONS,
    DEMO_SKU_COUNT,
    DEMO_TIERS,
    SEED_ACTOR,
    LaneRow,
    Network,
    NodeRow,
    SeedSummary,
    generate_network,
    seed_demo_network,
    us_federal_holidays,
)

pytestmark = pytest.mark.db

# The lower 48 states, which is all the seed places nodes in.
LAT_RANGE = (24.0, 50.0)
LON_RANGE = (-125.0, -66.0)


def demo_network() -> Network:
    return generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=7)


def demo_node_ids() -> list[str]:
    return [n["node_id"] for n in demo_network().nodes]


@pytest_asyncio.fixture(scope="module")
async def first_seed(uow_factory) -> SeedSummary:
    """The first call, made once for the module: tests below run in any order after it."""
    return await seed_demo_network(uow_factory, seed=7)


async def test_first_call_inserts_the_whole_demo_network(first_seed):
    network = demo_network()
    assert first_seed == SeedSummary(
        nodes=len(network.nodes),
        skus=len(network.skus),
        stock_rows=sum(1 for _ in network.stock),
        holidays=len(network.holidays),
        tiers=len(DEMO_TIERS),
        customers=len(DEMO_CUSTOMERS),
        protections=len(DEMO_PROTECTIONS),
        lanes=len(network.lanes),
        carrier_services=len(DEMO_CARRIER_SERVICES),
    )
    assert first_seed.nodes == 45
    assert first_seed.skus == 2_000
    assert 20_000 < first_seed.stock_rows < 40_000
    assert first_seed.holidays == 4 * 12  # 3 DCs and the 3PL, 12 observed days in 2027
    assert first_seed.lanes == 40 + 3 * 2  # every store from one DC, and each DC to each other
    assert "45 nodes" in str(first_seed)
    assert str(first_seed).endswith(" and 3 carrier services")


async def test_demo_skus_are_stocked_where_the_walkthrough_needs_them(first_seed, uow_factory):
    dcs = {n["node_id"] for n in demo_network().nodes if n["kind"] == "dc"}
    async with uow_factory() as u:
        rows = (
            await u.session.execute(
                select(Stock.sku, Stock.node_id, Stock.on_hand).where(
                    Stock.sku.in_([DEMO_DRILL, DEMO_BITS, DEMO_LADDER]), Stock.node_id.in_(demo_node_ids())
                )
            )
        ).all()
    on_hand = {(sku, node): units for sku, node, units in rows}
    at = {sku: {node for s, node in on_hand if s == sku} for sku in (DEMO_DRILL, DEMO_BITS, DEMO_LADDER)}

    assert len(dcs) == 3
    assert at[DEMO_DRILL] == dcs | {DEMO_BRANCH}
    assert all(on_hand[(DEMO_DRILL, node)] >= 20 for node in at[DEMO_DRILL])
    assert dcs < at[DEMO_BITS]
    assert DEMO_BRANCH in at[DEMO_BITS]
    assert at[DEMO_LADDER] == dcs


async def test_second_call_inserts_nothing_and_keeps_changed_stock(first_seed, uow_factory):
    # A generated SKU's row, so the demo SKUs' levels stay as the test above expects them.
    seeded = next(row for row in demo_network().stock if row["sku"].startswith("SKU-"))
    node, sku = seeded["node_id"], seeded["sku"]
    async with uow_factory() as u:
        await u.session.execute(
            update(Stock).where(Stock.node_id == node, Stock.sku == sku).values(on_hand=seeded["on_hand"] + 7)
        )
        await u.commit()

    async with uow_factory() as u:
        customer = await u.network.get_customer(DEMO_CUSTOMER)
        assert customer is not None
        await u.network.upsert_customer(customer.model_copy(update={"name": "Renamed by an operator"}))
        await u.commit()

    again = await seed_demo_network(uow_factory, seed=7)
    assert again == SeedSummary(nodes=0, skus=0, stock_rows=0)
    assert "nothing inserted" in str(again)
    async with uow_factory() as u:
        kept = await u.network.get_customer(DEMO_CUSTOMER)
    assert kept is not None
    assert kept.name == "Renamed by an operator"

    async with uow_factory() as u:
        on_hand = await u.session.scalar(select(Stock.on_hand).where(Stock.node_id == node, Stock.sku == sku))
        journalled = await u.session.scalars(
            select(InventoryJournal.on_hand_after).where(
                InventoryJournal.node_id == node, InventoryJournal.sku == sku, InventoryJournal.actor == SEED_ACTOR
            )
        )
        journal = list(journalled)
    assert on_hand == seeded["on_hand"] + 7
    assert journal == [seeded["on_hand"]]  # the seed's own entry, written once


def test_generator_is_deterministic_per_seed():
    def sample(seed: int):
        network = generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=seed)
        return network.nodes, network.skus, list(islice(network.stock, 5_000))

    assert sample(7) == sample(7)
    nodes7, skus7, stock7 = sample(7)
    nodes8, skus8, stock8 = sample(8)
    assert nodes7 == nodes8  # geography and ids are fixed by the data, so the README's ids hold for every seed
    assert skus7 != skus8
    assert stock7 != stock8
    first, second = demo_network(), demo_network()
    assert (first.holidays, first.lanes) == (second.holidays, second.lanes)
    other_year = generate_network(DEMO_NODE_COUNT, 10, seed=7, holiday_year=DEMO_HOLIDAY_YEAR + 1)
    assert other_year.lanes == first.lanes
    assert {h["day"].year for h in other_year.holidays} == {DEMO_HOLIDAY_YEAR + 1}


def test_large_network_is_described_lazily():
    network = generate_network(1_000, 100_000, seed=1)
    assert len(network.nodes) == 1_000
    assert len({n["node_id"] for n in network.nodes}) == 1_000
    assert len(network.skus) == 100_000
    assert not isinstance(network.stock, list)
    first = next(network.stock)
    assert first["node_id"] == network.nodes[0]["node_id"]


@pytest.mark.parametrize("node_count", [DEMO_NODE_COUNT, 1_000])
def test_nodes_have_real_timezones_readable_ids_and_us_coordinates(node_count):
    for node in generate_network(node_count, 10, seed=7).nodes:
        ZoneInfo(node["timezone"])
        assert re.fullmatch(r"[A-Z0-9-]+", node["node_id"]), node["node_id"]
        assert node["country"] == "US"
        assert LAT_RANGE[0] <= node["lat"] <= LAT_RANGE[1], node
        assert LON_RANGE[0] <= node["lon"] <= LON_RANGE[1], node


def test_demo_network_has_the_promised_shape():
    by_kind: dict[str, list[NodeRow]] = {}
    for node in demo_network().nodes:
        by_kind.setdefault(node["kind"], []).append(node)
    assert {kind: len(nodes) for kind, nodes in by_kind.items()} == {"dc": 3, "store": 40, "3pl": 1, "dropship": 1}
    assert len({n["region"] for n in by_kind["dc"]}) == 3
    assert {n["priority"] for n in by_kind["dc"]} == {10}
    assert {n["priority"] for n in by_kind["store"]} == {100}
    assert by_kind["3pl"][0]["priority"] == 50
    assert by_kind["dropship"][0]["priority"] == 200
    assert DEMO_BRANCH in {n["node_id"] for n in by_kind["store"]}


def test_every_seeded_row_passes_the_admin_model():
    """The demo is written with bulk inserts, not through the admin API: these are the API's own rules."""
    network = demo_network()
    for node in network.nodes:
        NodeSpec.model_validate(
            {
                **{k: v for k, v in node.items() if k not in ("status", "lat", "lon", "city", "region", "country")},
                "location": {"lat": node["lat"], "lon": node["lon"]},
                "address": {"city": node["city"], "region": node["region"], "country": node["country"]},
            }
        )
    for sku in network.skus:
        SkuSpec.model_validate(sku)
    for lane in network.lanes:
        TransferLaneSpec.model_validate(lane)
    for spec, rows in (
        (AllocationTierSpec, DEMO_TIERS),
        (CustomerSpec, DEMO_CUSTOMERS),
        (StockProtectionSpec, DEMO_PROTECTIONS),
        (CarrierServiceSpec, DEMO_CARRIER_SERVICES),
    ):
        for row in rows:
            spec.model_validate(row)
    node_ids = {n["node_id"] for n in network.nodes}
    for customer in DEMO_CUSTOMERS:
        named = {
            customer.get("home_node_id"),
            *customer.get("allowed_node_ids", ()),
            *customer.get("excluded_node_ids", ()),
        }
        assert named <= node_ids, customer


def test_nodes_get_hours_cut_offs_and_capacity_by_kind():
    by_id = {n["node_id"]: n for n in demo_network().nodes}
    dc, store, tpl, vendor = (
        by_id["DC-TX-HOUSTON"],
        by_id[DEMO_BRANCH],
        by_id["3PL-CA-LONG-BEACH"],
        by_id["DS-CO-COLORADO-SPRINGS"],
    )
    mon_sat = ["mon", "tue", "wed", "thu", "fri", "sat"]
    assert dc["operating_hours"] == {day: ["06:00", "22:00"] for day in mon_sat}
    assert store["operating_hours"] == {**{day: ["08:00", "19:00"] for day in mon_sat}, "sun": ["10:00", "16:00"]}
    assert tpl["operating_hours"] == {day: ["07:00", "20:00"] for day in mon_sat[:5]}
    assert (dc["cutoff_local"], store["cutoff_local"], tpl["cutoff_local"]) == (time(15), time(17), time(14))
    assert "transfer_destination" in dc["capabilities"]  # DCs rebalance between each other
    assert (store["capacity_orders_per_day"], dc["capacity_orders_per_day"]) == (150, 5_000)
    assert vendor["capacity_orders_per_day"] is None  # a vendor does not tell us


@pytest.mark.parametrize(
    ("year", "moved"),
    [
        # 2027: Juneteenth and Christmas fall on a Saturday, Independence Day on a Sunday, and New Year's Day 2028
        # on a Saturday, so it is observed on 31 December 2027.
        (2027, {date(2027, 6, 18), date(2027, 7, 5), date(2027, 12, 24), date(2027, 12, 31)}),
        # 2026: Independence Day on a Saturday.
        (2026, {date(2026, 7, 3)}),
        # 2028: New Year's Day was observed in 2027, so 2028 has only 10 observed days.
        (2028, set()),
    ],
)
def test_federal_holidays_are_observed_on_weekdays(year, moved):
    calendar = us_federal_holidays(year)
    days = [day for day, _ in calendar]
    assert days == sorted(days)
    assert all(day.year == year and day.weekday() < 5 for day in days)
    assert len(days) == (10 if year == 2028 else 11 + (year == 2027))
    assert moved <= set(days)
    thanksgiving = next(day for day, name in calendar if name == "Thanksgiving Day")
    assert thanksgiving.weekday() == 3  # a Thursday
    assert 22 <= thanksgiving.day <= 28  # the fourth one


def test_federal_holiday_dates_for_2027():
    assert [day for day, _ in us_federal_holidays(2027)][:4] == [
        date(2027, 1, 1),
        date(2027, 1, 18),  # third Monday of January
        date(2027, 2, 15),  # third Monday of February
        date(2027, 5, 31),  # last Monday of May
    ]
    with pytest.raises(ValueError, match="2020"):
        us_federal_holidays(2020)


def test_each_store_is_replenished_by_its_nearest_dc():
    network = demo_network()
    point = {n["node_id"]: GeoPoint(lat=n["lat"], lon=n["lon"]) for n in network.nodes}
    dcs = [n["node_id"] for n in network.nodes if n["kind"] == "dc"]
    stores = [n["node_id"] for n in network.nodes if n["kind"] == "store"]
    into: dict[str, list[LaneRow]] = {}
    for lane in network.lanes:
        into.setdefault(lane["destination_node_id"], []).append(lane)
    for store in stores:
        (lane,) = into[store]
        assert lane["origin_node_id"] == min(dcs, key=lambda dc: haversine_km(point[dc], point[store]))
    assert {
        (lane["origin_node_id"], lane["destination_node_id"])
        for lane in network.lanes
        if lane["destination_node_id"] in dcs
    } == {(a, b) for a in dcs for b in dcs if a != b}
    by_distance = sorted(
        network.lanes, key=lambda lane: haversine_km(point[lane["origin_node_id"]], point[lane["destination_node_id"]])
    )
    assert [lane["transit_hours"] for lane in by_distance] == sorted(lane["transit_hours"] for lane in by_distance)
    assert [lane["cost_minor"] for lane in by_distance] == sorted(lane["cost_minor"] for lane in by_distance)
    austin = into[DEMO_BRANCH][0]
    assert austin["origin_node_id"] == "DC-TX-HOUSTON"
    assert 8 < austin["transit_hours"] < 24  # ~236 km great circle, ~283 km by road, at 60 km/h plus handling


def test_a_few_skus_need_special_handling():
    skus = demo_network().skus
    for count, share in ((sum(s["hazmat"] for s in skus), 0.015), (sum(s["oversize"] for s in skus), 0.02)):
        assert 0.5 * share * len(skus) < count < 2 * share * len(skus), (count, share)
    assert all(s["ship_alone"] for s in skus if s["oversize"])
    assert all(s["length_mm"] >= s["width_mm"] >= s["height_mm"] > 0 for s in skus if not s["oversize"])
    assert all(s["length_mm"] >= 1_300 for s in skus if s["oversize"])


async def test_the_seeded_network_reads_back_through_the_admin_model(first_seed, uow_factory):
    async with uow_factory() as u:
        austin = await u.network.get_node(DEMO_BRANCH)
        customer = await u.network.get_customer(DEMO_CUSTOMER)
        protection = await u.network.get_protection(DEMO_BRANCH, DEMO_DRILL, "vip")
        lanes = await u.network.list_lanes(destination_node_id=DEMO_BRANCH)
        holidays = await u.network.holidays("DC-TX-HOUSTON")
        ground = await u.network.get_carrier_service("PARCEL-GROUND")
        tiers = [(t.tier, t.rank) for t in await u.network.list_tiers() if t.rank <= 3]
    assert austin is not None
    assert austin.spec.operating_hours.on(Weekday.SUN) == ("10:00", "16:00")
    assert austin.spec.cutoff_local == time(17, 0)
    assert customer is not None
    assert (customer.tier, customer.home_node_id) == ("standard", DEMO_BRANCH)
    assert protection is not None
    assert protection.quantity == 5
    assert [(lane.origin_node_id, lane.destination_node_id) for lane in lanes] == [("DC-TX-HOUSTON", DEMO_BRANCH)]
    assert [(h.day, h.name) for h in holidays] == us_federal_holidays(DEMO_HOLIDAY_YEAR)
    assert ground is not None
    assert list(ground.transit_days_by_zone.values()) == [1, 2, 2, 3, 3, 4, 5, 5]
    assert tiers == [("vip", 1), ("gold", 2), ("standard", 3)]


async def test_the_readme_order_still_fits_for_c42_beside_the_vip_protection(first_seed, uow_factory):
    async def atp(customer_id: str) -> int:
        async with uow_factory() as u:
            value = await u.session.scalar(
                select(atp_expression(customer_rank(customer_id))).where(
                    Stock.node_id == DEMO_BRANCH, Stock.sku == DEMO_DRILL
                )
            )
        return int(value or 0)

    assert await atp(DEMO_CUSTOMER) == 25 - 5  # the README orders 2
    assert await atp("C-1001") == 25  # the VIP sees the protected units too
