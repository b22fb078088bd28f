"""Fulfilment options at checkout: the ways a customer could receive a cart, to compare by price, time and
number of shipments, each one a plan of the sourcing engine that the order can then execute as it is.

There is no second engine here. Every option is ``sourcing.plan(...)`` run on a *variant* of the inputs
(``PlanVariant``), and the variant is recorded on the option, so a workflow that must re-plan later (stock
moved between quote and order) re-plans under the customer's chosen method with ``plan_variant`` rather than
silently doing something else. A variant changes the inputs in two ways only:

- **the order** (what the customer chooses): ``service_level`` (standard or expedited) and ``pickup_node_id``
  (collect at that branch; the engine then plans a pickup there, with a transfer in when the policy allows one);
- **the policy** (narrowing only, never widening what the business allows): ``no_transfer`` removes every
  strategy's transfer policy, so what ships, ships from where it is (a split, or a backorder under
  ``ship_available``); ``one_node`` also sets every strategy's split to ``never``, so one node has everything;
  ``one_shipment`` sets the split to ``never`` but keeps the transfers, so one shipment leaves after stock is
  moved into the receiving node (the home branch). Fallback strategies stay as they are and still apply.

The options, in the order they are returned (a fixed order, so a page and a test can rely on it):

===================== =====================================================================================
``pickup_chosen``     collect at the branch the cart names (``cart.pickup_node_id``)
``pickup_home``       collect at the customer's home branch, via a transfer when it is short
``pickup_nearest``    collect at the nearest branch that has everything (no transfer): of the
                      ``PICKUP_PROBES`` nearest pickup branches whose ATP covers the cart, the one ready on the
                      earliest day, then the nearest, then by id
``ship_standard``     one shipment from one node, standard service
``ship_split``        standard service, several shipments (or part now and the rest backordered)
``ship_consolidated`` standard service, one shipment after stock is transferred into one node
``ship_expedited``    expedited service, in whatever shape the policy gives it; offered only when it arrives
                      strictly earlier than every standard-service delivery found (paying more to arrive the
                      same day is no choice at all)
===================== =====================================================================================

A delivery option's kind comes from the plan it resolved to (its service level and shape), not from the
variant that produced it, so the base plan and a variant that resolves to the same shape do not show twice.
Options whose plans are the same (``plan_fingerprint``) are kept once, the earlier kind winning, and each kind
appears at most once (the first plan generated: the policy's own choice before the variants).

Price: ``price_minor`` is what the customer pays to receive the order: the carrier's rate for each parcel as the
engine priced it (``Plan.shipping_minor``, for the service the plan chose); collecting is free. Handling per node
and transfer lanes are the business's cost to serve, not a charge, and are in ``cost_minor`` (the plan's own
``cost_minor``) for a CSR to compare. A network without carrier services prices a delivery at 0 and promises no
date, as the engine does.

Pure and deterministic for a given ``now``: the same inputs give the same options in the same order.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Collection, Iterable, Sequence
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import OutOfStock
from domain.network import Capability, CustomerView, NetworkSnapshot, NodeView, haversine_km
from domain.orders import GeoPoint, Order, ServiceLevel
from domain.policy import BUILTIN_VERSION, Method, PolicyDocument, SplitMode, SplitPolicy
from domain.sourcing import NetworkFacts, Plan, plan

__all__ = [
    "PICKUP_PROBES",
    "FulfilmentOption",
    "OptionKind",
    "OptionLine",
    "PlanVariant",
    "Shape",
    "canonical_json",
    "fulfilment_options",
    "option_id",
    "plan_fingerprint",
    "plan_variant",
    "sha256_hex",
    "variant_inputs",
]

# Pickup branches tried for ``pickup_nearest``, nearest first: each is one engine run, and a branch farther
# than the fifth nearest that has the stock is not what "nearest" means to a customer.
PICKUP_PROBES: Final = 5


class OptionKind(StrEnum):
    PICKUP_CHOSEN = "pickup_chosen"
    PICKUP_HOME = "pickup_home"
    PICKUP_NEAREST = "pickup_nearest"
    SHIP_STANDARD = "ship_standard"
    SHIP_SPLIT = "ship_split"
    SHIP_CONSOLIDATED = "ship_consolidated"
    SHIP_EXPEDITED = "ship_expedited"


KIND_ORDER: Final[tuple[OptionKind, ...]] = tuple(OptionKind)


class Shape(StrEnum):
    """How a variant narrows the policy (see the module docstring)."""

    AS_POLICY = "as_policy"
    NO_TRANSFER = "no_transfer"
    ONE_NODE = "one_node"
    ONE_SHIPMENT = "one_shipment"


class PlanVariant(BaseModel):
    """How an option's plan was asked of the engine: enough to ask again for the same order later."""

    model_config = ConfigDict(frozen=True)

    method: Method
    service_level: ServiceLevel = ServiceLevel.STANDARD
    pickup_node_id: str | None = None
    shape: Shape = Shape.AS_POLICY


