"""The sourcing policy language: what the business decides about routing, as a versioned document.

A policy is data an admin edits (JSON or YAML), validated here before it can be stored, and immutable once
stored as a version. It reads top to bottom:

- ``profiles`` in order; the first whose ``when`` matches the order, within its effective window, is used. The
  last profile must match everything at any time, so every order has a policy.
- Each profile has ``strategies``: the primary first, then fallbacks tried when a strategy cannot place the
  order. A strategy is ``filters`` (which nodes may serve), ``ranking`` (ordered steps, each a tie-breaker of the
  previous), a ``split`` policy, an optional ``transfer`` policy, and the ``engine`` (the rule ranking, or the
  exact optimizer under a time budget, which falls back to the ranking when the budget runs out).
- ``shipping_methods``: the first matching rule sets the service level and the carriers allowed.
- ``costs``: handling cost per node kind, used by the ``total_cost`` step and the optimizer alike.

``docs/rules.md`` documents the language with worked examples; ``PolicyDocument.model_json_schema()`` is what
the rules API publishes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from domain.network import Capability, CountryCode, CustomerSegment, NodeKind, TierId
from domain.orders import Channel, NodeId, ServiceLevel, Sku

POLICY_SCHEMA_VERSION: Final = 1

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Region = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Minor = Annotated[int, Field(ge=0, le=2**53)]
Units = Annotated[int, Field(ge=0, le=1_000_000)]


class Method(StrEnum):
    """How the customer receives the order: delivered to an address, or collected at a node."""

    DELIVERY = "delivery"
    PICKUP = "pickup"


class Handling(StrEnum):
    HAZMAT = "hazmat"
    OVERSIZE = "oversize"


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _unique(values: Iterable[object], what: str) -> None:
    seen: set[object] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


# --- selection -------------------------------------------------------------------------------------------


class OrderFacts(BaseModel):
    """What selectors look at, gathered once per order (by the engine, from the order and the network)."""

    model_config = ConfigDict(frozen=True)

    channel: Channel
    segment: CustomerSegment
    tier: str | None
    service_level: ServiceLevel
    method: Method
    country: str
    region: str
    value_minor: int
    weight_g: int
    skus: frozenset[str]
    hazmat: bool
    oversize: bool
    placed_at: datetime


class Selector(_Doc):
    """Conditions on the order; every condition given must hold, and a list matches any of its members."""

    channels: list[Channel] = Field(default_factory=list)
    segments: list[CustomerSegment] = Field(default_factory=list)
    tiers: list[TierId] = Field(default_factory=list)
    service_levels: list[ServiceLevel] = Field(default_factory=list)
    methods: list[Method] = Field(default_factory=list)
    countries: list[CountryCode] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    skus_any: list[Sku] = Field(default_factory=list)
    hazmat: bool | None = None
    oversize: bool | None = None
    min_value_minor: Minor | None = None
    max_value_minor: Minor | None = None
    min_weight_g: Units | None = None
    max_weight_g: Units | None = None
    placed_from: AwareDatetime | None = None
    placed_until: AwareDatetime | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Selector:
        for low, high in (("min_value_minor", "max_value_minor"), ("min_weight_g", "max_weight_g")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:
                raise ValueError(f"{low} ({a}) is above {high} ({b})")
        if self.placed_from and self.placed_until and self.placed_from >= self.placed_until:
            raise ValueError("placed_from must come before placed_until")
        return self

    @property
    def is_catch_all(self) -> bool:
        return self == Selector()

    def mismatch(self, facts: OrderFacts) -> str | None:
        """Why the order does not match (the first failing condition), or None when it does."""
        checks: list[tuple[bool, str]] = [
            (not self.channels or facts.channel in self.channels, f"channel {facts.channel} not in the list"),
            (not self.segments or facts.segment in self.segments, f"segment {facts.segment} not in the list"),
            (not self.tiers or facts.tier in self.tiers, f"tier {facts.tier or 'none'} not in the list"),
            (
                not self.service_levels or facts.service_level in self.service_levels,
                f"service level {facts.service_level} not in the list",
            ),
            (not self.methods or facts.method in self.methods, f"method {facts.method} not in the list"),
            (not self.countries or facts.country in self.countries, f"country {facts.country} not in the list"),
            (not self.regions or facts.region in self.regions, f"region {facts.region} not in the list"),
            (not self.skus_any or bool(facts.skus & set(self.skus_any)), "none of the listed SKUs ordered"),
            (self.hazmat is None or facts.hazmat == self.hazmat, f"hazmat is {facts.hazmat}"),
            (self.oversize is None or facts.oversize == self.oversize, f"oversize is {facts.oversize}"),
            (
                self.min_value_minor is None or facts.value_minor >= self.min_value_minor,
                f"value {facts.value_minor} below {self.min_value_minor}",
            ),
            (
                self.max_value_minor is None or facts.value_minor <= self.max_value_minor,
                f"value {facts.value_minor} above {self.max_value_minor}",
            ),
            (
                self.min_weight_g is None or facts.weight_g >= self.min_weight_g,
                f"weight {facts.weight_g} g below {self.min_weight_g} g",
            ),
            (
                self.max_weight_g is None or facts.weight_g <= self.max_weight_g,
                f"weight {facts.weight_g} g above {self.max_weight_g} g",
            ),
            (
                self.placed_from is None or facts.placed_at >= self.placed_from,
                f"placed before {self.placed_from}",
            ),
            (
                self.placed_until is None or facts.placed_at < self.placed_until,
                f"placed at or after {self.placed_until}",
            ),
        ]
        return next((reason for ok, reason in checks if not ok), None)


# --- filters ---------------------------------------------------------------------------------------------


class Filters(_Doc):
    """Which nodes may serve. The method's own capability (ship, or pickup at the pickup node) always applies."""

    node_kinds: list[NodeKind] = Field(default_factory=list)
    capabilities: list[Capability] = Field(default_factory=list)
    # Paused nodes are never used unless a policy says so (e.g. a drain-down that still ships backlog).
    allow_paused: bool = False
    # A node with no order or unit capacity left today is skipped.
    require_capacity: bool = True
    countries: list[CountryCode] = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    same_country: bool = False
    max_distance_km: float | None = Field(default=None, gt=0)
    # Handling restriction: an order with hazmat / oversize items may only come from these node kinds.
    handling: dict[Handling, list[NodeKind]] = Field(default_factory=dict)
    respect_customer_nodes: bool = True
    # Units each node keeps back from sourcing (by node kind, else the default), and the least a node must
    # have left for a line after that, to be considered for the line at all.
    safety_stock: Units = 0
    safety_stock_by_kind: dict[NodeKind, Units] = Field(default_factory=dict)
    min_atp: Annotated[int, Field(ge=1, le=1_000_000)] = 1

    def safety_for(self, kind: NodeKind) -> int:
        return self.safety_stock_by_kind.get(kind, self.safety_stock)


