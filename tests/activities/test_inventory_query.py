"""``InventoryQuery.atp`` on real PostgreSQL: filters, distance, tiers, live reservations, the floor at zero."""

from __future__ import annotations

import math
import random

import pytest
import pytest_asyncio
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert

from domain.inventory import UNTIERED_RANK, available_to_promise
from domain.network import EARTH_RADIUS_KM, NodeKind, NodeStatus, haversine_km
from domain.orders import GeoPoint
from domain.sourcing import Allocation
from infra.db.inventory_query import AtpRow, bounding_box
from infra.db.tables import AllocationTier, Customer, Stock, StockProtection
from infra.db.uow import UowFactory
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

ROUND_ROCK = GeoPoint(lat=30.5083, lon=-97.6789)  # ~27 km from Austin
SAN_ANTONIO = GeoPoint(lat=29.4241, lon=-98.4936)  # ~118 km
# Dallas ~293 km, Newark ~2,300 km

NODES = [
    NodeSpec("AUS", AUSTIN, kind="store"),
    NodeSpec("RR", ROUND_ROCK, kind="store", status="paused"),
    NodeSpec("SA", SAN_ANTONIO, kind="3pl"),
    NodeSpec("DAL", DALLAS),
    NodeSpec("NWK", NEWARK),
]
STOCK = {
    ("AUS", "A"): 10,
    ("AUS", "B"): 5,
    ("RR", "A"): 7,
    ("SA", "A"): 3,
    ("SA", "C"): 9,
    ("DAL", "A"): 20,
    ("DAL", "B"): 4,
    ("NWK", "A"): 50,
    ("NWK", "C"): 1,
}
LOCATIONS = {spec.name: spec.location for spec in NODES}


@pytest_asyncio.fixture(scope="module")
async def net(uow_factory: UowFactory) -> SeededNetwork:
    """A read-only network for the filter tests; tests that change stock build their own."""
    return await build_network(uow_factory, NODES, STOCK)


def names(net: SeededNetwork, rows: list[AtpRow]) -> list[tuple[str, str]]:
    """(sku name, node name) per row, in the order returned."""
    sku_names = {v: k for k, v in net.skus.items()}
    node_names = {v: k for k, v in net.node_ids.items()}
    return [(sku_names[r.sku], node_names[r.node_id]) for r in rows]


async def atp(uow: UowFactory, **filters: object) -> list[AtpRow]:
    filters.setdefault("limit", 1_000)
    async with uow() as u:
        return await u.inventory_query.atp(**filters)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("skus", "nodes", "expected"),
    [
        pytest.param(["A"], None, [("A", "AUS"), ("A", "DAL"), ("A", "NWK"), ("A", "RR"), ("A", "SA")], id="one-sku"),
        pytest.param(["C", "B"], None, [("B", "AUS"), ("B", "DAL"), ("C", "NWK"), ("C", "SA")], id="two-skus"),
        pytest.param(None, ["SA"], [("A", "SA"), ("C", "SA")], id="one-node"),
        pytest.param(None, ["DAL", "AUS"], [("A", "AUS"), ("A", "DAL"), ("B", "AUS"), ("B", "DAL")], id="two-nodes"),
        pytest.param(["A", "C"], ["RR", "SA"], [("A", "RR"), ("A", "SA"), ("C", "SA")], id="skus-and-nodes"),
        pytest.param(["B"], ["SA"], [], id="sku-not-at-node"),
        pytest.param([], None, [], id="empty-sku-list"),
    ],
)
async def test_filters_by_sku_and_node_sorted_by_sku_then_node(uow_factory, net, skus, nodes, expected):
    rows = await atp(
        uow_factory,
        skus=None if skus is None else [net.sku(s) for s in skus],
        node_ids=None if nodes is None else [net.node(n) for n in nodes],
    )
    assert names(net, rows) == expected
    assert all(r.distance_km is None for r in rows)


async def test_a_row_carries_the_ledger_figures_and_the_node(uow_factory, net):
    [row] = await atp(uow_factory, skus=[net.sku("A")], node_ids=[net.node("RR")])
    assert row == AtpRow(
        sku=net.sku("A"),
        node_id=net.node("RR"),
        node_name="RR",
        node_kind=NodeKind.STORE,
        node_status=NodeStatus.PAUSED,
        on_hand=7,
        reserved=0,
        safety_stock=0,
        protected=0,
        atp=7,
        distance_km=None,
    )


