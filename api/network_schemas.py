"""Bodies of the network admin API. Ids come from the URL path only: a body never carries the id it is stored
under, so the two cannot disagree. Each ``*Upsert`` turns into its ``domain.network`` spec with ``to_domain``;
each ``*Public`` is made from the domain type with ``from_domain``. Unknown fields are refused."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from domain.network import (
    INT32_MAX,
    INT64_MAX,
    AllocationTierSpec,
    Capability,
    CapacityUsage,
    CarrierName,
    CarrierServiceSpec,
    Count,
    CurrencyCode,
    CustomerId,
    CustomerSegment,
    CustomerSpec,
    Holiday,
    Line,
    LocalTime,
    Name,
    NodeAddress,
    NodeKind,
    NodeRecord,
    NodeSpec,
    NodeStatus,
    OperatingHours,
    ProviderKind,
    ServiceId,
    ShortName,
    SkuSpec,
    StockProtectionSpec,
    TierId,
    TimeZoneName,
    TransferLaneSpec,
    TransitDays,
    Weekday,
    Zone,
    ZoneRate,
)
from domain.orders import GeoPoint, NodeId, ServiceLevel, Sku

ItemT = TypeVar("ItemT")

_BODY = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[ItemT]):
    """One page of a list, in id order."""

    items: list[ItemT]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last page")


# --- nodes ------------------------------------------------------------------------------------------------


class NodeUpsert(BaseModel):
    """A node's full description; PUT replaces every field. Status is changed by ``POST .../status`` only."""

    model_config = _BODY

    name: Name
    kind: NodeKind
    capabilities: list[Capability]
    location: GeoPoint
    address: NodeAddress
    timezone: TimeZoneName = Field(description="IANA time zone, e.g. America/Chicago")
    priority: int = Field(default=100, ge=0, le=INT32_MAX)
    operating_hours: OperatingHours = Field(
        default_factory=OperatingHours, description='per weekday ("mon".."sun") ["HH:MM", "HH:MM"]; absent: closed'
    )
    cutoff_local: LocalTime | None = None
    pick_pack_minutes: Count = 120
    capacity_orders_per_day: Count | None = Field(default=None, description="null: unlimited")
    capacity_units_per_day: Count | None = Field(default=None, description="null: unlimited")
    provider: ProviderKind | None = Field(
        default=None,
        description="who receives releases and cancels; null: from the kind (dc: wms, 3pl: 3pl, store, dropship)",
    )
    endpoint: HttpUrl | None = Field(
        default=None, description="the provider's base URL (docs/integrations.md); null: the default WMS endpoint"
    )

    def to_domain(self, node_id: str) -> NodeSpec:
        return NodeSpec.model_validate({**self.model_dump(), "node_id": node_id})


class _NodeKey(BaseModel):
    node_id: NodeId
    status: NodeStatus


class NodePublic(NodeUpsert, _NodeKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, record: NodeRecord) -> NodePublic:
        fields = record.spec.model_dump()
        fields["capabilities"] = sorted(record.spec.capabilities)
        return cls.model_validate({**fields, "status": record.status})


class HolidayUpsert(BaseModel):
    model_config = _BODY

    name: ShortName


class HolidayPublic(BaseModel):
    node_id: str
    day: date
    name: str

    @classmethod
    def from_domain(cls, node_id: str, holiday: Holiday) -> HolidayPublic:
        return cls(node_id=node_id, day=holiday.day, name=holiday.name)


class CapacityPublic(BaseModel):
    """Usage of one local day against the daily limits; ``*_left`` is null when the limit is."""

    day: date
    orders: int
    units: int
    orders_limit: int | None
    units_limit: int | None
    orders_left: int | None
    units_left: int | None

    @classmethod
    def from_domain(cls, usage: CapacityUsage) -> CapacityPublic:
        return cls(
            day=usage.day,
            orders=usage.orders,
            units=usage.units,
            orders_limit=usage.orders_limit,
            units_limit=usage.units_limit,
            orders_left=usage.orders_left,
            units_left=usage.units_left,
        )


class NodeDetail(NodePublic):
    """A node with its holidays from today (local date) on, and today's capacity usage."""

    holidays: list[HolidayPublic]
    capacity_today: CapacityPublic


class NodeStatusChange(BaseModel):
    model_config = _BODY

    status: NodeStatus
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class NodeStatusChanged(BaseModel):
    node_id: str
    status: NodeStatus
    previous_status: NodeStatus
    reason: str


# --- SKUs -------------------------------------------------------------------------------------------------


