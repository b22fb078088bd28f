"""The network admin surface: nodes (with holidays, status and today's capacity), SKUs, allocation tiers,
customers, stock protection, transfer lanes and carrier services.

This is an administrator's API: it changes what every later sourcing decision sees. It has no authentication
yet, like the rest of the API; the roles issue puts it behind an admin role.

Every ``PUT`` creates (201, with ``Location``) or replaces (200) the whole resource named by its path, and is
safe to repeat. Ids come from the path only. A refused change writes nothing: the body is validated (422 naming
the field), then every id it refers to is checked (unknown ids in the path are 404, in the body 422 by field),
and only then is the change written, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.deps import UowDep
from api.errors import ApiError
from api.network_schemas import (
    CapacityPublic,
    CarrierServicePublic,
    CarrierServiceUpsert,
    CustomerPublic,
    CustomerUpsert,
    HolidayPublic,
    HolidayUpsert,
    LanePublic,
    LaneUpsert,
    NodeDetail,
    NodePublic,
    NodeStatusChange,
    NodeStatusChanged,
    NodeUpsert,
    Page,
    ProtectionPublic,
    ProtectionUpsert,
    SkuPublic,
    SkuUpsert,
    TierPublic,
    TierUpsert,
)
from domain.network import Capability, CustomerId, Holiday, NodeKind, NodeStatus, ServiceId, StockProtectionSpec, TierId
from domain.orders import NodeId, ServiceLevel, Sku
from infra.db.network import RankTaken, UnknownReferences, Upserted

router = APIRouter(prefix="/network", tags=["network"])
log = structlog.get_logger(__name__)

T = TypeVar("T")
ItemT = TypeVar("ItemT")

Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
LaneCursor = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}/[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        description="`origin/destination` of the last lane seen (the previous page's `next_after`)",
    ),
]


def _domain(build: Callable[[], T], *, path: Mapping[str, str] | None = None) -> T:
    """Build the domain spec from the request. Rules only the domain checks (across fields, or between the body
    and the path) still answer 422 naming the field: ``path`` maps spec fields to the path parameters they
    came from."""
    try:
        return build()
    except ValidationError as err:
        where = path or {}
        errors = []
        for error in err.errors():
            loc = tuple(error["loc"])
            first = str(loc[0]) if loc else ""
            located = ("path", where[first]) if first in where else ("body", *loc)
            errors.append({"loc": located, "msg": error["msg"], "type": error["type"]})
        raise RequestValidationError(errors) from None


def _refused(err: UnknownReferences, *, path: Mapping[str, str] | None = None) -> ApiError:
    """Unknown ids named by the URL are 404 (``path`` maps the field to what it names); ids named by the body
    are 422 with one error per field."""
    named = path or {}
    in_path = [f"{named[field]} {', '.join(ids)} not found" for field, ids in err.missing.items() if field in named]
    if in_path:
        return ApiError(404, "; ".join(in_path))
    errors = [
        {"field": field, "message": f"unknown id(s): {', '.join(ids)}", "type": "unknown_reference"}
        for field, ids in err.missing.items()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return ApiError(422, f"invalid request: {summary}", errors=errors)


def _answer(response: Response, stored: Upserted[Any], location: str) -> None:
    if stored.created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = location


def _page(items: Sequence[ItemT], limit: int, cursor: Callable[[ItemT], str]) -> tuple[list[ItemT], str | None]:
    """Items were read with ``limit + 1``: the extra one only says there is a next page."""
    page = list(items[:limit])
    return page, cursor(page[-1]) if len(items) > limit else None


def _not_found(what: str, key: str) -> ApiError:
    return ApiError(404, f"{what} {key} not found")


_CREATED_OR_REPLACED: dict[int | str, dict[str, Any]] = {
    201: {"description": "created"},
    200: {"description": "replaced"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "what the path names does not exist"}}
# A record named by the path, or one it must refer to (the node of a holiday or of a protection, a lane's nodes).
_UPSERT: dict[int | str, dict[str, Any]] = {**_CREATED_OR_REPLACED, **_NOT_FOUND}


# --- nodes -------------------------------------------------------------------------------------------------


@router.put("/nodes/{node_id}", response_model=NodePublic, responses=_CREATED_OR_REPLACED)
async def put_node(node_id: NodeId, body: NodeUpsert, response: Response, uow: UowDep) -> NodePublic:
    """Create a node (active) or replace its description; a replaced node keeps its status."""
    spec = _domain(lambda: body.to_domain(node_id), path={"node_id": "node_id"})
    async with uow:
        stored = await uow.network.upsert_node(spec)
        await uow.commit()
    log.info("node stored", node_id=node_id, created=stored.created)
    _answer(response, stored, f"/network/nodes/{node_id}")
    return NodePublic.from_domain(stored.value)


@router.get("/nodes", response_model=Page[NodePublic])
async def list_nodes(
    uow: UowDep,
    kind: NodeKind | None = None,
    node_status: Annotated[NodeStatus | None, Query(alias="status")] = None,
    capability: Capability | None = None,
    after: Annotated[NodeId | None, Query(description="the last node id seen (`next_after`)")] = None,
    limit: Limit = 100,
) -> Page[NodePublic]:
    async with uow:
        records = await uow.network.list_nodes(
            kind=kind, status=node_status, capability=capability, after=after, limit=limit + 1
        )
    items, next_after = _page(records, limit, lambda r: r.spec.node_id)
    return Page(items=[NodePublic.from_domain(r) for r in items], next_after=next_after)


@router.get("/nodes/{node_id}", response_model=NodeDetail, responses=_NOT_FOUND)
async def get_node(node_id: NodeId, uow: UowDep) -> NodeDetail:
    """The node, its holidays from today on and today's capacity usage, "today" being the node's local date."""
    async with uow:
        record = await uow.network.get_node(node_id)
        if record is None:
            raise _not_found("node", node_id)
        today = record.spec.local_date(datetime.now(UTC))
        holidays = await uow.network.holidays(node_id, since=today)
        usage = await uow.network.capacity_usage(record.spec, today)
    return NodeDetail.model_validate(
        {
            **NodePublic.from_domain(record).model_dump(),
            "holidays": [HolidayPublic.from_domain(node_id, h) for h in holidays],
            "capacity_today": CapacityPublic.from_domain(usage),
        }
    )


@router.post("/nodes/{node_id}/status", response_model=NodeStatusChanged, responses=_NOT_FOUND)
async def change_node_status(node_id: NodeId, body: NodeStatusChange, uow: UowDep) -> NodeStatusChanged:
    """Pause a node (sourcing stops choosing it) or activate it again. Repeating a change is harmless."""
    async with uow:
        previous = await uow.network.set_node_status(node_id, body.status)
        if previous is None:
            raise _not_found("node", node_id)
        await uow.commit()
    log.info("node status set", node_id=node_id, status=body.status, previous_status=previous, reason=body.reason)
    return NodeStatusChanged(node_id=node_id, status=body.status, previous_status=previous, reason=body.reason)


@router.put("/nodes/{node_id}/holidays/{day}", response_model=HolidayPublic, responses=_UPSERT)
async def put_holiday(
    node_id: NodeId, day: date, body: HolidayUpsert, response: Response, uow: UowDep
) -> HolidayPublic:
    """Mark a local day as a holiday at the node (the node does not work that day)."""
    holiday = _domain(lambda: Holiday(day=day, name=body.name), path={"day": "day"})
    async with uow:
        try:
            stored = await uow.network.upsert_holiday(node_id, holiday)
        except UnknownReferences as err:
            raise _refused(err, path={"node_id": "node"}) from None
        await uow.commit()
    _answer(response, stored, f"/network/nodes/{node_id}/holidays/{day.isoformat()}")
    return HolidayPublic.from_domain(node_id, stored.value)


@router.delete("/nodes/{node_id}/holidays/{day}", status_code=status.HTTP_204_NO_CONTENT, responses=_NOT_FOUND)
async def delete_holiday(node_id: NodeId, day: date, uow: UowDep) -> None:
    async with uow:
        if not await uow.network.delete_holiday(node_id, day):
            raise ApiError(404, f"node {node_id} has no holiday on {day.isoformat()}")
        await uow.commit()


# --- SKUs --------------------------------------------------------------------------------------------------


@router.put("/skus/{sku:path}", response_model=SkuPublic, responses=_CREATED_OR_REPLACED)
async def put_sku(sku: Sku, body: SkuUpsert, response: Response, uow: UowDep) -> SkuPublic:
    """Create or replace a SKU. A SKU may contain "/", so it is the last part of the path."""
    spec = _domain(lambda: body.to_domain(sku), path={"sku": "sku"})
    async with uow:
        stored = await uow.network.upsert_sku(spec)
        await uow.commit()
    _answer(response, stored, f"/network/skus/{sku}")
    return SkuPublic.from_domain(stored.value)


@router.get("/skus", response_model=Page[SkuPublic])
async def list_skus(
    uow: UowDep,
    hazmat: bool | None = None,
    oversize: bool | None = None,
    ship_alone: bool | None = None,
    after: Annotated[Sku | None, Query(description="the last SKU seen (`next_after`)")] = None,
    limit: Limit = 100,
) -> Page[SkuPublic]:
    async with uow:
        specs = await uow.network.list_skus(
            hazmat=hazmat, oversize=oversize, ship_alone=ship_alone, after=after, limit=limit + 1
        )
    items, next_after = _page(specs, limit, lambda s: s.sku)
    return Page(items=[SkuPublic.from_domain(s) for s in items], next_after=next_after)


@router.get("/skus/{sku:path}", response_model=SkuPublic, responses=_NOT_FOUND)
async def get_sku(sku: Sku, uow: UowDep) -> SkuPublic:
    async with uow:
        spec = await uow.network.get_sku(sku)
    if spec is None:
        raise _not_found("SKU", sku)
    return SkuPublic.from_domain(spec)


# --- allocation tiers --------------------------------------------------------------------------------------


@router.put(
    "/tiers/{tier}",
    response_model=TierPublic,
    responses={**_CREATED_OR_REPLACED, 409: {"description": "the rank is held by another tier"}},
)
async def put_tier(tier: TierId, body: TierUpsert, response: Response, uow: UowDep) -> TierPublic:
    """Create or replace a tier. Ranks are unique: a rank another tier holds is refused with 409."""
    spec = _domain(lambda: body.to_domain(tier), path={"tier": "tier"})
    async with uow:
        try:
            stored = await uow.network.upsert_tier(spec)
        except RankTaken as err:
            raise ApiError(
                409,
                f"rank: {err}",
                errors=[{"field": "rank", "message": str(err), "type": "rank_taken"}],
            ) from None
        await uow.commit()
    _answer(response, stored, f"/network/tiers/{tier}")
    return TierPublic.from_domain(stored.value)


@router.get("/tiers", response_model=list[TierPublic])
async def list_tiers(uow: UowDep) -> list[TierPublic]:
    """Every tier, highest (rank 1) first; there are only ever a handful."""
    async with uow:
        specs = await uow.network.list_tiers()
    return [TierPublic.from_domain(s) for s in specs]


@router.get("/tiers/{tier}", response_model=TierPublic, responses=_NOT_FOUND)
async def get_tier(tier: TierId, uow: UowDep) -> TierPublic:
    async with uow:
        spec = await uow.network.get_tier(tier)
    if spec is None:
        raise _not_found("tier", tier)
    return TierPublic.from_domain(spec)


# --- customers ---------------------------------------------------------------------------------------------


@router.put("/customers/{customer_id}", response_model=CustomerPublic, responses=_CREATED_OR_REPLACED)
async def put_customer(
    customer_id: CustomerId, body: CustomerUpsert, response: Response, uow: UowDep
) -> CustomerPublic:
    """Create or replace a customer. Its tier and every node it names must exist (422 naming the field)."""
    spec = _domain(lambda: body.to_domain(customer_id), path={"customer_id": "customer_id"})
    async with uow:
        try:
            stored = await uow.network.upsert_customer(spec)
        except UnknownReferences as err:
            raise _refused(err) from None
        await uow.commit()
    _answer(response, stored, f"/network/customers/{customer_id}")
    return CustomerPublic.from_domain(stored.value)


@router.get("/customers/{customer_id}", response_model=CustomerPublic, responses=_NOT_FOUND)
async def get_customer(customer_id: CustomerId, uow: UowDep) -> CustomerPublic:
    async with uow:
        spec = await uow.network.get_customer(customer_id)
    if spec is None:
        raise _not_found("customer", customer_id)
    return CustomerPublic.from_domain(spec)


# --- stock protection --------------------------------------------------------------------------------------

_PROTECTION_PATH = "/protections/{node_id}/{sku:path}/{tier}"


@router.put(_PROTECTION_PATH, response_model=ProtectionPublic, responses=_UPSERT)
async def put_protection(
    node_id: NodeId, sku: Sku, tier: TierId, body: ProtectionUpsert, response: Response, uow: UowDep
) -> ProtectionPublic:
    """Protect units of a stock row for ``tier`` and higher tiers. The stock row and the tier must exist."""
    spec = _domain(
        lambda: StockProtectionSpec(node_id=node_id, sku=sku, tier=tier, quantity=body.quantity),
        path={"node_id": "node_id", "sku": "sku", "tier": "tier"},
    )
    async with uow:
        try:
            stored = await uow.network.upsert_protection(spec)
        except UnknownReferences as err:
            raise _refused(err, path={"stock": "stock of", "tier": "tier"}) from None
        await uow.commit()
    log.info("stock protection set", node_id=node_id, sku=sku, tier=tier, quantity=body.quantity)
    _answer(response, stored, f"/network/protections/{node_id}/{sku}/{tier}")
    return ProtectionPublic.from_domain(stored.value)


@router.get(_PROTECTION_PATH, response_model=ProtectionPublic, responses=_NOT_FOUND)
async def get_protection(node_id: NodeId, sku: Sku, tier: TierId, uow: UowDep) -> ProtectionPublic:
    async with uow:
        spec = await uow.network.get_protection(node_id, sku, tier)
    if spec is None:
        raise ApiError(404, f"no protection of {sku} at {node_id} for tier {tier}")
    return ProtectionPublic.from_domain(spec)


# --- transfer lanes ----------------------------------------------------------------------------------------


@router.put("/lanes/{origin}/{destination}", response_model=LanePublic, responses=_UPSERT)
async def put_lane(
    origin: NodeId, destination: NodeId, body: LaneUpsert, response: Response, uow: UowDep
) -> LanePublic:
    """Create or replace the lane from ``origin`` to ``destination`` (two different, existing nodes)."""
    spec = _domain(
        lambda: body.to_domain(origin, destination),
        path={"origin_node_id": "origin", "destination_node_id": "destination"},
    )
    async with uow:
        try:
            stored = await uow.network.upsert_lane(spec)
        except UnknownReferences as err:
            names = {"origin_node_id": "origin node", "destination_node_id": "destination node"}
            raise _refused(err, path=names) from None
        await uow.commit()
    _answer(response, stored, f"/network/lanes/{origin}/{destination}")
    return LanePublic.from_domain(stored.value)


@router.get("/lanes", response_model=Page[LanePublic])
async def list_lanes(
    uow: UowDep,
    origin: NodeId | None = None,
    destination: NodeId | None = None,
    after: LaneCursor = None,
    limit: Limit = 100,
) -> Page[LanePublic]:
    cursor = tuple(after.split("/", 1)) if after else None
    async with uow:
        specs = await uow.network.list_lanes(
            origin_node_id=origin,
            destination_node_id=destination,
            after=(cursor[0], cursor[1]) if cursor else None,
            limit=limit + 1,
        )
    items, next_after = _page(specs, limit, lambda s: f"{s.origin_node_id}/{s.destination_node_id}")
    return Page(items=[LanePublic.from_domain(s) for s in items], next_after=next_after)


@router.get("/lanes/{origin}/{destination}", response_model=LanePublic, responses=_NOT_FOUND)
async def get_lane(origin: NodeId, destination: NodeId, uow: UowDep) -> LanePublic:
    async with uow:
        spec = await uow.network.get_lane(origin, destination)
    if spec is None:
        raise _not_found("lane", f"{origin}/{destination}")
    return LanePublic.from_domain(spec)


# --- carrier services --------------------------------------------------------------------------------------


@router.put("/carrier-services/{service_id}", response_model=CarrierServicePublic, responses=_CREATED_OR_REPLACED)
async def put_carrier_service(
    service_id: ServiceId, body: CarrierServiceUpsert, response: Response, uow: UowDep
) -> CarrierServicePublic:
    spec = _domain(lambda: body.to_domain(service_id), path={"service_id": "service_id"})
    async with uow:
        stored = await uow.network.upsert_carrier_service(spec)
        await uow.commit()
    _answer(response, stored, f"/network/carrier-services/{service_id}")
    return CarrierServicePublic.from_domain(stored.value)


@router.get("/carrier-services", response_model=Page[CarrierServicePublic])
async def list_carrier_services(
    uow: UowDep,
    service_level: ServiceLevel | None = None,
    after: Annotated[ServiceId | None, Query(description="the last service id seen (`next_after`)")] = None,
    limit: Limit = 100,
) -> Page[CarrierServicePublic]:
    async with uow:
        specs = await uow.network.list_carrier_services(service_level=service_level, after=after, limit=limit + 1)
    items, next_after = _page(specs, limit, lambda s: s.service_id)
    return Page(items=[CarrierServicePublic.from_domain(s) for s in items], next_after=next_after)


@router.get("/carrier-services/{service_id}", response_model=CarrierServicePublic, responses=_NOT_FOUND)
async def get_carrier_service(service_id: ServiceId, uow: UowDep) -> CarrierServicePublic:
    async with uow:
        spec = await uow.network.get_carrier_service(service_id)
    if spec is None:
        raise _not_found("carrier service", service_id)
    return CarrierServicePublic.from_domain(spec)
