"""The fulfilment network as decisions see it (nodes, what they can do, what they can promise), and the admin
model operators declare it with: node, SKU, tier, customer, protection, lane and carrier-service specs that
validate everything a column cannot, so a bad value is refused with its field named before anything is stored."""

from __future__ import annotations

import math
from datetime import date, time
from enum import StrEnum
from functools import cache
from typing import Annotated, Literal, TypeVar
from zoneinfo import ZoneInfo, available_timezones

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_serializer,
)

from domain.orders import GeoPoint, NodeId, ServiceLevel, Sku

_V = TypeVar("_V")


class NodeKind(StrEnum):
    DC = "dc"
    STORE = "store"
    THREE_PL = "3pl"
    DROPSHIP = "dropship"


class Capability(StrEnum):
    SHIP = "ship"
    PICKUP = "pickup"
    SHIP_FROM_STORE = "ship_from_store"
    TRANSFER_ORIGIN = "transfer_origin"
    TRANSFER_DESTINATION = "transfer_destination"


# Who receives a node's releases and cancels. Every kind speaks the same wire protocol (docs/integrations.md);
# the kind says what sort of system is at the other end.
ProviderKind = Literal["wms", "3pl", "store", "dropship"]

# The provider a node has when its spec names none.
DEFAULT_PROVIDER: dict[NodeKind, ProviderKind] = {
    NodeKind.DC: "wms",
    NodeKind.THREE_PL: "3pl",
    NodeKind.STORE: "store",
    NodeKind.DROPSHIP: "dropship",
}


class NodeStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance; good enough to rank nodes, not to rate a parcel."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


# --- The admin model: what an operator declares about the network, validated before anything is stored. ---
#
# Integer bounds keep every value inside its PostgreSQL column (``integer`` is 32-bit), so an absurd number is a
# validation error naming its field rather than a database error.
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEK: tuple[Weekday, ...] = tuple(Weekday)


class CustomerSegment(StrEnum):
    B2C = "b2c"
    B2B = "b2b"


def _naive_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time has no offset: the node's time zone applies")
    return value


@cache
def _time_zones() -> frozenset[str]:
    # Read once: available_timezones() walks the tz database. Matching its keys (not just trying ZoneInfo)
    # also refuses 'america/chicago', which a case-insensitive file system would otherwise accept.
    return frozenset(available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _time_zones():
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'America/Chicago')")
    return value


def _opens_before_closes(hours: tuple[str, str]) -> tuple[str, str]:
    if hours[0] >= hours[1]:  # zero-padded "HH:MM" orders as text does
        raise ValueError(f"opens at {hours[0]} but closes at {hours[1]}: opening must come first")
    return hours


Count = Annotated[int, Field(ge=0, le=INT32_MAX)]