class OptionLine(BaseModel):
    """Units of one cart line: where they are taken from and in which shipment (``shipment`` indexes
    ``plan.shipments``); both None for units backordered."""

    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int = Field(gt=0)
    node_id: str | None
    shipment: int | None


class FulfilmentOption(BaseModel):
    model_config = ConfigDict(frozen=True)

    option_id: str
    kind: OptionKind
    method: Method
    # None for a pickup (no carrier service).
    service_level: ServiceLevel | None
    lines: list[OptionLine]
    shipments: int
    node_ids: list[str]
    price_minor: int
    cost_minor: int
    currency: str
    # The latest over the shipments: a pickup is ready by, a delivery arrives by. None when unknown.
    ready_by: datetime | None = None
    deliver_by: date | None = None
    # A pickup: how far the branch is from the customer, when the customer is located.
    distance_km: float | None = None
    via_transfer: bool = False
    backordered_units: int = 0
    trade_off: str
    # The plan the engine gives the cart as submitted (its method and service level, the policy as it is).
    recommended: bool = False
    variant: PlanVariant
    plan_fingerprint: str
    plan: Plan


# --- variants -------------------------------------------------------------------------------------------------


def _narrow(policy: PolicyDocument, shape: Shape) -> PolicyDocument:
    if shape is Shape.AS_POLICY:
        return policy
    profiles = []
    for profile in policy.profiles:
        strategies = []
        for strategy in profile.strategies:
            update: dict[str, object] = {}
            if shape in (Shape.NO_TRANSFER, Shape.ONE_NODE):
                update["transfer"] = None
            if shape in (Shape.ONE_NODE, Shape.ONE_SHIPMENT):
                update["split"] = SplitPolicy(mode=SplitMode.NEVER)
            strategies.append(strategy.model_copy(update=update))
        profiles.append(profile.model_copy(update={"strategies": strategies}))
    # model_copy keeps the document's own checks true: only strategies' split and transfer change.
    return policy.model_copy(update={"profiles": profiles})


def variant_inputs(cart: Order, policy: PolicyDocument, variant: PlanVariant) -> tuple[Order, PolicyDocument]:
    """The order and policy the engine is asked with for ``variant``."""
    if (variant.method is Method.PICKUP) != (variant.pickup_node_id is not None):
        raise ValueError("a pickup variant names its branch, and a delivery variant names none")
    order = cart.model_copy(update={"service_level": variant.service_level, "pickup_node_id": variant.pickup_node_id})
    return order, _narrow(policy, variant.shape)


def plan_variant(
    cart: Order,
    snapshot: NetworkSnapshot,
    policy: PolicyDocument,
    now: datetime,
    variant: PlanVariant,
    *,
    destination: GeoPoint | None,
    attempt: int = 1,
    excluded_nodes: Collection[str] = (),
    policy_version: str = BUILTIN_VERSION,
    network_facts: NetworkFacts | None = None,
) -> Plan:
    """``sourcing.plan`` under ``variant``: how an option is planned, and how the order re-plans under the
    customer's chosen method when the quoted plan is no longer feasible. Raises ``OutOfStock`` like ``plan``.
    ``network_facts`` as for ``plan``: shared by the variants of one cart, they save time and change nothing."""
    order, narrowed = variant_inputs(cart, policy, variant)
    return plan(
        order,
        snapshot,
        narrowed,
        now,
        destination=destination,
        attempt=attempt,
        excluded_nodes=excluded_nodes,
        policy_version=policy_version,
        pickup_node_id=order.pickup_node_id,
        network_facts=network_facts,
    )