@pytest.mark.parametrize(
    ("radius_km", "expected"),
    [
        (20, [("A", "AUS"), ("B", "AUS")]),
        (150, [("A", "AUS"), ("B", "AUS"), ("A", "RR"), ("A", "SA"), ("C", "SA")]),
        (300, [("A", "AUS"), ("B", "AUS"), ("A", "RR"), ("A", "SA"), ("C", "SA"), ("A", "DAL"), ("B", "DAL")]),
        (None, [("A", "AUS"), ("B", "AUS"), ("A", "RR"), ("A", "SA"), ("C", "SA"), ("A", "DAL"), ("B", "DAL"),
                ("A", "NWK"), ("C", "NWK")]),
    ],
)  # fmt: skip
async def test_near_a_point_keeps_the_radius_and_sorts_by_distance(uow_factory, net, radius_km, expected):
    rows = await atp(uow_factory, skus=list(net.skus.values()), near=AUSTIN, radius_km=radius_km)
    assert names(net, rows) == expected
    for (_, node), row in zip(expected, rows, strict=True):
        assert row.distance_km is not None
        assert row.distance_km == pytest.approx(haversine_km(AUSTIN, LOCATIONS[node]), abs=0.5)
        if radius_km is not None:
            assert row.distance_km <= radius_km
    assert [r.distance_km for r in rows] == sorted(r.distance_km or 0.0 for r in rows)


@pytest.mark.parametrize(
    ("limit", "near", "expected"),
    [
        (2, None, [("A", "AUS"), ("A", "DAL")]),
        (1, SAN_ANTONIO, [("A", "SA")]),
    ],
)
async def test_limit_keeps_the_first_rows_in_order(uow_factory, net, limit, near, expected):
    rows = await atp(uow_factory, skus=[net.sku("A")], near=near, limit=limit)
    assert names(net, rows) == expected


async def test_near_without_sku_or_node_finds_nodes_across_the_antimeridian(uow_factory):
    """Only the point narrows the query here; the box must not cut off the far side of longitude 180."""
    east, west, far = GeoPoint(lat=0.0, lon=179.95), GeoPoint(lat=0.0, lon=-179.95), GeoPoint(lat=0.0, lon=179.0)
    net = await build_network(
        uow_factory,
        [NodeSpec("EAST", east), NodeSpec("WEST", west), NodeSpec("FAR", far)],
        {("EAST", "X"): 1, ("WEST", "X"): 2, ("FAR", "X"): 3},
    )
    center = GeoPoint(lat=0.0, lon=179.99)
    rows = await atp(uow_factory, near=center, radius_km=50)
    assert names(net, rows) == [("X", "EAST"), ("X", "WEST")]
    assert rows[1].distance_km == pytest.approx(haversine_km(center, west), abs=0.5)


async def test_near_a_pole_every_longitude_is_inside(uow_factory):
    net = await build_network(
        uow_factory,
        [NodeSpec("P0", GeoPoint(lat=89.9, lon=0.0)), NodeSpec("P180", GeoPoint(lat=89.9, lon=180.0))],
        {("P0", "X"): 1, ("P180", "X"): 1},
    )
    rows = await atp(uow_factory, skus=[net.sku("X")], near=GeoPoint(lat=89.95, lon=90.0), radius_km=50)
    assert sorted(names(net, rows)) == [("X", "P0"), ("X", "P180")]


def _destination(start: GeoPoint, bearing_deg: float, distance_km: float) -> GeoPoint:
    lat1, lon1, bearing = math.radians(start.lat), math.radians(start.lon), math.radians(bearing_deg)
    d = distance_km / EARTH_RADIUS_KM
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(bearing))
    lon2 = lon1 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    return GeoPoint(lat=math.degrees(lat2), lon=(math.degrees(lon2) + 540) % 360 - 180)


@pytest.mark.parametrize("seed", range(5))
def test_the_bounding_box_contains_the_whole_circle(seed):
    rng = random.Random(seed)
    for _ in range(200):
        center = GeoPoint(lat=rng.uniform(-89, 89), lon=rng.uniform(-180, 180))
        radius = rng.choice([1.0, 50.0, 500.0, 3_000.0])
        box = bounding_box(center, radius)
        for bearing in range(0, 360, 5):
            edge = _destination(center, bearing, radius)
            assert haversine_km(center, edge) == pytest.approx(radius, rel=1e-6)
            assert box.lat_min <= edge.lat <= box.lat_max, (center, radius, bearing)
            if box.lon_min is not None and box.lon_max is not None:
                assert box.lon_min <= edge.lon <= box.lon_max, (center, radius, bearing)


async def _tiered_row(uow: UowFactory) -> tuple[SeededNetwork, dict[str, str], dict[int, int]]:
    """One stock row (100 on hand, 10 reserved, 5 safety) with 20 units protected for gold and 15 for silver,
    and customers: gold, silver, known without tier. Ranks are random: the rank column is unique database-wide."""
    net = await build_network(uow, [NodeSpec("N", AUSTIN)], {("N", "S"): 100})
    gold, silver = f"T{net.prefix}-GOLD", f"T{net.prefix}-SILVER"
    rank = random.randint(10_000, 900_000)
    customers = {"gold": f"T{net.prefix}-VIP", "silver": f"T{net.prefix}-SIL", "plain": f"T{net.prefix}-PLAIN"}
    async with uow() as u:
        await u.session.execute(
            insert(AllocationTier), [{"tier": gold, "rank": rank}, {"tier": silver, "rank": rank + 1}]
        )
        await u.session.execute(
            insert(Customer),
            [
                {"customer_id": customers["gold"], "name": "VIP", "tier": gold},
                {"customer_id": customers["silver"], "name": "Silver", "tier": silver},
                {"customer_id": customers["plain"], "name": "Plain", "tier": None},
            ],
        )
        await u.session.execute(
            update(Stock)
            .where(Stock.node_id == net.node("N"), Stock.sku == net.sku("S"))
            .values(reserved=10, safety_stock=5)
        )
        await u.session.execute(
            insert(StockProtection),
            [
                {"node_id": net.node("N"), "sku": net.sku("S"), "tier": gold, "quantity": 20},
                {"node_id": net.node("N"), "sku": net.sku("S"), "tier": silver, "quantity": 15},
            ],
        )
        await u.commit()
    return net, customers, {rank: 20, rank + 1: 15}


