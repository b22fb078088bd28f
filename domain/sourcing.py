"""The sourcing engine: which node(s) fulfil which lines, by which method, at what cost and promise, and why.

``plan(order, snapshot, policy, now)`` is pure and deterministic: the same inputs always give the same plan,
so a workflow can record it once and a replay never disagrees (the one exception is a strategy that asks for
the optimizer, whose answer depends on its time budget; plans are recorded, so that never reaches a replay).

How a decision is made, in the policy's terms (``domain.policy``):

1. **Profile**: the first whose ``when`` matches the order and whose window contains ``now``.
2. **Shipping method**: the first matching rule sets the service level and the carriers allowed.
3. **Strategies** in order, primary then fallbacks, until one places the order. Within a strategy:
   - **filters** remove nodes, each removal recorded with the filter that made it and why;
   - **candidate plans** are built from the survivors: every node that can fill the whole order alone, one
     greedy split (each step takes the best-ranked node for what is still missing), and a transfer plan
     (stock moved into the receiving node, then one shipment from there) when the policy allows it;
   - **ranking** orders candidate plans by the policy's steps, each a tie-breaker of the previous, after one
     rule that is not negotiable: a plan that covers more units beats one that backorders more;
   - or the **optimizer** finds the minimum-cost assignment, and the ranking decides only if its budget runs
     out without an answer.
4. The **explanation** lists every candidate node with the filter that removed it or its scores and rank, the
   profile and strategy that decided (with the policy version), and what was tried before.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain import optimizer, promise
from domain.errors import OutOfStock
from domain.network import (
    Capability,
    CarrierServiceSpec,
    CustomerView,
    NetworkSnapshot,
    NodeStatus,
    NodeView,
    SkuView,
    TransferLaneSpec,
    Zone,
    haversine_km,
)
from domain.orders import GeoPoint, Order, ServiceLevel
from domain.policy import (
    BUILTIN_VERSION,
    CapacityHeadroom,
    DeliverySpeed,
    Distance,
    Engine,
    FewestShipments,
    Handling,
    HomeBranch,
    InventoryBalance,
    Method,
    MethodChoice,
    NodePriority,
    OrderFacts,
    PolicyDocument,
    Profile,
    RankStep,
    ShippingMethodRule,
    SplitMode,
    Strategy,
    TotalCost,
)
from domain.shipping import choose_service, parcel_rate_minor, per_unit_rate, zone_for

# Candidate verdicts kept in an explanation: enough to see every competitor of a regional network, without
# letting a 1,000-node network put a megabyte into each workflow history. Counts per filter are always complete.
MAX_EXPLAINED_CANDIDATES = 200
# What ``delivery_speed`` scores a shipment whose date cannot be promised (a node without declared hours).
UNKNOWN_PROMISE_DAYS = 9_999

# --- the plan ------------------------------------------------------------------------------------------------


class Allocation(BaseModel):
    """Units of one order line taken from one node (where they are reserved and picked)."""

    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    node_id: str
    quantity: int = Field(gt=0)


class InboundTransfer(BaseModel):
    """Units moved from ``origin_node_id`` into the shipping node before the shipment leaves it."""

    model_config = ConfigDict(frozen=True)

    origin_node_id: str
    sku: str
    quantity: int = Field(gt=0)
    cost_minor: int = 0
    arrives_at: datetime | None = None


class PlannedShipment(BaseModel):
    model_config = ConfigDict(frozen=True)

    shipment_id: str
    node_id: str
    allocations: list[Allocation]
    distance_km: float | None = None
    method: Method = Method.DELIVERY
    service_level: ServiceLevel | None = None
    carrier: str | None = None
    carrier_service_id: str | None = None
    zone: Zone | None = None
    cost_minor: int = 0
    # What the customer pays to receive this parcel: the carrier's rate the engine priced it with (0 to collect).
    shipping_minor: int = 0
    ready_by: datetime | None = None
    ship_by: datetime | None = None
    deliver_by: date | None = None
    transfers_in: list[InboundTransfer] = Field(default_factory=list)

    @property
    def units(self) -> int:
        return sum(a.quantity for a in self.allocations)

    # The node's time zone: a pickup is promised for the branch's local day (older plans have none: UTC).
    timezone: str | None = None

    @property
    def promised_date(self) -> date | None:
        """When the customer has this shipment: delivered (a local day at the node), or ready to collect (the
        local day at the branch when it is ready)."""
        if self.method is Method.PICKUP:
            if self.ready_by is None:
                return None
            return self.ready_by.astimezone(ZoneInfo(self.timezone or "UTC")).date()
        return self.deliver_by


class Backorder(BaseModel):
    """Units of a line no node can supply now, left to be filled later (``ship_available`` split policy)."""

    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int = Field(gt=0)


class CandidateVerdict(BaseModel):
    """What the engine thought of one node: removed by a filter and why, or kept with its scores and rank."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    eliminated_by: str | None = None
    reason: str | None = None
    distance_km: float | None = None
    rank: int | None = None
    scores: dict[str, float | int | None] = Field(default_factory=dict)


class OptimizerReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: str
    objective: float | None = None
    bound: float | None = None
    solve_ms: float = 0.0
    budget_ms: int = 0


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    policy_version: str
    candidates: list[CandidateVerdict]
    decision: str
    profile: str | None = None
    strategy: str | None = None
    engine: str = Engine.RULES.value
    ranking: list[str] = Field(default_factory=list)
    # What was tried before the deciding strategy, and why each profile above the chosen one did not apply.
    considered: list[str] = Field(default_factory=list)
    # Set when the plan was asked to keep a checkout quote: whether it did, and if not, why.
    quote: str | None = None
    eliminated_by_filter: dict[str, int] = Field(default_factory=dict)
    candidates_total: int | None = None
    optimizer: OptimizerReport | None = None


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan_id: str
    attempt: int
    shipments: list[PlannedShipment]
    explanation: Explanation
    backorders: list[Backorder] = Field(default_factory=list)
    method: Method = Method.DELIVERY
    service_level: ServiceLevel | None = None
    cost_minor: int = 0

    @property
    def allocations(self) -> list[Allocation]:
        return [a for s in self.shipments for a in s.allocations]

    @property
    def node_ids(self) -> list[str]:
        return [s.node_id for s in self.shipments]

    @property
    def transfers(self) -> list[InboundTransfer]:
        return [t for s in self.shipments for t in s.transfers_in]

    @property
    def shipping_minor(self) -> int:
        """What the customer pays to receive the plan: the carrier rate of every parcel."""
        return sum(s.shipping_minor for s in self.shipments)

    @property
    def ready_by(self) -> datetime | None:
        """The latest ready-by over the shipments (for a pickup: when everything can be collected); None if any
        is unknown."""
        readies = [s.ready_by for s in self.shipments]
        if not readies or any(r is None for r in readies):
            return None
        return max(r for r in readies if r is not None)

    def promised_date(self) -> date | None:
        """The latest date the customer has everything planned (backorders aside); None if any is unknown."""
        dates = [s.promised_date for s in self.shipments]
        if not dates or any(d is None for d in dates):
            return None
        return max(d for d in dates if d is not None)