# --- fingerprints and ids -------------------------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """One byte string per value: keys sorted, no whitespace, ASCII only. Pydantic models are dumped in JSON
    mode first (datetimes as ISO 8601), so equal models always encode alike. Fingerprints and quotes use it."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


def plan_fingerprint(p: Plan) -> str:
    """sha256 of what executing ``p`` means: method, service, which units come from which node in which
    shipment, by which carrier service, transfers, backorders and cost.

    Left out: ids (they carry the order id and attempt, unknown at checkout), the explanation, and the promise
    instants, which move with ``now`` while the plan stays the same (a quote carries the promise it showed)."""
    return sha256_hex(
        {
            "method": p.method.value,
            "service_level": None if p.service_level is None else p.service_level.value,
            "cost_minor": p.cost_minor,
            "shipments": [
                {
                    "node_id": s.node_id,
                    "method": s.method.value,
                    "service_level": None if s.service_level is None else s.service_level.value,
                    "carrier": s.carrier,
                    "carrier_service_id": s.carrier_service_id,
                    "cost_minor": s.cost_minor,
                    "allocations": [[a.line_id, a.sku, a.node_id, a.quantity] for a in s.allocations],
                    "transfers": [[t.origin_node_id, t.sku, t.quantity, t.cost_minor] for t in s.transfers_in],
                }
                for s in p.shipments
            ],
            "backorders": [[b.line_id, b.sku, b.quantity] for b in p.backorders],
        }
    )


def option_id(kind: OptionKind, p: Plan) -> str:
    """Stable for the same kind, nodes and service: ``ship_split-3f9c0a1b2d4e``. Not the plan fingerprint, so an
    option keeps its id while quantities or costs move, and the order can find "the same option" again."""
    digest = sha256_hex(
        {
            "kind": kind.value,
            "method": p.method.value,
            "service_level": None if p.service_level is None else p.service_level.value,
            "nodes": [s.node_id for s in p.shipments],
            "origins": sorted({t.origin_node_id for t in p.transfers}),
        }
    )
    return f"{kind.value}-{digest[:12]}"


# --- the options ----------------------------------------------------------------------------------------------


