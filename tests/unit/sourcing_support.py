"""Builders for the sourcing-engine tests: small networks, orders and policies, written the way a reader of
``docs/rules.md`` thinks of them.

Geometry: the destination sits on the equator at the prime meridian, so a node at ``lon=d`` is about
111.2 km x d away (zone 1 under 80 km, zone 2 under 240 km, and so on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from domain.errors import OutOfStock
from domain.network import (
    CarrierServiceSpec,
    CustomerSegment,
    CustomerView,
    NetworkSnapshot,
    NodeKind,
    NodeStatus,
    NodeView,
    OperatingHours,
    SkuView,
    TransferLaneSpec,
    Weekday,
)
from domain.orders import Address, Channel, GeoPoint, Order, OrderLine, ServiceLevel
from domain.policy import BUILTIN_POLICY, PolicyDocument
from domain.sourcing import CandidateVerdict, Plan, plan

DEST = GeoPoint(lat=0.0, lon=0.0)
# A Wednesday afternoon, UTC.
NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
CUSTOMER = "C-1"
# Monday to Friday, 08:00 to 18:00.
WEEKDAYS = OperatingHours(**{day: ("08:00", "18:00") for day in ("mon", "tue", "wed", "thu", "fri")})
ALL_ZONES = ("1", "2", "3", "4", "5", "6", "7", "8")


def node(
    node_id: str,
    lon: float = 1.0,
    *,
    lat: float = 0.0,
    kind: NodeKind | str = NodeKind.DC,
    caps: Iterable[str] = ("ship",),
    paused: bool = False,
    priority: int = 100,
    country: str = "US",
    region: str = "TX",
    timezone: str = "UTC",
    hours: OperatingHours | None = None,
    pick_pack_minutes: int = 120,
    cutoff_local: time | None = None,
    orders_per_day: int | None = None,
    units_per_day: int | None = None,
    used_orders: Mapping[date, int] | None = None,
    used_units: Mapping[date, int] | None = None,
) -> NodeView:
    return NodeView.model_validate(
        {
            "node_id": node_id,
            "name": f"Node {node_id}",
            "kind": kind,
            "status": NodeStatus.PAUSED if paused else NodeStatus.ACTIVE,
            "capabilities": frozenset(caps),
            "location": GeoPoint(lat=lat, lon=lon),
            "priority": priority,
            "country": country,
            "region": region,
            "timezone": timezone,
            "operating_hours": hours,
            "pick_pack_minutes": pick_pack_minutes,
            "cutoff_local": cutoff_local,
            "capacity_orders_per_day": orders_per_day,
            "capacity_units_per_day": units_per_day,
            "used_orders": dict(used_orders or {}),
            "used_units": dict(used_units or {}),
        }
    )


def order(
    *specs: str,
    order_id: str = "A-1001",
    channel: Channel | str = Channel.WEB,
    service_level: ServiceLevel | str = ServiceLevel.STANDARD,
    country: str = "US",
    region: str = "TX",
    unit_price_minor: int = 1_000,
    placed_at: datetime = NOW,
) -> Order:
    """``order("A:2", "B:1")``: one line per ``SKU:quantity``, line ids ``L1``, ``L2``, ..."""
    lines = []
    for i, spec in enumerate(specs, start=1):
        sku, qty = spec.split(":")
        lines.append(OrderLine(line_id=f"L{i}", sku=sku, quantity=int(qty), unit_price_minor=unit_price_minor))
    return Order.model_validate(
        {
            "order_id": order_id,
            "customer_id": CUSTOMER,
            "channel": channel,
            "service_level": service_level,
            "ship_to": Address(
                name="Ada", line1="1 Main St", city="Springfield", region=region, postal_code="1", country=country
            ),
            "lines": lines,
            "placed_at": placed_at,
        }
    )


def customer(
    *,
    segment: CustomerSegment | str = CustomerSegment.B2C,
    tier: str | None = None,
    home: str | None = None,
    allowed: Iterable[str] = (),
    excluded: Iterable[str] = (),
) -> CustomerView:
    return CustomerView.model_validate(
        {
            "customer_id": CUSTOMER,
            "segment": segment,
            "tier": tier,
            "home_node_id": home,
            "allowed_node_ids": frozenset(allowed),
            "excluded_node_ids": frozenset(excluded),
        }
    )


def sku(sku_id: str, *, weight_g: int = 0, hazmat: bool = False, oversize: bool = False) -> SkuView:
    return SkuView(sku=sku_id, weight_g=weight_g, hazmat=hazmat, oversize=oversize)


def service(
    service_id: str,
    *,
    carrier: str = "ACME",
    level: ServiceLevel | str = ServiceLevel.STANDARD,
    zones: Iterable[str] = ALL_ZONES,
    base_minor: int = 500,
    per_kg_minor: int = 0,
    days: int | Mapping[str, int] = 3,
    cutoff: time | None = None,
) -> CarrierServiceSpec:
    """A carrier service over ``zones`` (or the zones ``days`` lists): one base rate, transit ``days``."""
    zones = tuple(zones) if isinstance(days, int) else tuple(days)
    transit = {z: days for z in zones} if isinstance(days, int) else dict(days)
    return CarrierServiceSpec.model_validate(
        {
            "service_id": service_id,
            "carrier": carrier,
            "service_level": level,
            "transit_days_by_zone": transit,
            "rate_by_zone": {z: {"base_minor": base_minor, "per_kg_minor": per_kg_minor} for z in zones},
            "cutoff_local": cutoff,
        }
    )


def lane(
    origin: str,
    destination: str,
    hours: int,
    *,
    cost_minor: int = 300,
    days: Sequence[Weekday | str] = (),
    departs: time | None = None,
) -> TransferLaneSpec:
    return TransferLaneSpec.model_validate(
        {
            "origin_node_id": origin,
            "destination_node_id": destination,
            "transit_hours": hours,
            "cost_minor": cost_minor,
            "departure_days": list(days),
            "departure_local": departs,
        }
    )


def snapshot(
    nodes: Sequence[NodeView],
    atp: Mapping[str, Mapping[str, int]],
    *,
    skus: Iterable[SkuView] = (),
    cust: CustomerView | None = None,
    lanes: Iterable[TransferLaneSpec] = (),
    services: Iterable[CarrierServiceSpec] = (),
) -> NetworkSnapshot:
    return NetworkSnapshot(
        nodes=list(nodes),
        atp={n: dict(a) for n, a in atp.items()},
        skus={s.sku: s for s in skus},
        customer=cust,
        lanes=list(lanes),
        carrier_services=list(services),
    )


def step(value: str | Mapping[str, Any]) -> dict[str, Any]:
    return {"step": value} if isinstance(value, str) else dict(value)


def strategy(strategy_id: str = "s", *ranking: str | Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A strategy as YAML would hold it; ranking steps by name, or as dicts when they take parameters."""
    return {"id": strategy_id, "ranking": [step(s) for s in ranking or ("fewest_shipments",)], **extra}


