"""The network model's repository: nodes, holidays, capacity usage, SKUs, tiers, customers, stock protection,
transfer lanes and carrier services, read and written as ``domain.network`` specs, never as rows.

Every write is an upsert (one ``INSERT ... ON CONFLICT DO UPDATE``), so the same request twice leaves the same
row, and says whether it created the row or replaced it. References are checked before anything is written and
reported all at once by the field that holds them (``UnknownReferences``); the caller commits, so a refused
change leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import HttpUrl
from sqlalchemy import Boolean, ColumnElement, delete, func, literal_column, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.network import (
    AllocationTierSpec,
    Capability,
    CapacityUsage,
    CarrierServiceSpec,
    CustomerSpec,
    Holiday,
    NodeAddress,
    NodeKind,
    NodeRecord,
    NodeSpec,
    NodeStatus,
    OperatingHours,
    SkuSpec,
    StockProtectionSpec,
    TransferLaneSpec,
)
from domain.orders import GeoPoint, ServiceLevel
from infra.db.tables import (
    AllocationTier,
    CarrierService,
    Customer,
    Node,
    NodeCapacityUsage,
    NodeHoliday,
    Sku,
    Stock,
    StockProtection,
    TransferLane,
)

T = TypeVar("T")

# On a row the statement inserted, xmax is 0; on a row ON CONFLICT updated it is the updating transaction's id.
# It is how one statement tells "created" from "replaced" without a read before the write.
_INSERTED = literal_column("(xmax = 0)", Boolean)
_RANK_CONSTRAINT = "uq_allocation_tier_rank"


@dataclass(frozen=True)
class Upserted(Generic[T]):
    """What an upsert stored, and whether the row is new (``created``) or replaced one."""

    value: T
    created: bool


class UnknownReferences(Exception):
    """A change names ids that do not exist, listed by the field that names them. Nothing was written."""

    def __init__(self, missing: Mapping[str, Sequence[str]]) -> None:
        self.missing = {field: list(ids) for field, ids in missing.items() if ids}
        super().__init__("; ".join(f"{field}: unknown {', '.join(ids)}" for field, ids in self.missing.items()))


class RankTaken(Exception):
    """Another tier already has this rank (ranks are unique, so the order of tiers is never ambiguous)."""

    def __init__(self, rank: int, holder: str | None) -> None:
        self.rank = rank
        self.holder = holder
        by = f" by tier {holder}" if holder else ""
        super().__init__(f"rank {rank} is already taken{by}")


def _upsert(table: Any, values: dict[str, Any], keys: Sequence[str], *, touch: bool = False) -> Any:
    """``INSERT values ON CONFLICT (keys) DO UPDATE`` every other column, returning whether the row is new."""
    statement = insert(table).values(values)
    changes: dict[str, Any] = {column: statement.excluded[column] for column in values if column not in keys}
    if touch:
        changes["updated_at"] = func.now()
    return statement.on_conflict_do_update(index_elements=list(keys), set_=changes).returning(_INSERTED)


def _node_values(spec: NodeSpec) -> dict[str, Any]:
    return {
        "node_id": spec.node_id,
        "name": spec.name,
        "kind": spec.kind.value,
        "capabilities": sorted(c.value for c in spec.capabilities),
        "lat": spec.location.lat,
        "lon": spec.location.lon,
        "address_line1": spec.address.line1,
        "city": spec.address.city,
        "region": spec.address.region,
        "postal_code": spec.address.postal_code,
        "country": spec.address.country,
        "timezone": spec.timezone,
        "priority": spec.priority,
        "operating_hours": spec.operating_hours.as_json(),
        "cutoff_local": spec.cutoff_local,
        "pick_pack_minutes": spec.pick_pack_minutes,
        "capacity_orders_per_day": spec.capacity_orders_per_day,
        "capacity_units_per_day": spec.capacity_units_per_day,
        "provider": spec.provider,
        "endpoint": None if spec.endpoint is None else str(spec.endpoint),
    }


def _node_record(row: Node) -> NodeRecord:
    spec = NodeSpec(
        node_id=row.node_id,
        name=row.name,
        kind=NodeKind(row.kind),
        location=GeoPoint(lat=row.lat, lon=row.lon),
        address=NodeAddress(
            line1=row.address_line1,
            city=row.city,
            region=row.region,
            postal_code=row.postal_code,
            country=row.country,
        ),
        timezone=row.timezone,
        capabilities=frozenset(Capability(c) for c in row.capabilities),
        priority=row.priority,
        operating_hours=OperatingHours.model_validate(row.operating_hours),
        cutoff_local=row.cutoff_local,
        pick_pack_minutes=row.pick_pack_minutes,
        capacity_orders_per_day=row.capacity_orders_per_day,
        capacity_units_per_day=row.capacity_units_per_day,
        provider=row.provider,  # NULL (a node stored before providers): derived from the kind
        endpoint=None if row.endpoint is None else HttpUrl(row.endpoint),
    )
    return NodeRecord(spec=spec, status=NodeStatus(row.status))


def _sku_spec(row: Sku) -> SkuSpec:
    return SkuSpec(
        sku=row.sku,
        name=row.name,
        weight_g=row.weight_g,
        length_mm=row.length_mm,
        width_mm=row.width_mm,
        height_mm=row.height_mm,
        hazmat=row.hazmat,
        oversize=row.oversize,
        ship_alone=row.ship_alone,
    )


def _customer_spec(row: Customer) -> CustomerSpec:
    return CustomerSpec(
        customer_id=row.customer_id,
        name=row.name,
        segment=row.segment,
        tier=row.tier,
        home_node_id=row.home_node_id,
        allowed_node_ids=row.allowed_node_ids,
        excluded_node_ids=row.excluded_node_ids,
        credit_limit_minor=row.credit_limit_minor,
        currency=row.currency,
    )


def lane_spec(row: TransferLane) -> TransferLaneSpec:
    return TransferLaneSpec.model_validate(
        {
            "origin_node_id": row.origin_node_id,
            "destination_node_id": row.destination_node_id,
            "transit_hours": row.transit_hours,
            "cost_minor": row.cost_minor,
            "currency": row.currency,
            "departure_days": row.departure_days,
            "departure_local": row.departure_local,
        }
    )


def carrier_service_spec(row: CarrierService) -> CarrierServiceSpec:
    return CarrierServiceSpec.model_validate(
        {
            "service_id": row.service_id,
            "carrier": row.carrier,
            "service_level": row.service_level,
            "transit_days_by_zone": row.transit_days_by_zone,
            "rate_by_zone": row.rate_by_zone,
            "currency": row.currency,
            "cutoff_local": row.cutoff_local,
        }
    )


class NetworkRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    # --- nodes -------------------------------------------------------------------------------------------

    async def upsert_node(self, spec: NodeSpec) -> Upserted[NodeRecord]:
        """Create the node (active) or replace its description; a replaced node keeps its status."""
        created = bool(await self._session.scalar(_upsert(Node, _node_values(spec), ["node_id"], touch=True)))
        status = (await self._session.execute(select(Node.status).where(Node.node_id == spec.node_id))).scalar_one()
        return Upserted(NodeRecord(spec=spec, status=NodeStatus(status)), created)

    async def get_node(self, node_id: str) -> NodeRecord | None:
        row = await self._session.scalar(
            select(Node).where(Node.node_id == node_id).execution_options(populate_existing=True)
        )
        return None if row is None else _node_record(row)

    async def list_nodes(
        self,
        *,
        kind: NodeKind | None = None,
        status: NodeStatus | None = None,
        capability: Capability | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[NodeRecord]:
        """Nodes in id order, starting after ``after`` (keyset paging: stable while nodes are added)."""
        query = select(Node).order_by(Node.node_id).limit(limit).execution_options(populate_existing=True)
        if kind is not None:
            query = query.where(Node.kind == kind.value)
        if status is not None:
            query = query.where(Node.status == status.value)
        if capability is not None:
            query = query.where(Node.capabilities.contains([capability.value]))
        if after is not None:
            query = query.where(Node.node_id > after)
        return [_node_record(row) for row in await self._session.scalars(query)]

    async def set_node_status(self, node_id: str, status: NodeStatus) -> NodeStatus | None:
        """Pause or activate a node; returns its status before, or None if there is no such node."""
        previous = await self._session.scalar(select(Node.status).where(Node.node_id == node_id).with_for_update())
        if previous is None:
            return None
        if previous != status.value:
            await self._session.execute(
                update(Node).where(Node.node_id == node_id).values(status=status.value, updated_at=func.now())
            )
        return NodeStatus(previous)

    async def _existing_nodes(self, node_ids: Sequence[str]) -> set[str]:
        if not node_ids:
            return set()
        return set(await self._session.scalars(select(Node.node_id).where(Node.node_id.in_(set(node_ids)))))

    async def _require_node(self, node_id: str) -> None:
        if not await self._existing_nodes([node_id]):
            raise UnknownReferences({"node_id": [node_id]})

    # --- holidays and capacity usage ---------------------------------------------------------------------

    async def upsert_holiday(self, node_id: str, holiday: Holiday) -> Upserted[Holiday]:
        await self._require_node(node_id)
        values = {"node_id": node_id, "day": holiday.day, "name": holiday.name}
        created = bool(await self._session.scalar(_upsert(NodeHoliday, values, ["node_id", "day"])))
        return Upserted(holiday, created)

    async def delete_holiday(self, node_id: str, day: date) -> bool:
        """Remove a holiday; False if the node had none that day."""
        deleted = await self._session.scalar(
            delete(NodeHoliday).where(NodeHoliday.node_id == node_id, NodeHoliday.day == day).returning(NodeHoliday.day)
        )
        return deleted is not None

    async def holidays(self, node_id: str, *, since: date | None = None) -> list[Holiday]:
        query = select(NodeHoliday).where(NodeHoliday.node_id == node_id).order_by(NodeHoliday.day)
        if since is not None:
            query = query.where(NodeHoliday.day >= since)
        return [Holiday(day=row.day, name=row.name) for row in await self._session.scalars(query)]

    async def capacity_usage(self, node: NodeSpec, day: date) -> CapacityUsage:
        """What ``node`` has taken on for ``day`` against its limits; a day without a usage row used nothing."""
        row = (
            await self._session.execute(
                select(NodeCapacityUsage.orders, NodeCapacityUsage.units).where(
                    NodeCapacityUsage.node_id == node.node_id, NodeCapacityUsage.day == day
                )
            )
        ).one_or_none()
        return CapacityUsage(
            day=day,
            orders=0 if row is None else row.orders,
            units=0 if row is None else row.units,
            orders_limit=node.capacity_orders_per_day,
            units_limit=node.capacity_units_per_day,
        )

    # --- SKUs --------------------------------------------------------------------------------------------

    async def upsert_sku(self, spec: SkuSpec) -> Upserted[SkuSpec]:
        created = bool(await self._session.scalar(_upsert(Sku, spec.model_dump(), ["sku"], touch=True)))
        return Upserted(spec, created)

    async def get_sku(self, sku: str) -> SkuSpec | None:
        row = await self._session.scalar(select(Sku).where(Sku.sku == sku).execution_options(populate_existing=True))
        return None if row is None else _sku_spec(row)

    async def list_skus(
        self,
        *,
        hazmat: bool | None = None,
        oversize: bool | None = None,
        ship_alone: bool | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> list[SkuSpec]:
        query = select(Sku).order_by(Sku.sku).limit(limit).execution_options(populate_existing=True)
        for column, wanted in ((Sku.hazmat, hazmat), (Sku.oversize, oversize), (Sku.ship_alone, ship_alone)):
            if wanted is not None:
                query = query.where(column.is_(wanted))
        if after is not None:
            query = query.where(Sku.sku > after)
        return [_sku_spec(row) for row in await self._session.scalars(query)]

    # --- allocation tiers --------------------------------------------------------------------------------

    async def upsert_tier(self, spec: AllocationTierSpec) -> Upserted[AllocationTierSpec]:
        """Create or replace a tier. A rank held by another tier is refused (``RankTaken``)."""
        holder = await self._session.scalar(
            select(AllocationTier.tier).where(AllocationTier.rank == spec.rank, AllocationTier.tier != spec.tier)
        )
        if holder is not None:
            raise RankTaken(spec.rank, holder)
        try:
            created = bool(await self._session.scalar(_upsert(AllocationTier, spec.model_dump(), ["tier"])))
        except IntegrityError as err:  # another transaction took the rank since the check above
            if getattr(getattr(err.orig, "diag", None), "constraint_name", None) == _RANK_CONSTRAINT:
                raise RankTaken(spec.rank, None) from err
            raise
        return Upserted(spec, created)

    async def get_tier(self, tier: str) -> AllocationTierSpec | None:
        row = (
            await self._session.execute(
                select(AllocationTier.tier, AllocationTier.rank, AllocationTier.description).where(
                    AllocationTier.tier == tier
                )
            )
        ).one_or_none()
        return None if row is None else AllocationTierSpec(tier=row.tier, rank=row.rank, description=row.description)

    async def list_tiers(self) -> list[AllocationTierSpec]:
        rows = await self._session.execute(
            select(AllocationTier.tier, AllocationTier.rank, AllocationTier.description).order_by(AllocationTier.rank)
        )
        return [AllocationTierSpec(tier=r.tier, rank=r.rank, description=r.description) for r in rows]

    # --- customers ---------------------------------------------------------------------------------------

    async def upsert_customer(self, spec: CustomerSpec) -> Upserted[CustomerSpec]:
        """Create or replace a customer; every tier and node it names must exist (else ``UnknownReferences``)."""
        home = [spec.home_node_id] if spec.home_node_id else []
        known = await self._existing_nodes([*home, *spec.allowed_node_ids, *spec.excluded_node_ids])
        missing = {
            "tier": [spec.tier] if spec.tier and await self.get_tier(spec.tier) is None else [],
            "home_node_id": [n for n in home if n not in known],
            "allowed_node_ids": [n for n in spec.allowed_node_ids if n not in known],
            "excluded_node_ids": [n for n in spec.excluded_node_ids if n not in known],
        }
        if any(missing.values()):
            raise UnknownReferences(missing)
        values = spec.model_dump(mode="json")
        created = bool(await self._session.scalar(_upsert(Customer, values, ["customer_id"], touch=True)))
        return Upserted(spec, created)

    async def get_customer(self, customer_id: str) -> CustomerSpec | None:
        row = await self._session.scalar(
            select(Customer).where(Customer.customer_id == customer_id).execution_options(populate_existing=True)
        )
        return None if row is None else _customer_spec(row)

    # --- stock protection --------------------------------------------------------------------------------

    async def upsert_protection(self, spec: StockProtectionSpec) -> Upserted[StockProtectionSpec]:
        """Protect units of an existing stock row for a tier (and the tiers above it)."""
        stocked = await self._session.scalar(
            select(func.count()).where(Stock.node_id == spec.node_id, Stock.sku == spec.sku)
        )
        missing = {
            "stock": [] if stocked else [f"{spec.sku} at {spec.node_id}"],
            "tier": [spec.tier] if await self.get_tier(spec.tier) is None else [],
        }
        if any(missing.values()):
            raise UnknownReferences(missing)
        values = spec.model_dump()
        created = bool(await self._session.scalar(_upsert(StockProtection, values, ["node_id", "sku", "tier"])))
        return Upserted(spec, created)

    async def get_protection(self, node_id: str, sku: str, tier: str) -> StockProtectionSpec | None:
        quantity = await self._session.scalar(
            select(StockProtection.quantity).where(
                StockProtection.node_id == node_id, StockProtection.sku == sku, StockProtection.tier == tier
            )
        )
        if quantity is None:
            return None
        return StockProtectionSpec(node_id=node_id, sku=sku, tier=tier, quantity=quantity)

    # --- transfer lanes ----------------------------------------------------------------------------------

    async def upsert_lane(self, spec: TransferLaneSpec) -> Upserted[TransferLaneSpec]:
        known = await self._existing_nodes([spec.origin_node_id, spec.destination_node_id])
        missing = {
            "origin_node_id": [spec.origin_node_id] if spec.origin_node_id not in known else [],
            "destination_node_id": [spec.destination_node_id] if spec.destination_node_id not in known else [],
        }
        if any(missing.values()):
            raise UnknownReferences(missing)
        values = spec.model_dump(mode="python")
        values["departure_days"] = [day.value for day in spec.departure_days]
        created = bool(
            await self._session.scalar(_upsert(TransferLane, values, ["origin_node_id", "destination_node_id"]))
        )
        return Upserted(spec, created)

    async def get_lane(self, origin_node_id: str, destination_node_id: str) -> TransferLaneSpec | None:
        row = await self._session.scalar(
            select(TransferLane)
            .where(
                TransferLane.origin_node_id == origin_node_id, TransferLane.destination_node_id == destination_node_id
            )
            .execution_options(populate_existing=True)
        )
        return None if row is None else lane_spec(row)

    async def list_lanes(
        self,
        *,
        origin_node_id: str | None = None,
        destination_node_id: str | None = None,
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[TransferLaneSpec]:
        """Lanes in (origin, destination) order, starting after the ``after`` pair."""
        key: ColumnElement[Any] = tuple_(TransferLane.origin_node_id, TransferLane.destination_node_id)
        query = (
            select(TransferLane)
            .order_by(TransferLane.origin_node_id, TransferLane.destination_node_id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if origin_node_id is not None:
            query = query.where(TransferLane.origin_node_id == origin_node_id)
        if destination_node_id is not None:
            query = query.where(TransferLane.destination_node_id == destination_node_id)
        if after is not None:
            query = query.where(key > tuple_(*after))
        return [lane_spec(row) for row in await self._session.scalars(query)]

    # --- carrier services --------------------------------------------------------------------------------

    async def upsert_carrier_service(self, spec: CarrierServiceSpec) -> Upserted[CarrierServiceSpec]:
        values = spec.model_dump(mode="python")
        values["service_level"] = spec.service_level.value
        created = bool(await self._session.scalar(_upsert(CarrierService, values, ["service_id"])))
        return Upserted(spec, created)

    async def get_carrier_service(self, service_id: str) -> CarrierServiceSpec | None:
        row = await self._session.scalar(
            select(CarrierService)
            .where(CarrierService.service_id == service_id)
            .execution_options(populate_existing=True)
        )
        return None if row is None else carrier_service_spec(row)

    async def list_carrier_services(
        self, *, service_level: ServiceLevel | None = None, after: str | None = None, limit: int = 100
    ) -> list[CarrierServiceSpec]:
        query = (
            select(CarrierService)
            .order_by(CarrierService.service_id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        if service_level is not None:
            query = query.where(CarrierService.service_level == service_level.value)
        if after is not None:
            query = query.where(CarrierService.service_id > after)
        return [carrier_service_spec(row) for row in await self._session.scalars(query)]