def fulfilment_options(
    cart: Order,
    snapshot: NetworkSnapshot,
    policy: PolicyDocument,
    now: datetime,
    *,
    destination: GeoPoint | None,
    excluded_nodes: Collection[str] = (),
    policy_version: str = BUILTIN_VERSION,
    methods: Collection[Method] = (Method.PICKUP, Method.DELIVERY),
) -> list[FulfilmentOption]:
    """The options a customer would compare for ``cart``, each planned by the sourcing engine under ``policy``
    (see the module docstring for the kinds, their order and how each is derived). Empty when nothing can be
    offered. ``methods`` limits the options to delivery or pickup."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    builder = _Builder(cart, snapshot, policy, now, destination, excluded_nodes, policy_version)
    if Method.PICKUP in methods:
        builder.pickups()
    if Method.DELIVERY in methods:
        builder.deliveries()
    return builder.result()


class _Builder:
    def __init__(
        self,
        cart: Order,
        snapshot: NetworkSnapshot,
        policy: PolicyDocument,
        now: datetime,
        destination: GeoPoint | None,
        excluded_nodes: Collection[str],
        policy_version: str,
    ) -> None:
        self.cart = cart
        self.snapshot = snapshot
        self.policy = policy
        self.now = now
        self.destination = destination
        self.excluded = tuple(sorted(excluded_nodes))
        self.policy_version = policy_version
        self.nodes = {n.node_id: n for n in snapshot.nodes}
        self.customer = snapshot.customer or CustomerView(customer_id=cart.customer_id)
        self.found: list[tuple[OptionKind, PlanVariant, Plan]] = []
        self._plans: dict[PlanVariant, Plan | None] = {}
        # What every variant's run would work out alike (distances, calendars, ready-by instants, carrier
        # services): once for the whole call.
        self._facts = NetworkFacts(snapshot, now, destination)

    def plan(self, variant: PlanVariant) -> Plan | None:
        if variant not in self._plans:
            try:
                self._plans[variant] = plan_variant(
                    self.cart,
                    self.snapshot,
                    self.policy,
                    self.now,
                    variant,
                    destination=self.destination,
                    excluded_nodes=self.excluded,
                    policy_version=self.policy_version,
                    network_facts=self._facts,
                )
            except OutOfStock:
                self._plans[variant] = None
        return self._plans[variant]

    def add(self, kind: OptionKind, variant: PlanVariant, p: Plan | None) -> None:
        if p is not None:
            self.found.append((kind, variant, p))

    # -- pickup ---------------------------------------------------------------------------------------------

    def pickups(self) -> None:
        chosen = self.cart.pickup_node_id
        if chosen is not None:
            variant = PlanVariant(method=Method.PICKUP, pickup_node_id=chosen)
            self.add(OptionKind.PICKUP_CHOSEN, variant, self.plan(variant))
        home = self.customer.home_node_id
        if home is not None and home in self.nodes:
            variant = PlanVariant(method=Method.PICKUP, pickup_node_id=home)
            self.add(OptionKind.PICKUP_HOME, variant, self.plan(variant))
        self.nearest_pickup()

    def _covers(self, node: NodeView) -> bool:
        """ATP at the node covers the cart: necessary (not sufficient) for the engine to plan it without a
        transfer, so only branches that could qualify cost an engine run."""
        return all(
            self.snapshot.atp_of(node.node_id, sku) >= units for sku, units in self.cart.quantities_by_sku().items()
        )

    def _distance(self, node: NodeView) -> float:
        return math.inf if self.destination is None else haversine_km(node.location, self.destination)

    def nearest_pickup(self) -> None:
        branches = sorted(
            (n for n in self.snapshot.nodes if Capability.PICKUP in n.capabilities and self._covers(n)),
            key=lambda n: (self._distance(n), n.node_id),
        )
        found: list[tuple[tuple[date, float, str], PlanVariant, Plan]] = []
        for node in branches[:PICKUP_PROBES]:
            variant = PlanVariant(method=Method.PICKUP, pickup_node_id=node.node_id)
            p = self.plan(variant)
            if p is None or p.transfers or p.backorders:
                continue
            ready = _latest_ready(p)
            day = date.max if ready is None else ready.astimezone(ZoneInfo(node.timezone)).date()
            found.append(((day, self._distance(node), node.node_id), variant, p))
        if found:
            _, variant, p = min(found, key=lambda item: item[0])
            self.add(OptionKind.PICKUP_NEAREST, variant, p)

    # -- delivery -------------------------------------------------------------------------------------------

    def deliveries(self) -> None:
        standard = PlanVariant(method=Method.DELIVERY, service_level=ServiceLevel.STANDARD)
        base = self.plan(standard)
        self.add_delivery(standard, base)
        # A shape variant only narrows the candidates the base plan was chosen from: when the base is already
        # one node with everything, no variant can do differently, so none is asked.
        simple = base is not None and len(base.shipments) == 1 and not base.transfers and not base.backorders
        if not simple:
            shapes = [Shape.NO_TRANSFER, Shape.ONE_NODE]
            if any(s.transfer is not None for profile in self.policy.profiles for s in profile.strategies):
                shapes.append(Shape.ONE_SHIPMENT)
            for shape in shapes:
                variant = standard.model_copy(update={"shape": shape})
                self.add_delivery(variant, self.plan(variant))
        standard_plans = [p for _, _, p in self.found if p.method is Method.DELIVERY]
        expedited = PlanVariant(method=Method.DELIVERY, service_level=ServiceLevel.EXPEDITED)
        fast = self.plan(expedited)
        if fast is not None and _faster(fast, standard_plans):
            self.add_delivery(expedited, fast)

    def add_delivery(self, variant: PlanVariant, p: Plan | None) -> None:
        if p is None:
            return
        if p.service_level is ServiceLevel.EXPEDITED:
            kind = OptionKind.SHIP_EXPEDITED
        elif len(p.shipments) > 1 or p.backorders:
            kind = OptionKind.SHIP_SPLIT
        elif p.transfers:
            kind = OptionKind.SHIP_CONSOLIDATED
        else:
            kind = OptionKind.SHIP_STANDARD
        self.add(kind, variant, p)

    # -- the result -----------------------------------------------------------------------------------------

    def submitted(self) -> PlanVariant:
        if self.cart.pickup_node_id is not None:
            return PlanVariant(method=Method.PICKUP, pickup_node_id=self.cart.pickup_node_id)
        return PlanVariant(method=Method.DELIVERY, service_level=self.cart.service_level)

    def result(self) -> list[FulfilmentOption]:
        submitted = self.submitted()
        recommended = self._plans.get(submitted)
        recommended_print = None if recommended is None else plan_fingerprint(recommended)
        kept: dict[OptionKind, tuple[PlanVariant, Plan, str]] = {}
        seen: set[str] = set()
        # The earlier kind wins a shared plan; within a kind, the first plan generated.
        for kind, variant, p in sorted(self.found, key=lambda item: KIND_ORDER.index(item[0])):
            fingerprint = plan_fingerprint(p)
            if fingerprint in seen or kind in kept:
                continue
            seen.add(fingerprint)
            kept[kind] = (variant, p, fingerprint)
        return [
            self.option(kind, variant, p, fingerprint, recommended=fingerprint == recommended_print)
            for kind, (variant, p, fingerprint) in kept.items()
        ]

    def option(
        self, kind: OptionKind, variant: PlanVariant, p: Plan, fingerprint: str, *, recommended: bool
    ) -> FulfilmentOption:
        index = {s.shipment_id: i for i, s in enumerate(p.shipments)}
        lines = [
            OptionLine(
                line_id=a.line_id, sku=a.sku, quantity=a.quantity, node_id=a.node_id, shipment=index[s.shipment_id]
            )
            for s in p.shipments
            for a in s.allocations
        ]
        lines += [
            OptionLine(line_id=b.line_id, sku=b.sku, quantity=b.quantity, node_id=None, shipment=None)
            for b in p.backorders
        ]
        line_order = {line.line_id: i for i, line in enumerate(self.cart.lines)}
        lines.sort(key=lambda line: (line_order[line.line_id], line.shipment is None, line.shipment or 0))
        pickup = p.method is Method.PICKUP
        return FulfilmentOption(
            option_id=option_id(kind, p),
            kind=kind,
            method=p.method,
            service_level=None if pickup else p.service_level,
            lines=lines,
            shipments=len(p.shipments),
            node_ids=[s.node_id for s in p.shipments],
            price_minor=p.shipping_minor,
            cost_minor=p.cost_minor,
            currency=self.cart.currency,
            ready_by=_latest_ready(p) if pickup else None,
            deliver_by=None if pickup else p.promised_date(),
            distance_km=p.shipments[0].distance_km if pickup and p.shipments else None,
            via_transfer=bool(p.transfers),
            backordered_units=sum(b.quantity for b in p.backorders),
            trade_off=self.trade_off(kind, p),
            recommended=recommended,
            variant=variant,
            plan_fingerprint=fingerprint,
            plan=p,
        )

    # -- words ----------------------------------------------------------------------------------------------

    def name(self, node_id: str) -> str:
        node = self.nodes.get(node_id)
        return node_id if node is None else node.name

    def zone(self, node_id: str) -> ZoneInfo:
        node = self.nodes.get(node_id)
        return ZoneInfo("UTC" if node is None else node.timezone)

    def trade_off(self, kind: OptionKind, p: Plan) -> str:
        if p.method is Method.PICKUP:
            return self._pickup_words(kind, p)
        first = p.shipments[0].node_id if p.shipments else None
        today = self.now.astimezone(self.zone(first) if first else ZoneInfo("UTC")).date()
        arrives = _arrives(p.promised_date(), today)
        if kind is OptionKind.SHIP_EXPEDITED:
            shape = "" if len(p.shipments) == 1 else f" in {len(p.shipments)} shipments"
            return f"Ships expedited{shape}, {arrives}" + _backorder_words(p)
        if kind is OptionKind.SHIP_SPLIT:
            return self._split_words(p, today)
        if kind is OptionKind.SHIP_CONSOLIDATED:
            origins = _names(self.name(o) for o in sorted({t.origin_node_id for t in p.transfers}))
            return f"One shipment from {self.name(p.shipments[0].node_id)} once stock arrives from {origins}, {arrives}"
        return f"Ships standard in one shipment, {arrives}"

    def _pickup_words(self, kind: OptionKind, p: Plan) -> str:
        shipment = p.shipments[0]
        where = self.name(shipment.node_id)
        if kind is OptionKind.PICKUP_HOME:
            where = f"your home branch, {where}"
        ready = _latest_ready(p)
        if ready is None:
            when = "when ready (no opening hours known)"
        else:
            zone = self.zone(shipment.node_id)
            local = ready.astimezone(zone)
            when = f"{_day_words(local.date(), self.now.astimezone(zone).date())} {local:%H:%M}"
        text = f"Pick up at {where} {when}"
        extras = []
        if kind is not OptionKind.PICKUP_HOME and shipment.distance_km is not None:
            extras.append(f"{shipment.distance_km:.0f} km away")
        if p.transfers:
            extras.append("via transfer")
        return text + (f" ({', '.join(extras)})" if extras else "") + _backorder_words(p)

    def _split_words(self, p: Plan, today: date) -> str:
        by_day: dict[date | None, int] = {}
        for s in p.shipments:
            by_day[s.promised_date] = by_day.get(s.promised_date, 0) + s.units
        days = sorted(by_day, key=lambda d: date.max if d is None else d)
        parts = []
        for i, day in enumerate(days):
            units = by_day[day]
            what = "the rest" if i == len(days) - 1 and i > 0 and not p.backorders else _items(units)
            parts.append(f"{what} {_arrives(day, today, verb=False)}")
        count = len(p.shipments)
        head = "One shipment" if count == 1 else f"{_count_words(count)} shipments"
        text = f"{head}: {', '.join(parts)}"
        return text + _backorder_words(p)


def _latest_ready(p: Plan) -> datetime | None:
    readies = [s.ready_by for s in p.shipments]
    if not readies or any(r is None for r in readies):
        return None
    return max(r for r in readies if r is not None)


def _faster(fast: Plan, others: Sequence[Plan]) -> bool:
    """Expedited is worth offering: it arrives strictly earlier than every delivery at the standard level (or
    there is none to compare with). Paying more to arrive the same day is no choice at all."""
    day = fast.promised_date()
    if not others:
        return True
    known = [d for d in (p.promised_date() for p in others) if d is not None]
    return day is not None and all(day < d for d in known)


# --- plain words (fixed English, not the process locale, so the text is deterministic) -------------------------

_WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_COUNTS: Final = ("No", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten")


def _day_words(day: date, today: date) -> str:
    if day == today:
        return "today"
    if day == today + timedelta(days=1):
        return "tomorrow"
    return f"{_WEEKDAYS[day.weekday()]} {day.day} {_MONTHS[day.month - 1]}"


def _arrives(day: date | None, today: date, *, verb: bool = True) -> str:
    if day is None:
        return "arrival date to be confirmed" if verb else "date to be confirmed"
    words = _day_words(day, today)
    return f"arrives {words}" if verb else words


def _items(units: int) -> str:
    return f"{units} item" if units == 1 else f"{units} items"


def _count_words(count: int) -> str:
    return _COUNTS[count] if count < len(_COUNTS) else str(count)


def _names(names: Iterable[str]) -> str:
    listed = list(names)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


def _backorder_words(p: Plan) -> str:
    units = sum(b.quantity for b in p.backorders)
    return "" if not units else f"; {_items(units)} when back in stock"