def policy(
    *strategies: Mapping[str, Any],
    profiles: Sequence[Mapping[str, Any]] = (),
    shipping_methods: Sequence[Mapping[str, Any]] = (),
    costs: Mapping[str, Any] | None = None,
) -> PolicyDocument:
    """``profiles`` above a catch-all ``default`` profile holding ``strategies`` (default: one plain strategy)."""
    document: dict[str, Any] = {
        "name": "Test policy",
        "profiles": [*profiles, {"id": "default", "strategies": list(strategies) or [strategy()]}],
        "shipping_methods": list(shipping_methods),
    }
    if costs is not None:
        document["costs"] = costs
    return PolicyDocument.model_validate(document)


def run(
    o: Order,
    snap: NetworkSnapshot,
    pol: PolicyDocument = BUILTIN_POLICY,
    *,
    now: datetime = NOW,
    destination: GeoPoint | None = DEST,
    **kwargs: Any,
) -> Plan:
    return plan(o, snap, pol, now, destination=destination, **kwargs)


def outcome(o: Order, snap: NetworkSnapshot, pol: PolicyDocument = BUILTIN_POLICY, **kwargs: Any) -> Plan | OutOfStock:
    """The plan, or the ``OutOfStock`` it raised, so properties can look at both kinds of answer."""
    try:
        return run(o, snap, pol, **kwargs)
    except OutOfStock as err:
        return err


def summary(p: Plan) -> list[str]:
    """One string per shipment, in plan order: ``"N1: L1x2 L2x1"``; units from another node add ``@origin``."""
    return [
        f"{s.node_id}: "
        + " ".join(
            f"{a.line_id}x{a.quantity}" + ("" if a.node_id == s.node_id else f"@{a.node_id}") for a in s.allocations
        )
        for s in p.shipments
    ]


def verdict(p: Plan, node_id: str) -> CandidateVerdict:
    (found,) = [c for c in p.explanation.candidates if c.node_id == node_id]
    return found