def _no_nul(value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValueError("text cannot contain NUL characters")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_no_nul)]
ShortName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_no_nul)
]
Line = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_no_nul)]
PostalCode = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20), AfterValidator(_no_nul)]
CarrierName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(_no_nul)
]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
# Ids that also appear in URL paths: no "/", no spaces.
TierId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")]
CustomerId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ServiceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
TimeZoneName = Annotated[str, AfterValidator(_iana_zone)]
LocalTime = Annotated[time, AfterValidator(_naive_time)]
# "HH:MM", 24-hour; "24:00" closes at midnight. A day's hours never cross midnight.
ClockTime = Annotated[str, StringConstraints(pattern=r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$")]
DayHours = Annotated[tuple[ClockTime, ClockTime], AfterValidator(_opens_before_closes)]
Zone = Literal["1", "2", "3", "4", "5", "6", "7", "8"]
TransitDays = Annotated[int, Field(ge=0, le=365)]


class OperatingHours(BaseModel):
    """Opening hours per weekday in the node's local time, as ``["08:00", "18:00"]``; a day left out is closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mon: DayHours | None = None
    tue: DayHours | None = None
    wed: DayHours | None = None
    thu: DayHours | None = None
    fri: DayHours | None = None
    sat: DayHours | None = None
    sun: DayHours | None = None

    @model_serializer(mode="plain")
    def _open_days_only(self) -> dict[str, list[str]]:
        # The stored form (``node.operating_hours``) and the API's: open days only, in week order.
        return self.as_json()

    def on(self, day: Weekday) -> tuple[str, str] | None:
        hours: tuple[str, str] | None = getattr(self, day.value)
        return hours

    def as_json(self) -> dict[str, list[str]]:
        return {day.value: list(hours) for day in WEEK if (hours := self.on(day)) is not None}


class NodeAddress(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    line1: Line = ""
    city: ShortName
    region: ShortName
    postal_code: PostalCode = ""
    country: CountryCode


class NodeSpec(BaseModel):
    """A node as an operator declares it. Its status (active / paused) is not part of it: pausing is a separate,
    deliberate act with a reason, so replacing a node's description never wakes a paused node by accident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: NodeId
    name: Name
    kind: NodeKind
    location: GeoPoint
    address: NodeAddress
    timezone: TimeZoneName
    capabilities: frozenset[Capability]
    priority: int = Field(default=100, ge=0, le=INT32_MAX)
    operating_hours: OperatingHours = OperatingHours()
    # Orders released after this local time are picked the next operating day; None: no cut-off.
    cutoff_local: LocalTime | None = None
    pick_pack_minutes: Count = 120
    # None means unlimited.
    capacity_orders_per_day: Count | None = None
    capacity_units_per_day: Count | None = None
    # Who receives this node's releases and cancels; None derives it from the kind (dc → wms, 3pl → 3pl, ...).
    provider: ProviderKind | None = Field(default=None, validate_default=True)
    # Base URL of that provider; None: the default fulfilment endpoint (the worker's ``wms_url``).
    endpoint: HttpUrl | None = None

    @field_validator("provider")
    @classmethod
    def _provider_of_kind(cls, provider: ProviderKind | None, info: ValidationInfo) -> ProviderKind | None:
        kind = info.data.get("kind")
        if provider is None and kind is not None:
            return DEFAULT_PROVIDER[kind]
        return provider

    @field_validator("capabilities")
    @classmethod
    def _fits_kind(cls, capabilities: frozenset[Capability], info: ValidationInfo) -> frozenset[Capability]:
        kind = info.data.get("kind")
        if Capability.SHIP_FROM_STORE in capabilities and kind is not None and kind != NodeKind.STORE:
            raise ValueError(f"ship_from_store is for stores, and this node is a {kind}")
        return capabilities

    def local_date(self, at: AwareDatetime) -> date:
        """The calendar day at the node when it is ``at`` (capacity and holidays count in local days)."""
        return at.astimezone(ZoneInfo(self.timezone)).date()


class NodeRecord(BaseModel):
    """A stored node: what the operator declared, and whether it is taking work."""

    model_config = ConfigDict(frozen=True)

    spec: NodeSpec
    status: NodeStatus


class Holiday(BaseModel):
    """A local day a node does not work."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    name: ShortName


class CapacityUsage(BaseModel):
    """Orders and units a node has taken on for one local day, against its daily limits (None: unlimited)."""

    model_config = ConfigDict(frozen=True)

    day: date
    orders: int
    units: int
    orders_limit: int | None
    units_limit: int | None

    @property
    def orders_left(self) -> int | None:
        return None if self.orders_limit is None else max(0, self.orders_limit - self.orders)

    @property
    def units_left(self) -> int | None:
        return None if self.units_limit is None else max(0, self.units_limit - self.units)


class SkuSpec(BaseModel):
    """A catalogue item with what carriers and nodes care about: weight, size and handling."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: Sku
    name: Name
    weight_g: Count = 0
    length_mm: Count = 0
    width_mm: Count = 0
    height_mm: Count = 0
    hazmat: bool = False
    oversize: bool = False
    # Never packed with anything else: its own parcel, its own label.
    ship_alone: bool = False


class AllocationTierSpec(BaseModel):
    """A customer tier; rank 1 is served first and may take stock protected for lower ranks."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: TierId
    rank: int = Field(ge=1, le=INT32_MAX)
    description: Line = ""


def _unique_sorted(ids: list[str]) -> list[str]:
    return sorted(set(ids))


class CustomerSpec(BaseModel):
    """A customer as sourcing sees it: tier, home branch, where it may or may not be served from, credit."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_id: CustomerId
    name: Name
    segment: CustomerSegment = CustomerSegment.B2C
    tier: TierId | None = None
    # Empty: any node. Otherwise only these nodes may serve the customer.
    allowed_node_ids: Annotated[list[NodeId], AfterValidator(_unique_sorted)] = Field(default_factory=list)
    excluded_node_ids: Annotated[list[NodeId], AfterValidator(_unique_sorted)] = Field(default_factory=list)
    # After the node lists, so its check can see them.
    home_node_id: NodeId | None = None
    credit_limit_minor: int | None = Field(default=None, ge=0, le=INT64_MAX)
    currency: CurrencyCode = "USD"

    @field_validator("excluded_node_ids")
    @classmethod
    def _not_both(cls, excluded: list[str], info: ValidationInfo) -> list[str]:
        both = sorted(set(excluded) & set(info.data.get("allowed_node_ids") or ()))
        if both:
            raise ValueError(f"both allowed and excluded: {', '.join(both)}")
        return excluded

    @field_validator("home_node_id")
    @classmethod
    def _home_may_serve(cls, home: str | None, info: ValidationInfo) -> str | None:
        if home is None:
            return None
        if home in (info.data.get("excluded_node_ids") or ()):
            raise ValueError(f"the home node {home} is excluded")
        allowed = info.data.get("allowed_node_ids")
        if allowed and home not in allowed:
            raise ValueError(f"the home node {home} is not among the allowed nodes")
        return home

    @field_validator("credit_limit_minor")
    @classmethod
    def _b2b_credit(cls, limit: int | None, info: ValidationInfo) -> int | None:
        if limit is not None and info.data.get("segment") != CustomerSegment.B2B:
            raise ValueError("a credit limit is for b2b customers only")
        return limit


class StockProtectionSpec(BaseModel):
    """Units of one stock row that only customers of ``tier`` or a higher tier may take."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: NodeId
    sku: Sku
    tier: TierId
    quantity: Count


def _in_week_order(days: list[Weekday]) -> list[Weekday]:
    return [day for day in WEEK if day in days]


class TransferLaneSpec(BaseModel):
    """Stock can move from origin to destination: in how long, at what cost per transfer, leaving when."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    origin_node_id: NodeId
    destination_node_id: NodeId
    transit_hours: Count
    cost_minor: Count
    currency: CurrencyCode = "USD"
    departure_days: Annotated[list[Weekday], AfterValidator(_in_week_order)] = Field(default_factory=list)
    departure_local: LocalTime | None = Field(default=None, validate_default=True)  # checked against the days

    @field_validator("destination_node_id")
    @classmethod
    def _distinct_ends(cls, destination: str, info: ValidationInfo) -> str:
        if destination == info.data.get("origin_node_id"):
            raise ValueError("a lane joins two different nodes: destination equals origin")
        return destination

    @field_validator("departure_local")
    @classmethod
    def _whole_schedule(cls, departure: time | None, info: ValidationInfo) -> time | None:
        days = info.data.get("departure_days")
        if days is not None and bool(days) != (departure is not None):
            raise ValueError("a schedule needs both departure_days and departure_local, or neither")
        return departure


class ZoneRate(BaseModel):
    """A parcel's price in one zone: ``base_minor + per_kg_minor * kg``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_minor: Count
    per_kg_minor: Count


def _by_zone(table: dict[Zone, _V]) -> dict[Zone, _V]:
    return dict(sorted(table.items(), key=lambda item: int(item[0])))


class CarrierServiceSpec(BaseModel):
    """A carrier's service: transit days and rates by distance zone ("1" nearest to "8" farthest)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    service_id: ServiceId
    carrier: CarrierName
    service_level: ServiceLevel
    transit_days_by_zone: Annotated[dict[Zone, TransitDays], AfterValidator(_by_zone)] = Field(min_length=1)
    rate_by_zone: Annotated[dict[Zone, ZoneRate], AfterValidator(_by_zone)] = Field(min_length=1)
    currency: CurrencyCode = "USD"
    # Parcels handed over after this local time (at the shipping node) leave the next day.
    cutoff_local: LocalTime | None = None

    @field_validator("rate_by_zone")
    @classmethod
    def _same_zones(cls, rates: dict[str, ZoneRate], info: ValidationInfo) -> dict[str, ZoneRate]:
        transit = info.data.get("transit_days_by_zone")
        if transit is not None and set(transit) != set(rates):
            only_rates = sorted(set(rates) - set(transit), key=int)
            only_transit = sorted(set(transit) - set(rates), key=int)
            raise ValueError(
                "rates and transit days must cover the same zones"
                + (f"; no transit days for zone(s) {', '.join(only_rates)}" if only_rates else "")
                + (f"; no rate for zone(s) {', '.join(only_transit)}" if only_transit else "")
            )
        return rates


# --- What one sourcing decision sees. ---


class NodeView(BaseModel):
    """A node as the sourcing engine sees it at one moment: what it is, where, when it works, what it has left.

    Everything beyond identity has a default, so a bare view (tests, the simplest network) still plans: a node
    that declares no opening hours gets no promise (ready-by unknown) rather than being treated as closed.
    """

    model_config = ConfigDict(frozen=True)

    node_id: str
    name: str
    kind: NodeKind
    status: NodeStatus
    capabilities: frozenset[Capability]
    location: GeoPoint
    priority: int = 100
    country: str = ""
    region: str = ""
    timezone: str = "UTC"
    operating_hours: OperatingHours | None = None
    holidays: frozenset[date] = frozenset()
    cutoff_local: time | None = None
    pick_pack_minutes: int = 120
    capacity_orders_per_day: int | None = None
    capacity_units_per_day: int | None = None
    # Orders and units already taken, by local day (only the days that matter to a promise are loaded).
    used_orders: dict[date, int] = Field(default_factory=dict)
    used_units: dict[date, int] = Field(default_factory=dict)

    def orders_left(self, day: date) -> int | None:
        if self.capacity_orders_per_day is None:
            return None
        return max(0, self.capacity_orders_per_day - self.used_orders.get(day, 0))

    def units_left(self, day: date) -> int | None:
        if self.capacity_units_per_day is None:
            return None
        return max(0, self.capacity_units_per_day - self.used_units.get(day, 0))


class SkuView(BaseModel):
    """What sourcing needs of a catalogue item: its weight (for rates) and its handling flags."""

    model_config = ConfigDict(frozen=True)

    sku: str
    weight_g: int = 0
    hazmat: bool = False
    oversize: bool = False
    ship_alone: bool = False


class CustomerView(BaseModel):
    """The customer as sourcing sees it (see ``CustomerSpec``); an unknown customer is a plain b2c one."""

    model_config = ConfigDict(frozen=True)

    customer_id: str
    segment: CustomerSegment = CustomerSegment.B2C
    tier: str | None = None
    home_node_id: str | None = None
    allowed_node_ids: frozenset[str] = frozenset()
    excluded_node_ids: frozenset[str] = frozenset()


class NetworkSnapshot(BaseModel):
    """Everything one sourcing decision reads, taken in one transaction: the nodes that matter to the order,
    available-to-promise of its SKUs, the SKUs themselves, the customer, transfer lanes and carrier services."""

    model_config = ConfigDict(frozen=True)

    nodes: list[NodeView]
    # atp[node_id][sku] = units available to promise at that node, for this customer's tier
    atp: dict[str, dict[str, int]] = Field(default_factory=dict)
    skus: dict[str, SkuView] = Field(default_factory=dict)
    customer: CustomerView | None = None
    lanes: list[TransferLaneSpec] = Field(default_factory=list)
    carrier_services: list[CarrierServiceSpec] = Field(default_factory=list)

    def atp_of(self, node_id: str, sku: str) -> int:
        return self.atp.get(node_id, {}).get(sku, 0)