def plan_id(order_id: str, attempt: int) -> str:
    """Business identity of a plan: one decision per order and attempt, recorded once."""
    return f"{order_id}:plan-{attempt}"


def shipment_id(order_id: str, attempt: int, node_id: str) -> str:
    """Business identity of a shipment: the same plan attempt at the same node is the same shipment."""
    return f"{order_id}:p{attempt}:{node_id}"


# --- working types -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One shipment of a draft plan: what leaves ``node``, and what is moved into it first."""

    node: NodeView
    take: Mapping[str, int]  # units taken from the shipping node itself, per SKU
    transfers: tuple[tuple[NodeView, str, int], ...] = ()  # (origin, sku, units) moved in first


@dataclass
class _Draft:
    parts: list[_Part]
    backordered: dict[str, int] = field(default_factory=dict)  # per SKU
    origin: str = "rules"

    @property
    def units_backordered(self) -> int:
        return sum(self.backordered.values())


class _StrategyFailed(Exception):
    def __init__(self, reason: str, shortfall: Mapping[str, int]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.shortfall = dict(shortfall)


@dataclass(frozen=True)
class _Shipping:
    method: Method
    level: ServiceLevel
    carriers: tuple[str, ...]
    fastest: bool
    rule: str | None


class NetworkFacts:
    """Facts about the nodes of one snapshot, seen at one instant from one destination, memoised.

    What depends on nothing else (distance, local today, the promise calendar, ready-by instants, carrier
    handovers, the carrier service chosen for a zone, level and weight) is worked out once and then read. One
    ``plan()`` call makes its own; a caller that runs the engine several times on the same inputs (the variants
    of ``domain.options.fulfilment_options``) can pass one to every run, so the runs share the work. Nothing here
    depends on the order or the policy but what is in a key (a service level, the carriers allowed), so sharing
    never changes a plan. Keys are node ids: the engine reads one view per id (``_Engine.nodes``), and every run
    built on the same snapshot reads the same one. Memos grow with the nodes and the questions asked, and live as
    long as the object: one checkout request, one plan.
    """

    def __init__(self, snapshot: NetworkSnapshot, now: datetime, destination: GeoPoint | None) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.snapshot = snapshot
        self.now = now
        self.destination = destination
        self._distance: dict[str, float | None] = {}
        self._zone: dict[str, Zone] = {}
        self._today: dict[str, date] = {}
        self._calendar: dict[str, promise.NodeCalendar | None] = {}
        self._ready: dict[tuple[str, datetime | None, int], datetime | None] = {}
        self._shipped: dict[tuple[str, datetime, time | None, int], tuple[datetime, date]] = {}
        self._services: dict[tuple[ServiceLevel, Zone, int, tuple[str, ...], bool], CarrierServiceSpec | None] = {}

    def fits(self, snapshot: NetworkSnapshot, now: datetime, destination: GeoPoint | None) -> bool:
        """These facts hold for a run on ``snapshot`` at ``now`` for ``destination`` (the same snapshot object)."""
        return (
            snapshot is self.snapshot
            and now == self.now
            and now.utcoffset() == self.now.utcoffset()
            and destination == self.destination
        )

    def distance(self, node: NodeView) -> float | None:
        key = node.node_id
        if key not in self._distance:
            self._distance[key] = (
                None if self.destination is None else round(haversine_km(node.location, self.destination), 1)
            )
        return self._distance[key]

    def zone(self, node: NodeView) -> Zone:
        """The carrier zone a parcel from ``node`` is priced and timed for (zone 1 when not located)."""
        key = node.node_id
        if key not in self._zone:
            self._zone[key] = zone_for(self.distance(node) or 0.0)
        return self._zone[key]

    def local_today(self, node: NodeView) -> date:
        key = node.node_id
        if key not in self._today:
            self._today[key] = self.now.astimezone(ZoneInfo(node.timezone)).date()
        return self._today[key]

    def calendar(self, node: NodeView) -> promise.NodeCalendar | None:
        key = node.node_id
        if key not in self._calendar:
            self._calendar[key] = _calendar(node)
        return self._calendar[key]

    def ready_at(self, node: NodeView, start: datetime | None = None, units: int = 1) -> datetime | None:
        """When ``node`` has ``units`` units picked, received no earlier than ``start``: a day with room for them."""
        key = (node.node_id, start, units)
        if key not in self._ready:
            calendar = self.calendar(node)
            if calendar is None:
                self._ready[key] = None
            else:
                try:
                    self._ready[key] = promise.ready_by(calendar, max(self.now, start or self.now), units=units)
                except promise.NoOperatingDay:
                    self._ready[key] = None
        return self._ready[key]

    def shipped(self, node: NodeView, ready: datetime, service: CarrierServiceSpec) -> tuple[datetime, date]:
        """When a parcel ready at ``ready`` leaves ``node`` with ``service``, and the local day it is delivered
        (``node`` has a calendar: ``ready`` is known only with one)."""
        transit_days = service.transit_days_by_zone[self.zone(node)]
        key = (node.node_id, ready, service.cutoff_local, transit_days)
        if key not in self._shipped:
            calendar = self.calendar(node)
            assert calendar is not None  # ready is known only with a calendar
            ship = promise.carrier_handover(calendar, ready, service.cutoff_local)
            self._shipped[key] = ship, promise.delivery_date(ship, transit_days, node.timezone)
        return self._shipped[key]

    def service(
        self, *, level: ServiceLevel, zone: Zone, weight_g: int, carriers: tuple[str, ...], fastest: bool
    ) -> CarrierServiceSpec | None:
        key = (level, zone, weight_g, carriers, fastest)
        if key not in self._services:
            self._services[key] = choose_service(
                self.snapshot.carrier_services,
                level=level,
                zone=zone,
                weight_g=weight_g,
                carriers=carriers,
                fastest=fastest,
            )
        return self._services[key]


def _calendar(node: NodeView) -> promise.NodeCalendar | None:
    if node.operating_hours is None or not node.operating_hours.as_json():
        return None  # hours not declared: no promise, rather than "never open"
    return promise.NodeCalendar(
        node_id=node.node_id,
        timezone=node.timezone,
        operating_hours=node.operating_hours,
        holidays=node.holidays,
        cutoff_local=node.cutoff_local,
        pick_pack_minutes=node.pick_pack_minutes,
        capacity_orders_per_day=node.capacity_orders_per_day,
        capacity_units_per_day=node.capacity_units_per_day,
        used_orders=node.used_orders,
        used_units=node.used_units,
    )


class _Engine:
    """One decision: the order, what the network looks like, and memoised per-node facts."""

    def __init__(
        self,
        order: Order,
        snapshot: NetworkSnapshot,
        policy: PolicyDocument,
        now: datetime,
        destination: GeoPoint | None,
        excluded: Collection[str],
        pickup_node_id: str | None,
        facts: NetworkFacts | None = None,
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if facts is None:
            facts = NetworkFacts(snapshot, now, destination)
        elif not facts.fits(snapshot, now, destination):
            raise ValueError("facts were worked out for another snapshot, instant or destination")
        self.order = order
        self.snapshot = snapshot
        self.policy = policy
        self.now = now
        self.destination = destination
        self.excluded = frozenset(excluded)
        self.pickup_node_id = pickup_node_id
        self.nodes = {n.node_id: n for n in sorted(snapshot.nodes, key=lambda n: n.node_id)}
        self.need = order.quantities_by_sku()
        self.customer = snapshot.customer or CustomerView(customer_id=order.customer_id)
        self.method = Method.PICKUP if pickup_node_id is not None else Method.DELIVERY
        self.network_facts = facts

    # -- facts --------------------------------------------------------------------------------------------

    def sku(self, sku: str) -> SkuView:
        return self.snapshot.skus.get(sku) or SkuView(sku=sku)

    @cached_property
    def facts(self) -> OrderFacts:
        skus = [self.sku(line.sku) for line in self.order.lines]
        return OrderFacts(
            channel=self.order.channel,
            segment=self.customer.segment,
            tier=self.customer.tier,
            service_level=self.order.service_level,
            method=self.method,
            country=self.order.ship_to.country,
            region=self.order.ship_to.region,
            value_minor=self.order.total_minor,
            weight_g=sum(self.sku(line.sku).weight_g * line.quantity for line in self.order.lines),
            skus=frozenset(self.need),
            hazmat=any(s.hazmat for s in skus),
            oversize=any(s.oversize for s in skus),
            placed_at=self.order.placed_at,
        )

    # Per-node facts: the same for every run on this snapshot, instant and destination (``NetworkFacts``).

    def distance(self, node: NodeView) -> float | None:
        return self.network_facts.distance(node)

    def local_today(self, node: NodeView) -> date:
        return self.network_facts.local_today(node)

    def calendar(self, node: NodeView) -> promise.NodeCalendar | None:
        return self.network_facts.calendar(node)

    def ready_at(self, node: NodeView, start: datetime | None = None, units: int = 1) -> datetime | None:
        """When ``node`` has ``units`` units picked, received no earlier than ``start``: a day with room for them."""
        return self.network_facts.ready_at(node, start, units)


# --- selection -----------------------------------------------------------------------------------------------


def select_profile(policy: PolicyDocument, facts: OrderFacts, now: datetime) -> tuple[Profile, list[str]]:
    """The first profile that applies, and why each one above it did not."""
    skipped: list[str] = []
    for profile in policy.profiles:
        reason = profile.inactive_reason(now) or profile.when.mismatch(facts)
        if reason is None:
            return profile, skipped
        skipped.append(f"profile {profile.id}: {reason}")
    raise AssertionError("the last profile matches every order (PolicyDocument checks it)")  # pragma: no cover


def select_shipping(policy: PolicyDocument, facts: OrderFacts) -> _Shipping:
    rule: ShippingMethodRule | None = next((r for r in policy.shipping_methods if r.when.mismatch(facts) is None), None)
    return _Shipping(
        method=facts.method,
        level=rule.service_level if rule and rule.service_level else facts.service_level,
        carriers=tuple(rule.carriers) if rule else (),
        fastest=rule is not None and rule.choose is MethodChoice.FASTEST,
        rule=rule.id if rule else None,
    )


# --- the strategy run ----------------------------------------------------------------------------------------


class _StrategyRun:
    def __init__(self, engine: _Engine, strategy: Strategy, shipping: _Shipping) -> None:
        self.e = engine
        self.strategy = strategy
        self.filters = strategy.filters
        self.shipping = shipping
        self.verdicts: dict[str, CandidateVerdict] = {}
        self.usable: dict[str, dict[str, int]] = {}
        self._services: dict[tuple[str, int], CarrierServiceSpec | None] = {}
        self._promises: dict[
            tuple[str, datetime | None, int, int], tuple[datetime | None, datetime | None, date | None]
        ] = {}

    # -- filters ------------------------------------------------------------------------------------------

    def _node_filter(self, node: NodeView, *, role: Capability) -> tuple[str, str] | None:
        """The first filter that removes ``node`` for ``role`` (ship, pickup or transfer origin), with why."""
        f, e = self.filters, self.e
        customer = e.customer
        if node.node_id in e.excluded:
            return "excluded", "excluded after a failure there"
        if f.respect_customer_nodes and node.node_id in customer.excluded_node_ids:
            return "customer", f"customer {customer.customer_id} excludes this node"
        if f.respect_customer_nodes and customer.allowed_node_ids and node.node_id not in customer.allowed_node_ids:
            return "customer", f"not among customer {customer.customer_id}'s allowed nodes"
        if node.status is not NodeStatus.ACTIVE and not f.allow_paused:
            return "status", f"node is {node.status}"
        if f.node_kinds and node.kind not in f.node_kinds:
            return "kind", f"{node.kind} is not among {', '.join(f.node_kinds)}"
        required = {role, *(f.capabilities if role is not Capability.TRANSFER_ORIGIN else ())}
        missing = sorted(required - node.capabilities)
        if missing:
            return "capability", f"cannot {', '.join(missing)}"
        if f.countries and node.country not in f.countries:
            return "geography", f"country {node.country or 'unknown'} is not among {', '.join(f.countries)}"
        if f.regions and node.region not in f.regions:
            return "geography", f"region {node.region or 'unknown'} is not among {', '.join(f.regions)}"
        if f.same_country and role is not Capability.TRANSFER_ORIGIN and node.country != e.order.ship_to.country:
            return "geography", f"in {node.country or 'an unknown country'}, not {e.order.ship_to.country}"
        distance = e.distance(node)
        if (
            f.max_distance_km is not None
            and role is not Capability.TRANSFER_ORIGIN
            and distance is not None
            and distance > f.max_distance_km
        ):
            return "geography", f"{distance:.0f} km away, beyond {f.max_distance_km:.0f} km"
        for flag, present in ((Handling.HAZMAT, e.facts.hazmat), (Handling.OVERSIZE, e.facts.oversize)):
            kinds = f.handling.get(flag)
            if present and kinds is not None and node.kind not in kinds:
                return "handling", f"{flag} items only from {', '.join(kinds) or 'no node'}"
        if f.require_capacity:
            today = e.local_today(node)
            if node.orders_left(today) == 0:
                return "capacity", f"no order capacity left on {today.isoformat()}"
            if node.units_left(today) == 0:
                return "capacity", f"no unit capacity left on {today.isoformat()}"
        if role is Capability.SHIP and e.snapshot.carrier_services and self.service(node, 0) is None:
            zone = "?" if distance is None else zone_for(distance)
            return "carrier", f"no {self.shipping.level} carrier service for zone {zone}"
        return None

    def _usable(self, node: NodeView) -> dict[str, int]:
        """ATP per ordered SKU after safety stock, keeping only SKUs with at least ``min_atp`` usable."""
        safety = self.filters.safety_for(node.kind)
        usable = {sku: self.e.snapshot.atp_of(node.node_id, sku) - safety for sku in self.e.need}
        return {sku: units for sku, units in usable.items() if units >= self.filters.min_atp}

    def filter_nodes(self) -> list[NodeView]:
        """Ship-from candidates for a delivery (pickup: the pickup node only), each verdict recorded."""
        survivors: list[NodeView] = []
        for node in self.e.nodes.values():
            if self.e.method is Method.PICKUP and node.node_id != self.e.pickup_node_id:
                verdict: tuple[str, str] | None = ("method", "not the pickup node")
            else:
                role = Capability.PICKUP if self.e.method is Method.PICKUP else Capability.SHIP
                verdict = self._node_filter(node, role=role)
            usable = self._usable(node)
            self.usable[node.node_id] = usable
            # Only the node that can receive a transfer stays without stock of its own: the rest have nothing to give.
            receiver = self.receiving_node() if self.strategy.transfer is not None else None
            if verdict is None and not usable and (receiver is None or receiver.node_id != node.node_id):
                verdict = ("stock", f"no ordered SKU with {self.filters.min_atp}+ units after safety stock")
            if verdict is not None:
                self.verdicts[node.node_id] = CandidateVerdict(
                    node_id=node.node_id, eliminated_by=verdict[0], reason=verdict[1], distance_km=self.e.distance(node)
                )
            else:
                survivors.append(node)
        return survivors

    # -- costs and promises -------------------------------------------------------------------------------

    def service(self, node: NodeView, weight_g: int) -> CarrierServiceSpec | None:
        if self.e.method is Method.PICKUP or not self.e.snapshot.carrier_services:
            return None
        key = (node.node_id, weight_g)
        if key not in self._services:
            self._services[key] = self.e.network_facts.service(
                level=self.shipping.level,
                zone=self.e.network_facts.zone(node),
                weight_g=weight_g,
                carriers=self.shipping.carriers,
                fastest=self.shipping.fastest,
            )
        return self._services[key]

    def weight(self, take: Mapping[str, int]) -> int:
        return sum(self.e.sku(sku).weight_g * units for sku, units in take.items())

    def handling_minor(self, node: NodeView, units: int) -> int:
        costs = self.e.policy.costs
        return (
            costs.handling_per_shipment_minor.get(node.kind, 0)
            + costs.handling_per_unit_minor.get(node.kind, 0) * units
        )

    def lane(self, origin: str, destination: str) -> TransferLaneSpec | None:
        return next(
            (
                lane
                for lane in self.e.snapshot.lanes
                if lane.origin_node_id == origin and lane.destination_node_id == destination
            ),
            None,
        )

    def arrival(self, origin: NodeView, destination: NodeView) -> datetime | None:
        lane = self.lane(origin.node_id, destination.node_id)
        if lane is None:
            return None
        ready = self.e.ready_at(origin) or self.e.now
        calendar = self.e.calendar(origin)
        if calendar is None:
            return ready + timedelta(hours=lane.transit_hours)
        return promise.transfer_arrival(
            calendar,
            ready,
            transit_hours=lane.transit_hours,
            departure_days=list(lane.departure_days),
            departure_local=lane.departure_local,
        )

    def part_cost(self, part: _Part) -> int:
        moved = {sku: 0 for _, sku, _ in part.transfers}
        for _, sku, units in part.transfers:
            moved[sku] += units
        total_take = {sku: part.take.get(sku, 0) + moved.get(sku, 0) for sku in {*part.take, *moved}}
        units = sum(total_take.values())
        weight = self.weight(total_take)
        cost = self.handling_minor(part.node, units)
        service = self.service(part.node, weight)
        if service is not None:
            cost += parcel_rate_minor(service, self.e.network_facts.zone(part.node), weight)
        origins = {origin.node_id for origin, _, _ in part.transfers}
        for origin_id in sorted(origins):
            lane = self.lane(origin_id, part.node.node_id)
            cost += lane.cost_minor if lane else 0
        return cost

    def part_promise(self, part: _Part) -> tuple[datetime | None, datetime | None, date | None]:
        arrivals = [self.arrival(origin, part.node) for origin, _, _ in part.transfers]
        start = max((a for a in arrivals if a is not None), default=None)
        units = max(1, sum(part.take.values()) + sum(u for _, _, u in part.transfers))
        moved_weight = sum(self.e.sku(sku).weight_g * moved for _, sku, moved in part.transfers)
        weight = self.weight(part.take) + moved_weight
        # Within a run the promise depends on nothing else: the same node, start, units and weight, the same answer.
        key = (part.node.node_id, start, units, weight)
        if key not in self._promises:
            self._promises[key] = self._promise(part.node, start, units, weight)
        return self._promises[key]

    def _promise(
        self, node: NodeView, start: datetime | None, units: int, weight_g: int
    ) -> tuple[datetime | None, datetime | None, date | None]:
        ready = self.e.ready_at(node, start, units)
        if ready is None or self.e.method is Method.PICKUP:
            return ready, None, None
        service = self.service(node, weight_g)
        if service is None:
            return ready, None, None
        ship, deliver = self.e.network_facts.shipped(node, ready, service)
        return ready, ship, deliver

    # -- ranking ------------------------------------------------------------------------------------------

    def _promised_days(self, parts: Sequence[_Part]) -> int:
        """Days from the node's local today to the latest promised date of ``parts`` (both local days at the
        node, as the customer is promised them); an unknown promise counts as never."""
        latest = 0
        for part in parts:
            ready, _, deliver = self.part_promise(part)
            pickup = self.e.method is Method.PICKUP
            when = ready.astimezone(ZoneInfo(part.node.timezone)).date() if pickup and ready else deliver
            latest = max(latest, (when - self.e.local_today(part.node)).days if when else UNKNOWN_PROMISE_DAYS)
        return latest

    def _priority(self, step: NodePriority, node: NodeView) -> int:
        if not step.tiers:
            return node.priority
        return next((i for i, tier in enumerate(step.tiers) if node.node_id in tier), len(step.tiers))

    def _cover_left(self, part: _Part) -> float:
        shares = [
            (self.usable[part.node.node_id].get(sku, 0) - units) / max(1, self.usable[part.node.node_id].get(sku, 0))
            for sku, units in part.take.items()
            if units
        ]
        return min(shares, default=1.0)

    def _headroom(self, node: NodeView) -> float:
        today = self.e.local_today(node)
        left, limit = node.orders_left(today), node.capacity_orders_per_day
        return 1.0 if left is None or not limit else left / limit

    def _metric(self, step: RankStep, parts: Sequence[_Part], *, units: int, cost: int) -> float | int:
        home = self.e.customer.home_node_id
        if isinstance(step, HomeBranch):
            return (
                0
                if home is None
                else sum(
                    sum(p.take.values()) + sum(u for _, _, u in p.transfers) for p in parts if p.node.node_id != home
                )
            )
        if isinstance(step, NodePriority):
            return max((self._priority(step, p.node) for p in parts), default=0)
        if isinstance(step, Distance):
            farthest = max((self.e.distance(p.node) or 0.0 for p in parts), default=0.0)
            return int(farthest // step.bucket_km) if step.bucket_km else farthest
        if isinstance(step, DeliverySpeed):
            return self._promised_days(parts)
        if isinstance(step, TotalCost):
            return cost // step.tolerance_minor if step.tolerance_minor else cost
        if isinstance(step, FewestShipments):
            return len(parts)
        if isinstance(step, InventoryBalance):
            return -round(min((self._cover_left(p) for p in parts), default=1.0), 3)
        if isinstance(step, CapacityHeadroom):
            return -round(min((self._headroom(p.node) for p in parts), default=1.0), 3)
        raise AssertionError(f"unknown ranking step {step!r}")  # pragma: no cover

    def plan_key(self, draft: _Draft) -> tuple[object, ...]:
        cost = sum(self.part_cost(p) for p in draft.parts)
        units = sum(sum(p.take.values()) for p in draft.parts)
        metrics = tuple(self._metric(s, draft.parts, units=units, cost=cost) for s in self.strategy.ranking)
        return (draft.units_backordered, *metrics, tuple(p.node.node_id for p in draft.parts))

    def node_scores(self, node: NodeView, remaining: Mapping[str, int]) -> tuple[tuple[float | int, ...], int]:
        """How good ``node`` is as the next source of ``remaining`` units: per-step scores, and units it gives.

        The same steps as for whole plans, read for one partial shipment: covering more counts for
        ``fewest_shipments``, and cost counts per unit supplied so a node is not preferred for supplying little.
        """
        take = {sku: min(units, self.usable[node.node_id].get(sku, 0)) for sku, units in remaining.items()}
        take = {sku: units for sku, units in take.items() if units > 0}
        supplied = sum(take.values())
        part = _Part(node=node, take=take)
        scores: list[float | int] = []
        for step in self.strategy.ranking:
            if isinstance(step, FewestShipments):
                scores.append(-supplied)
            elif isinstance(step, TotalCost):
                per_unit = self.part_cost(part) / max(1, supplied)
                scores.append(per_unit // step.tolerance_minor if step.tolerance_minor else round(per_unit, 2))
            elif isinstance(step, HomeBranch):
                scores.append(0 if node.node_id == self.e.customer.home_node_id else 1)
            else:
                scores.append(self._metric(step, [part], units=supplied, cost=0))
        return tuple(scores), supplied

    # -- candidate plans ----------------------------------------------------------------------------------

    def singles(self, nodes: Sequence[NodeView]) -> list[_Draft]:
        return [
            _Draft([_Part(node=n, take=dict(self.e.need))])
            for n in nodes
            if all(self.usable[n.node_id].get(sku, 0) >= units for sku, units in self.e.need.items())
        ]

    def greedy(self, nodes: Sequence[NodeView], limit: int) -> _Draft:
        """Repeatedly take the best-ranked node for what is still missing, up to ``limit`` shipments."""
        remaining = dict(self.e.need)
        parts: list[_Part] = []
        pool = list(nodes)
        while pool and len(parts) < limit and any(remaining.values()):
            scored = []
            for node in pool:
                scores, supplied = self.node_scores(node, remaining)
                if supplied:
                    scored.append((scores, node.node_id, node))
            if not scored:
                break
            _, _, best = min(scored, key=lambda item: (item[0], item[1]))
            take = {s: min(u, self.usable[best.node_id].get(s, 0)) for s, u in remaining.items()}
            take = {s: u for s, u in take.items() if u > 0}
            parts.append(_Part(node=best, take=take))
            for sku, units in take.items():
                remaining[sku] -= units
            pool.remove(best)
        return _Draft(parts, backordered={s: u for s, u in remaining.items() if u > 0})

    def receiving_node(self) -> NodeView | None:
        target = self.e.pickup_node_id if self.e.method is Method.PICKUP else self.e.customer.home_node_id
        return None if target is None else self.e.nodes.get(target)

    def transfer(self, survivors: Sequence[NodeView]) -> tuple[_Draft | None, str]:
        """Consolidate into the receiving node: what it has, plus the rest moved in over lanes in time."""
        policy = self.strategy.transfer
        receiver = self.receiving_node()
        if policy is None:
            return None, "no transfer policy"
        if receiver is None or receiver not in survivors:
            return None, "no receiving node (pickup node or home branch) among the candidates"
        if Capability.TRANSFER_DESTINATION not in receiver.capabilities:
            return None, f"{receiver.node_id} cannot receive transfers"
        own = {s: min(u, self.usable[receiver.node_id].get(s, 0)) for s, u in self.e.need.items()}
        missing = {s: u - own[s] for s, u in self.e.need.items() if u > own[s]}
        if not missing:
            return None, f"{receiver.node_id} has everything: no transfer needed"
        deadline = self.e.now + timedelta(hours=policy.max_hours)
        origins: list[tuple[datetime, int, str, NodeView]] = []
        for node in self.e.nodes.values():
            if node.node_id == receiver.node_id or self._node_filter(node, role=Capability.TRANSFER_ORIGIN):
                continue
            lane = self.lane(node.node_id, receiver.node_id)
            arrives = self.arrival(node, receiver) if lane else None
            if lane is not None and arrives is not None and arrives <= deadline:
                origins.append((arrives, lane.cost_minor, node.node_id, node))
        moves: list[tuple[NodeView, str, int]] = []
        used: list[str] = []
        for _, _, node_id, node in sorted(origins, key=lambda o: (o[0], o[1], o[2])):
            if not any(missing.values()) or len(used) >= policy.max_origins:
                break
            usable = self._usable(node)
            self.usable.setdefault(node_id, usable)
            moved = False
            for sku in sorted(missing):
                units = min(missing[sku], usable.get(sku, 0))
                if units > 0:
                    moves.append((node, sku, units))
                    missing[sku] -= units
                    moved = True
            if moved:
                used.append(node_id)
        if any(missing.values()):
            short = ", ".join(f"{s} short by {u}" for s, u in sorted(missing.items()) if u)
            return None, f"transfers arriving within {policy.max_hours} h cannot cover {short}"
        take = {s: u for s, u in own.items() if u > 0}
        return _Draft([_Part(node=receiver, take=take, transfers=tuple(moves))], origin="transfer"), ""

    def optimise(self, nodes: Sequence[NodeView], start: _Draft | None) -> tuple[_Draft | None, OptimizerReport]:
        """The minimum-cost assignment, starting from the best rule plan (``start``) so that an answer cut short
        by the time budget is never worse than what the ranking would have chosen."""
        e = self.e
        offers = []
        for node in nodes:
            distance = e.distance(node) or 0.0
            zone = zone_for(distance)
            service = self.service(node, 0)
            base = service.rate_by_zone[zone].base_minor if service else 0
            per_unit_handling = e.policy.costs.handling_per_unit_minor.get(node.kind, 0)
            offers.append(
                optimizer.NodeOffer(
                    node_id=node.node_id,
                    atp=self.usable[node.node_id],
                    shipment_cost=base + e.policy.costs.handling_per_shipment_minor.get(node.kind, 0),
                    unit_cost={
                        sku: per_unit_handling + (per_unit_rate(service, zone, e.sku(sku).weight_g) if service else 0)
                        for sku in e.need
                    },
                    # ``require_capacity: false`` ignores today's capacity, as the filter does for the rules.
                    max_units=node.units_left(e.local_today(node)) if self.filters.require_capacity else None,
                )
            )
        problem = optimizer.AssignmentProblem(
            lines=[optimizer.LineDemand(line.line_id, line.sku, line.quantity) for line in e.order.lines],
            nodes=offers,
            max_shipments=self.strategy.split.limit,
            backorder_cost_per_unit=(
                float(e.policy.costs.backorder_per_unit_minor)
                if self.strategy.split.mode is SplitMode.SHIP_AVAILABLE
                else None
            ),
        )
        budget_s = self.strategy.time_budget_ms / 1000
        hint = self._assignments(start) if start is not None and not any(p.transfers for p in start.parts) else []
        try:
            result = optimizer.solve(problem, time_limit_s=budget_s, start=hint)
        except ValueError:  # the rule plan breaks a constraint the optimizer keeps (today's unit capacity)
            result = optimizer.solve(problem, time_limit_s=budget_s)
        report = OptimizerReport(
            status=result.status.value,
            objective=result.objective,
            bound=result.bound,
            solve_ms=round(result.solve_ms, 1),
            budget_ms=self.strategy.time_budget_ms,
        )
        if result.status not in (optimizer.SolveStatus.OPTIMAL, optimizer.SolveStatus.FEASIBLE):
            return None, report
        by_node: dict[str, dict[str, int]] = {}
        for assignment in result.assignments:
            sku = next(line.sku for line in e.order.lines if line.line_id == assignment.line_id)
            take = by_node.setdefault(assignment.node_id, {})
            take[sku] = take.get(sku, 0) + assignment.quantity
        parts = [_Part(node=e.nodes[node_id], take=take) for node_id, take in sorted(by_node.items())]
        backordered: dict[str, int] = {}
        for line_id, units in result.backordered.items():
            if units:
                sku = next(line.sku for line in e.order.lines if line.line_id == line_id)
                backordered[sku] = backordered.get(sku, 0) + units
        return _Draft(parts, backordered=backordered, origin="optimizer"), report

    def _assignments(self, draft: _Draft) -> list[optimizer.Assignment]:
        queues = _line_queues(self.e.order)
        return [
            optimizer.Assignment(line_id=a.line_id, node_id=a.node_id, quantity=a.quantity)
            for part in draft.parts
            for a in _allocate_lines(queues, part.node.node_id, part.take)
        ]

    # -- the run ------------------------------------------------------------------------------------------

    def shortfall(self, survivors: Sequence[NodeView]) -> dict[str, int]:
        supply = {sku: sum(self.usable[n.node_id].get(sku, 0) for n in survivors) for sku in self.e.need}
        return {sku: units - supply[sku] for sku, units in self.e.need.items() if units > supply[sku]}

    def run(self) -> tuple[_Draft, list[CandidateVerdict], OptimizerReport | None, str]:
        survivors = self.filter_nodes()
        split = self.strategy.split
        drafts: list[_Draft] = self.singles(survivors)
        notes: list[str] = []
        report: OptimizerReport | None = None
        partial_ok = split.mode is SplitMode.SHIP_AVAILABLE
        if self.e.method is Method.DELIVERY and (split.limit > 1 or partial_ok):
            greedy = self.greedy(survivors, split.limit)
            if greedy.parts and (not greedy.backordered or partial_ok):
                drafts.append(greedy)
        transfer, why_not = self.transfer(survivors)
        if transfer is not None:
            drafts.append(transfer)
        elif self.strategy.transfer is not None:
            notes.append(f"transfer: {why_not}")
        if self.e.method is Method.PICKUP and partial_ok and survivors:
            drafts.append(self.greedy(survivors, 1))
        drafts = [d for d in drafts if d.parts]
        best = min(drafts, key=self.plan_key) if drafts else None
        if self.strategy.engine is Engine.OPTIMIZER and self.e.method is Method.DELIVERY and survivors:
            chosen, report = self.optimise(survivors, best)
            if chosen is not None:
                return chosen, self._ranked_verdicts(survivors), report, "; ".join(notes)
            if report.status == optimizer.SolveStatus.INFEASIBLE.value:
                raise _StrategyFailed(
                    f"the optimizer proved no assignment within {split.limit} shipment(s)",
                    self.shortfall(survivors) or self._split_shortfall(survivors),
                )
            notes.append(f"optimizer: {report.status} within {report.budget_ms} ms, ranking decided")
        if best is None:
            shortfall = self.shortfall(survivors)
            if split.mode is SplitMode.NEVER:
                reason = "no single node can fill the whole order"
            elif shortfall:
                reason = "not enough stock at eligible nodes: " + ", ".join(
                    f"{s} short by {u}" for s, u in sorted(shortfall.items())
                )
            else:
                reason = f"cannot cover the order within {split.limit} shipment(s)"
            # What was tried on the way (a refused transfer, an optimizer out of time) says why, too.
            reason = "; ".join([reason, *notes])
            raise _StrategyFailed(reason, shortfall or self._split_shortfall(survivors))
        return best, self._ranked_verdicts(survivors), report, "; ".join(notes)

    def _split_shortfall(self, survivors: Sequence[NodeView]) -> dict[str, int]:
        draft = self.greedy(survivors, self.strategy.split.limit)
        return draft.backordered

    def _ranked_verdicts(self, survivors: Sequence[NodeView]) -> list[CandidateVerdict]:
        scored = []
        for node in survivors:
            scores, supplied = self.node_scores(node, self.e.need)
            scored.append((scores, node.node_id, node, supplied))
        scored.sort(key=lambda item: (item[0], item[1]))
        names = [s.step for s in self.strategy.ranking]
        ranked = []
        for rank, (scores, node_id, node, supplied) in enumerate(scored, start=1):
            values: dict[str, float | int | None] = dict(zip(names, scores, strict=True))
            values["units_available"] = supplied
            ranked.append(
                CandidateVerdict(node_id=node_id, distance_km=self.e.distance(node), rank=rank, scores=values)
            )
        return ranked


# --- the entry point -----------------------------------------------------------------------------------------


def plan(
    order: Order,
    snapshot: NetworkSnapshot,
    policy: PolicyDocument,
    now: datetime,
    *,
    destination: GeoPoint | None,
    attempt: int = 1,
    excluded_nodes: Collection[str] = (),
    policy_version: str = BUILTIN_VERSION,
    pickup_node_id: str | None = None,
    network_facts: NetworkFacts | None = None,
) -> Plan:
    """Decide where each line comes from, by which method, at what cost and promise, and record why.

    ``network_facts``: per-node facts to share with other runs on the same ``snapshot`` (the same object), ``now`` and
    ``destination`` (``NetworkFacts``; a ``ValueError`` for others); without them the run works its own out.
    They only save time: a plan is the same with or without them.

    Raises ``OutOfStock`` (details: units short per SKU) when no strategy of the chosen profile can place it.
    """
    engine = _Engine(order, snapshot, policy, now, destination, excluded_nodes, pickup_node_id, network_facts)
    profile, considered = select_profile(policy, engine.facts, now)
    shipping = select_shipping(policy, engine.facts)
    failures: list[_StrategyFailed] = []
    for strategy in profile.strategies:
        run = _StrategyRun(engine, strategy, shipping)
        try:
            draft, ranked, report, notes = run.run()
        except _StrategyFailed as failed:
            failures.append(failed)
            considered.append(f"strategy {strategy.id}: {failed.reason}")
            continue
        return _build_plan(engine, run, draft, ranked, report, notes, profile, considered, attempt, policy_version)
    shortfall = failures[0].shortfall if failures else {}
    reasons = "; ".join(f"{s.id}: {f.reason}" for s, f in zip(profile.strategies, failures, strict=True))
    raise OutOfStock(f"no strategy of profile {profile.id} can place the order ({reasons})", details=shortfall)


def _build_plan(
    engine: _Engine,
    run: _StrategyRun,
    draft: _Draft,
    ranked: list[CandidateVerdict],
    report: OptimizerReport | None,
    notes: str,
    profile: Profile,
    considered: list[str],
    attempt: int,
    policy_version: str,
) -> Plan:
    order = engine.order
    shipments: list[PlannedShipment] = []
    remaining_lines = _line_queues(order)
    for part in sorted(draft.parts, key=lambda p: p.node.node_id):
        allocations = _allocate_lines(remaining_lines, part.node.node_id, part.take)
        transfers: list[InboundTransfer] = []
        for origin, sku, units in part.transfers:
            allocations += _allocate_lines(remaining_lines, origin.node_id, {sku: units})
            lane = run.lane(origin.node_id, part.node.node_id)
            transfers.append(
                InboundTransfer(
                    origin_node_id=origin.node_id,
                    sku=sku,
                    quantity=units,
                    cost_minor=lane.cost_minor if lane else 0,
                    arrives_at=run.arrival(origin, part.node),
                )
            )
        # In the order's line order, then from the shipping node before the nodes transferring into it.
        line_order = {line.line_id: index for index, line in enumerate(order.lines)}
        allocations.sort(key=lambda a: (line_order[a.line_id], a.node_id != part.node.node_id, a.node_id))
        weight = sum(engine.sku(a.sku).weight_g * a.quantity for a in allocations)
        service = run.service(part.node, weight)
        distance = engine.distance(part.node)
        ready, ship, deliver = run.part_promise(part)
        shipments.append(
            PlannedShipment(
                shipment_id=shipment_id(order.order_id, attempt, part.node.node_id),
                node_id=part.node.node_id,
                allocations=allocations,
                distance_km=distance,
                method=engine.method,
                service_level=run.shipping.level if engine.method is Method.DELIVERY else None,
                carrier=service.carrier if service else None,
                carrier_service_id=service.service_id if service else None,
                zone=zone_for(distance) if distance is not None and engine.method is Method.DELIVERY else None,
                cost_minor=run.part_cost(part),
                shipping_minor=(
                    parcel_rate_minor(service, zone_for(distance or 0.0), weight)
                    if service is not None and engine.method is Method.DELIVERY
                    else 0
                ),
                ready_by=ready,
                ship_by=ship,
                timezone=part.node.timezone,
                deliver_by=deliver,
                transfers_in=transfers,
            )
        )
    backorders = [
        Backorder(line_id=line_id, sku=sku, quantity=units)
        for sku, queue in remaining_lines.items()
        for line_id, units in queue
        if units > 0
    ]
    eliminated = [v for v in run.verdicts.values()]
    counts: dict[str, int] = {}
    for verdict in eliminated:
        counts[verdict.eliminated_by or "?"] = counts.get(verdict.eliminated_by or "?", 0) + 1
    candidates = (ranked + sorted(eliminated, key=lambda v: v.node_id))[:MAX_EXPLAINED_CANDIDATES]
    strategy = run.strategy
    steps = [s.step for s in strategy.ranking]
    return Plan(
        plan_id=plan_id(order.order_id, attempt),
        attempt=attempt,
        shipments=shipments,
        backorders=backorders,
        method=engine.method,
        service_level=run.shipping.level,
        cost_minor=sum(s.cost_minor for s in shipments),
        explanation=Explanation(
            rule=f"{profile.id}/{strategy.id}",
            policy_version=policy_version,
            profile=profile.id,
            strategy=strategy.id,
            engine=draft.origin if draft.origin != "transfer" else Engine.RULES.value,
            ranking=steps,
            considered=[*considered, *([notes] if notes else [])],
            candidates=sorted(candidates, key=lambda v: v.node_id),
            candidates_total=len(ranked) + len(eliminated),
            eliminated_by_filter=dict(sorted(counts.items())),
            optimizer=report,
            decision=_decision(engine, run, draft, shipments, backorders, report),
        ),
    )


def _line_queues(order: Order) -> dict[str, list[tuple[str, int]]]:
    queues: dict[str, list[tuple[str, int]]] = {}
    for line in order.lines:
        queues.setdefault(line.sku, []).append((line.line_id, line.quantity))
    return queues


def _allocate_lines(
    queues: dict[str, list[tuple[str, int]]], node_id: str, take: Mapping[str, int]
) -> list[Allocation]:
    """Turn units per SKU at a node into allocations per order line, filling lines in order."""
    allocations: list[Allocation] = []
    for sku in sorted(take):
        units = take[sku]
        queue = queues[sku]
        for index, (line_id, left) in enumerate(queue):
            if units == 0:
                break
            used = min(units, left)
            if used:
                allocations.append(Allocation(line_id=line_id, sku=sku, node_id=node_id, quantity=used))
                queue[index] = (line_id, left - used)
                units -= used
    return allocations


def _decision(
    engine: _Engine,
    run: _StrategyRun,
    draft: _Draft,
    shipments: Sequence[PlannedShipment],
    backorders: Sequence[Backorder],
    report: OptimizerReport | None,
) -> str:
    nodes = ", ".join(s.node_id for s in shipments)
    steps = " > ".join(s.step for s in run.strategy.ranking)
    if draft.origin == "optimizer" and report is not None:
        proven = "proven minimum cost" if report.status == optimizer.SolveStatus.OPTIMAL.value else "best found"
        text = f"optimizer chose {nodes} ({proven}, {report.solve_ms:.0f} ms)"
    elif draft.origin == "transfer":
        origins = sorted({t.origin_node_id for s in shipments for t in s.transfers_in})
        text = f"consolidate at {nodes} with stock transferred from {', '.join(origins)}"
    elif len(shipments) == 1:
        text = f"{nodes} fills the order and ranks first by {steps}"
    else:
        text = f"split across {nodes}: no better plan by {steps}"
    if engine.destination is None and any(isinstance(s, Distance) for s in run.strategy.ranking):
        text += " (destination not located, so distance was not used)"
    if backorders:
        text += "; backordered: " + ", ".join(f"{b.quantity} x {b.sku}" for b in backorders)
    return text


__all__ = [
    "Allocation",
    "Backorder",
    "CandidateVerdict",
    "Explanation",
    "InboundTransfer",
    "NetworkFacts",
    "OptimizerReport",
    "Plan",
    "PlannedShipment",
    "plan",
    "plan_id",
    "select_profile",
    "select_shipping",
    "shipment_id",
]