# --- ranking ---------------------------------------------------------------------------------------------


class HomeBranch(_Doc):
    """Prefer shipping from the customer's home branch: fewer units from elsewhere ranks first."""

    step: Literal["home_branch"]


class NodePriority(_Doc):
    """Explicit priority: ``tiers`` lists node ids, best tier first (unlisted nodes come after every tier);
    without tiers, the node's own ``priority`` (lower first). A plan ranks by its worst node."""

    step: Literal["node_priority"]
    tiers: list[list[NodeId]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _each_node_once(self) -> NodePriority:
        _unique((n for tier in self.tiers for n in tier), "node in priority tiers")
        return self


class Distance(_Doc):
    """Nearer first, by the farthest shipment. With ``bucket_km``, distances in the same bucket tie, so later
    steps decide between nodes that are about as near."""

    step: Literal["distance"]
    bucket_km: float | None = Field(default=None, gt=0)


class DeliverySpeed(_Doc):
    """Sooner first: the latest promised date of the plan (deliver-by, or ready-by for a pickup)."""

    step: Literal["delivery_speed"]


class TotalCost(_Doc):
    """Cheaper first: carrier rates, handling per node kind and transfer costs. ``tolerance_minor`` ties
    plans within that much of each other."""

    step: Literal["total_cost"]
    tolerance_minor: Minor = 0


class FewestShipments(_Doc):
    step: Literal["fewest_shipments"]


class InventoryBalance(_Doc):
    """Prefer nodes with more cover: the plan leaving the largest smallest share of ATP behind ranks first."""

    step: Literal["inventory_balance"]


class CapacityHeadroom(_Doc):
    """Prefer nodes with more of today's order capacity left (unlimited counts as all of it)."""

    step: Literal["capacity_headroom"]


RankStep = Annotated[
    HomeBranch
    | NodePriority
    | Distance
    | DeliverySpeed
    | TotalCost
    | FewestShipments
    | InventoryBalance
    | CapacityHeadroom,
    Field(discriminator="step"),
]


# --- split, transfer, engine -----------------------------------------------------------------------------


class SplitMode(StrEnum):
    NEVER = "never"  # one node has everything, or the strategy fails
    ALLOWED = "allowed"  # up to max_shipments nodes, or the strategy fails
    SHIP_AVAILABLE = "ship_available"  # up to max_shipments nodes, and what they cannot cover is backordered


class SplitPolicy(_Doc):
    mode: SplitMode = SplitMode.ALLOWED
    max_shipments: Annotated[int, Field(ge=1, le=50)] = 3

    @model_validator(mode="before")
    @classmethod
    def _never_means_one(cls, data: object) -> object:
        # Normalised to 1 (not left at the default 3), so the stored form of a valid document validates again.
        if isinstance(data, dict) and data.get("mode") == SplitMode.NEVER:
            if data.get("max_shipments", 1) != 1:
                raise ValueError("split mode 'never' means one shipment: leave max_shipments out or set it to 1")
            return {**data, "max_shipments": 1}
        return data

    @property
    def limit(self) -> int:
        return 1 if self.mode is SplitMode.NEVER else self.max_shipments


class TransferPolicy(_Doc):
    """When the receiving node (the pickup node, else the customer's home branch) is short, move the missing
    units into it from other nodes over transfer lanes, if they arrive within ``max_hours``; the order then
    leaves from that node as one shipment."""

    max_hours: Annotated[int, Field(ge=1, le=24 * 60)] = 48
    max_origins: Annotated[int, Field(ge=1, le=10)] = 2


class Engine(StrEnum):
    RULES = "rules"
    OPTIMIZER = "optimizer"


class Strategy(_Doc):
    id: RuleId
    description: str = ""
    engine: Engine = Engine.RULES
    # The optimizer's budget; when it runs out without an answer, the ranking below decides.
    time_budget_ms: Annotated[int, Field(ge=10, le=60_000)] = 500
    filters: Filters = Filters()
    ranking: list[RankStep] = Field(min_length=1)
    split: SplitPolicy = SplitPolicy()
    transfer: TransferPolicy | None = None

    @model_validator(mode="after")
    def _each_step_once(self) -> Strategy:
        _unique((s.step for s in self.ranking), "ranking step")
        return self


class Profile(_Doc):
    id: RuleId
    description: str = ""
    when: Selector = Selector()
    effective_from: AwareDatetime | None = None
    effective_until: AwareDatetime | None = None
    strategies: list[Strategy] = Field(min_length=1, max_length=10)

    @model_validator(mode="after")
    def _checks(self) -> Profile:
        if self.effective_from and self.effective_until and self.effective_from >= self.effective_until:
            raise ValueError("effective_from must come before effective_until")
        _unique((s.id for s in self.strategies), "strategy id")
        return self

    @property
    def is_catch_all(self) -> bool:
        return self.when.is_catch_all and self.effective_from is None and self.effective_until is None

    def inactive_reason(self, now: datetime) -> str | None:
        if self.effective_from is not None and now < self.effective_from:
            return f"not effective until {self.effective_from.isoformat()}"
        if self.effective_until is not None and now >= self.effective_until:
            return f"expired at {self.effective_until.isoformat()}"
        return None


# --- shipping methods and costs --------------------------------------------------------------------------


class MethodChoice(StrEnum):
    CHEAPEST = "cheapest"
    FASTEST = "fastest"


class ShippingMethodRule(_Doc):
    """For orders matching ``when``: ship at ``service_level`` (None keeps the order's own), with one of
    ``carriers`` (empty: any), choosing the cheapest or the fastest service for each shipment."""

    id: RuleId
    when: Selector = Selector()
    service_level: ServiceLevel | None = None
    carriers: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(default_factory=list)
    choose: MethodChoice = MethodChoice.CHEAPEST


DEFAULT_HANDLING_PER_SHIPMENT: dict[NodeKind, int] = {
    NodeKind.DC: 150,
    NodeKind.THREE_PL: 250,
    NodeKind.STORE: 400,
    NodeKind.DROPSHIP: 300,
}


class Costs(_Doc):
    """What using a node costs beyond the carrier's rate, in minor units of the order's currency."""

    handling_per_shipment_minor: dict[NodeKind, Minor] = Field(
        default_factory=lambda: dict(DEFAULT_HANDLING_PER_SHIPMENT)
    )
    handling_per_unit_minor: dict[NodeKind, Minor] = Field(default_factory=dict)
    # What the optimizer charges per unit left unfilled under ``ship_available`` (a backorder's cost to the
    # business): high, so it backorders only what no node can supply.
    backorder_per_unit_minor: Minor = 100_000


class PolicyDocument(_Doc):
    schema_version: Literal[1] = POLICY_SCHEMA_VERSION
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    description: str = ""
    costs: Costs = Costs()
    shipping_methods: list[ShippingMethodRule] = Field(default_factory=list)
    profiles: list[Profile] = Field(min_length=1, max_length=100)

    @model_validator(mode="after")
    def _checks(self) -> PolicyDocument:
        _unique((p.id for p in self.profiles), "profile id")
        _unique((m.id for m in self.shipping_methods), "shipping method id")
        if not self.profiles[-1].is_catch_all:
            raise ValueError(
                f"the last profile ({self.profiles[-1].id!r}) must match every order at any time "
                "(no 'when', no effective window), so no order is left without a policy"
            )
        return self

    def node_ids(self) -> set[str]:
        """Every node id the document names, so the API can check them against the network."""
        return {
            node
            for profile in self.profiles
            for strategy in profile.strategies
            for step in strategy.ranking
            if isinstance(step, NodePriority)
            for tier in step.tiers
            for node in tier
        }


BUILTIN_VERSION = "builtin"

# The policy in force before an admin activates one: one node for the whole order when any can (nearest,
# then priority), otherwise the fewest, nearest nodes, up to five shipments.
BUILTIN_POLICY = PolicyDocument(
    name="Built-in default",
    description="Fewest shipments, then nearest, then node priority.",
    profiles=[
        Profile(
            id="default",
            strategies=[
                Strategy(
                    id="nearest",
                    ranking=[
                        FewestShipments(step="fewest_shipments"),
                        Distance(step="distance"),
                        NodePriority(step="node_priority"),
                    ],
                    split=SplitPolicy(mode=SplitMode.ALLOWED, max_shipments=5),
                )
            ],
        )
    ],
)