class SkuUpsert(BaseModel):
    model_config = _BODY

    name: Name
    weight_g: Count = 0
    length_mm: Count = 0
    width_mm: Count = 0
    height_mm: Count = 0
    hazmat: bool = False
    oversize: bool = False
    ship_alone: bool = Field(default=False, description="never packed with anything else")

    def to_domain(self, sku: str) -> SkuSpec:
        return SkuSpec.model_validate({**self.model_dump(), "sku": sku})


class _SkuKey(BaseModel):
    sku: Sku


class SkuPublic(SkuUpsert, _SkuKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, spec: SkuSpec) -> SkuPublic:
        return cls.model_validate(spec.model_dump())


# --- allocation tiers -------------------------------------------------------------------------------------


class TierUpsert(BaseModel):
    model_config = _BODY

    rank: int = Field(ge=1, le=INT32_MAX, description="1 is served first; unique across tiers")
    description: Line = ""

    def to_domain(self, tier: str) -> AllocationTierSpec:
        return AllocationTierSpec.model_validate({**self.model_dump(), "tier": tier})


class _TierKey(BaseModel):
    tier: TierId


class TierPublic(TierUpsert, _TierKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, spec: AllocationTierSpec) -> TierPublic:
        return cls.model_validate(spec.model_dump())


# --- customers --------------------------------------------------------------------------------------------


class CustomerUpsert(BaseModel):
    model_config = _BODY

    name: Name
    segment: CustomerSegment = CustomerSegment.B2C
    tier: TierId | None = None
    home_node_id: NodeId | None = None
    allowed_node_ids: list[NodeId] = Field(default_factory=list, description="empty: any node may serve")
    excluded_node_ids: list[NodeId] = Field(default_factory=list, description="never serve from these")
    credit_limit_minor: int | None = Field(default=None, ge=0, le=INT64_MAX, description="b2b only")
    currency: CurrencyCode = "USD"

    def to_domain(self, customer_id: str) -> CustomerSpec:
        return CustomerSpec.model_validate({**self.model_dump(), "customer_id": customer_id})


class _CustomerKey(BaseModel):
    customer_id: CustomerId


class CustomerPublic(CustomerUpsert, _CustomerKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, spec: CustomerSpec) -> CustomerPublic:
        return cls.model_validate(spec.model_dump())


# --- stock protection -------------------------------------------------------------------------------------


class ProtectionUpsert(BaseModel):
    model_config = _BODY

    quantity: Count = Field(description="units only this tier and higher tiers may take")


class ProtectionPublic(BaseModel):
    node_id: str
    sku: str
    tier: str
    quantity: int

    @classmethod
    def from_domain(cls, spec: StockProtectionSpec) -> ProtectionPublic:
        return cls.model_validate(spec.model_dump())


# --- transfer lanes ---------------------------------------------------------------------------------------


class LaneUpsert(BaseModel):
    model_config = _BODY

    transit_hours: Count
    cost_minor: Count = Field(description="cost of one transfer, in minor units of currency")
    currency: CurrencyCode = "USD"
    departure_days: list[Weekday] = Field(default_factory=list)
    departure_local: LocalTime | None = Field(default=None, description="departure time at the origin")

    def to_domain(self, origin_node_id: str, destination_node_id: str) -> TransferLaneSpec:
        return TransferLaneSpec.model_validate(
            {**self.model_dump(), "origin_node_id": origin_node_id, "destination_node_id": destination_node_id}
        )


class _LaneKey(BaseModel):
    origin_node_id: NodeId
    destination_node_id: NodeId


class LanePublic(LaneUpsert, _LaneKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, spec: TransferLaneSpec) -> LanePublic:
        return cls.model_validate(spec.model_dump())


# --- carrier services -------------------------------------------------------------------------------------


class CarrierServiceUpsert(BaseModel):
    model_config = _BODY

    carrier: CarrierName
    service_level: ServiceLevel
    transit_days_by_zone: dict[Zone, TransitDays] = Field(min_length=1, description='zone "1".."8" to days')
    rate_by_zone: dict[Zone, ZoneRate] = Field(min_length=1, description="the same zones as transit_days_by_zone")
    currency: CurrencyCode = "USD"
    cutoff_local: LocalTime | None = Field(default=None, description="hand-over cut-off at the shipping node")

    def to_domain(self, service_id: str) -> CarrierServiceSpec:
        return CarrierServiceSpec.model_validate({**self.model_dump(), "service_id": service_id})


class _ServiceKey(BaseModel):
    service_id: ServiceId


class CarrierServicePublic(CarrierServiceUpsert, _ServiceKey):
    model_config = ConfigDict(extra="ignore")

    @classmethod
    def from_domain(cls, spec: CarrierServiceSpec) -> CarrierServicePublic:
        return cls.model_validate(spec.model_dump())
