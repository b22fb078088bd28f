"""Inventory: available to promise per SKU and node, answered from the reservation ledger as it stands now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import UowDep
from api.errors import ApiError
from domain.network import NodeKind, NodeStatus
from domain.orders import GeoPoint, NodeId, Sku
from infra.db.inventory_query import AtpRow

router = APIRouter(prefix="/inventory", tags=["inventory"])

DEFAULT_LIMIT = 500
MAX_LIMIT = 5_000
# Enough for any one screen or order; a longer list belongs in a feed, not a query string.
MAX_IDS = 1_000
# Half the Earth's circumference: a radius beyond it includes everything anyway.
MAX_RADIUS_KM = 20_000.0


class InventoryRowPublic(BaseModel):
    """One SKU at one node as the asking customer may be promised it."""

    sku: str
    node_id: str
    node_name: str
    node_kind: NodeKind
    node_status: NodeStatus
    on_hand: int
    reserved: int = Field(description="units held or committed by active reservations")
    safety_stock: int
    protected: int = Field(description="units kept for allocation tiers ranked above the customer")
    atp: int = Field(description="on_hand - reserved - safety_stock - protected, never below 0")
    distance_km: float | None = Field(description="from lat/lon, when given")

    @classmethod
    def of(cls, row: AtpRow) -> InventoryRowPublic:
        distance = None if row.distance_km is None else round(row.distance_km, 3)
        return cls(
            sku=row.sku,
            node_id=row.node_id,
            node_name=row.node_name,
            node_kind=row.node_kind,
            node_status=row.node_status,
            on_hand=row.on_hand,
            reserved=row.reserved,
            safety_stock=row.safety_stock,
            protected=row.protected,
            atp=row.atp,
            distance_km=distance,
        )


class InventoryPublic(BaseModel):
    as_of: AwareDatetime = Field(description="every change committed before this instant is reflected")
    customer_id: str | None
    rows: list[InventoryRowPublic]
    truncated: bool = Field(description="more rows matched than `limit`; narrow the query or raise the limit")


def _invalid(fields: list[str], message: str) -> ApiError:
    """A 422 in the same shape as the request validation errors, for rules that span several parameters."""
    errors = [{"field": field, "message": message, "type": "value_error"} for field in fields]
    return ApiError(422, f"invalid request: {', '.join(fields)}: {message}", errors=errors)


def _point(lat: float | None, lon: float | None, radius_km: float | None) -> GeoPoint | None:
    """The point to search around, or None; lat, lon and radius_km come together or not at all."""
    if lat is not None and lon is not None and radius_km is not None:
        return GeoPoint(lat=lat, lon=lon)
    given = {"lat": lat, "lon": lon, "radius_km": radius_km}
    missing = [name for name, value in given.items() if value is None]
    if len(missing) == len(given):
        return None
    present = ", ".join(name for name in given if name not in missing)
    raise _invalid(missing, f"required with {present}: lat, lon and radius_km come together")


@router.get(
    "", response_model=InventoryPublic, responses={404: {"description": "a SKU or node asked about does not exist"}}
)
async def get_inventory(
    uow: UowDep,
    sku: Annotated[list[Sku] | None, Query(max_length=MAX_IDS, description="repeat for several SKUs")] = None,
    node_id: Annotated[list[NodeId] | None, Query(max_length=MAX_IDS, description="repeat for several nodes")] = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius_km: Annotated[float | None, Query(gt=0, le=MAX_RADIUS_KM)] = None,
    customer_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> InventoryPublic:
    """Available to promise per (SKU, node), filtered by SKU, by node and/or within ``radius_km`` of lat/lon.

    At least one of ``sku``, ``node_id`` or the point is required (422 otherwise), so no request scans the whole
    ledger by accident. With a point, rows come nearest first; otherwise by SKU, then node.

    An id that does not exist (a SKU not in the catalogue, a node not in the network) answers **404** naming
    every such id, because a typo answered with an empty list reads as "out of stock" and a caller would promise
    nothing, or backorder, for a product that is simply misspelled. A SKU that exists but is not stocked at the
    nodes asked about is a true answer: **200** with no rows for it.

    ``customer_id`` selects the allocation tier whose view is shown: a customer not on file, or without a tier,
    sees the untiered view (every protection applies), as the sourcing engine would treat their order.
    """
    near = _point(lat, lon, radius_km)
    if sku is None and node_id is None and near is None:
        raise _invalid(
            ["sku", "node_id", "lat/lon/radius_km"], "give at least one of sku, node_id or lat+lon+radius_km"
        )
    skus = None if sku is None else list(dict.fromkeys(sku))
    node_ids = None if node_id is None else list(dict.fromkeys(node_id))
    async with uow:
        unknown = await uow.inventory_query.unknown(skus=skus or [], node_ids=node_ids or [])
        if unknown:
            raise _not_found(unknown.skus, unknown.node_ids)
        as_of = datetime.now(UTC)
        rows = await uow.inventory_query.atp(
            skus=skus, node_ids=node_ids, near=near, radius_km=radius_km, customer_id=customer_id, limit=limit + 1
        )
    return InventoryPublic(
        as_of=as_of,
        customer_id=customer_id,
        rows=[InventoryRowPublic.of(row) for row in rows[:limit]],
        truncated=len(rows) > limit,
    )


def _not_found(skus: list[str], node_ids: list[str]) -> ApiError:
    parts = [f"sku {', '.join(skus)}" if skus else "", f"node_id {', '.join(node_ids)}" if node_ids else ""]
    extra: dict[str, Any] = {"unknown_skus": skus, "unknown_node_ids": node_ids}
    return ApiError(404, f"not found: {'; '.join(p for p in parts if p)}", **extra)