@pytest.mark.parametrize(
    ("who", "rank_offset", "expected_protected", "expected_atp"),
    [
        ("gold", 0, 0, 85),  # the top tier sees everything but safety stock and reservations
        ("silver", 1, 20, 65),  # gold's 20 are kept from silver
        ("plain", None, 35, 50),  # a customer without a tier: both protections apply
        ("unknown", None, 35, 50),  # a customer id not on file is untiered
        (None, None, 35, 50),  # no customer at all: the untiered view
    ],
)
async def test_tiers_see_what_is_not_protected_from_them(
    uow_factory, who, rank_offset, expected_protected, expected_atp
):
    net, customers, protections = await _tiered_row(uow_factory)
    customer_id = None if who is None else customers.get(who, f"T{net.prefix}-NOBODY")
    [row] = await atp(uow_factory, skus=[net.sku("S")], customer_id=customer_id)
    assert (row.protected, row.atp) == (expected_protected, expected_atp)
    rank = UNTIERED_RANK if rank_offset is None else min(protections) + rank_offset
    assert row.atp == available_to_promise(on_hand=100, reserved=10, safety_stock=5, protections=protections, rank=rank)


async def test_a_committed_reservation_lowers_atp_at_once_and_an_open_one_does_not(uow_factory):
    net = await build_network(uow_factory, [NodeSpec("N", AUSTIN)], {("N", "S"): 10})
    query = {"skus": [net.sku("S")]}
    allocation = Allocation(line_id="1", sku=net.sku("S"), node_id=net.node("N"), quantity=3)
    async with uow_factory() as writer:
        await writer.inventory.reserve(f"T{net.prefix}-O1:reserve", f"T{net.prefix}-O1", [allocation])
        # The row is locked FOR UPDATE by the writer: a reader neither waits nor sees the uncommitted hold.
        [before] = await atp(uow_factory, **query)
        assert (before.reserved, before.atp) == (0, 10)
        await writer.commit()
    [after] = await atp(uow_factory, **query)
    assert (after.on_hand, after.reserved, after.atp) == (10, 3, 7)


@pytest.mark.parametrize(
    ("on_hand", "reserved", "safety_stock", "protected"),
    [
        (10, 8, 5, 0),  # safety stock eaten into by reservations
        (10, 0, 0, 30),  # protection larger than the row
        (3, 3, 2, 4),  # everything at once
    ],
)
async def test_atp_is_never_negative_when_oversubscribed(uow_factory, on_hand, reserved, safety_stock, protected):
    net = await build_network(uow_factory, [NodeSpec("N", AUSTIN)], {("N", "S"): on_hand})
    tier = f"T{net.prefix}-T"
    async with uow_factory() as u:
        await u.session.execute(
            update(Stock)
            .where(Stock.node_id == net.node("N"), Stock.sku == net.sku("S"))
            .values(reserved=reserved, safety_stock=safety_stock)
        )
        if protected:
            await u.session.execute(insert(AllocationTier).values(tier=tier, rank=random.randint(10_000, 900_000)))
            await u.session.execute(
                insert(StockProtection).values(node_id=net.node("N"), sku=net.sku("S"), tier=tier, quantity=protected)
            )
        await u.commit()
    [row] = await atp(uow_factory, skus=[net.sku("S")])
    assert on_hand - reserved - safety_stock - protected < 0
    assert (row.protected, row.atp) == (protected, 0)


async def test_unknown_names_only_ids_that_do_not_exist(uow_factory, net):
    async with uow_factory() as u:
        unknown = await u.inventory_query.unknown(
            skus=[net.sku("A"), "NO-SUCH-SKU", net.sku("C")], node_ids=["NO-SUCH-NODE", net.node("AUS")]
        )
        nothing = await u.inventory_query.unknown(skus=[net.sku("B")], node_ids=[])
    assert (unknown.skus, unknown.node_ids) == (["NO-SUCH-SKU"], ["NO-SUCH-NODE"])
    assert bool(unknown)
    assert not nothing


async def test_radius_without_a_point_is_refused(uow_factory):
    async with uow_factory() as u:
        with pytest.raises(ValueError, match="radius_km"):
            await u.inventory_query.atp(skus=["X"], radius_km=10, limit=1)
