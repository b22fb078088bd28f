"""The inventory surface's read side: available to promise for many SKUs across many nodes, in one statement.

ATP comes from ``infra.db.atp`` (the SQL mirror of ``domain.inventory.available_to_promise``), so this surface,
planning and reservations cannot disagree about what a row can promise. ``reserved`` is the stock row's running
total of active (held or committed) reservations, kept in the same transaction as every reservation change, so
an answer reflects every reservation committed before the statement started.

Distance is computed in SQL: a bounding box on ``node.lat``/``node.lon`` first, then the exact haversine with
the same Earth radius as ``domain.network.haversine_km``. The box costs a few comparisons per node, keeps the
trigonometry off nodes that are plainly too far, and is what a future (lat, lon) index would serve; the
haversine keeps the edge of the circle exact and the distances equal to the ones sourcing ranks by. PostGIS
would do both, but it is not available everywhere this runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Float, Select, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.inventory import UNTIERED_RANK
from domain.network import EARTH_RADIUS_KM, NodeKind, NodeStatus
from domain.orders import GeoPoint
from infra.db.atp import atp_expression, customer_rank, protected_above_rank
from infra.db.tables import Node, Sku, Stock

# Slack on the bounding box, in degrees (about 10 cm): floating-point rounding must never drop a node that the
# exact haversine would keep.
_BOX_SLACK_DEG = 1e-6
# Dict lookups: calling the enum for every row of a large answer costs more than the rest of building it.
_KINDS = {kind.value: kind for kind in NodeKind}
_STATUSES = {status.value: status for status in NodeStatus}


class AtpRow(NamedTuple):
    """One stock row as a customer sees it: the ledger's figures, what is protected from them, and the ATP.

    A NamedTuple rather than a dataclass because thousands are built per lookup, at a quarter of the cost.
    """

    sku: str
    node_id: str
    node_name: str
    node_kind: NodeKind
    node_status: NodeStatus
    on_hand: int
    reserved: int
    safety_stock: int
    protected: int  # units held back for tiers ranked above the customer
    atp: int
    distance_km: float | None  # from the ``near`` point; None when no point was given


@dataclass(frozen=True)
class UnknownIds:
    """Requested SKUs and nodes that do not exist at all (as opposed to existing with no stock)."""

    skus: list[str]
    node_ids: list[str]

    def __bool__(self) -> bool:
        return bool(self.skus or self.node_ids)


@dataclass(frozen=True)
class BoundingBox:
    """Latitude and longitude bounds that contain a circle; ``None`` longitudes mean no longitude bound."""

    lat_min: float
    lat_max: float
    lon_min: float | None
    lon_max: float | None


def bounding_box(center: GeoPoint, radius_km: float) -> BoundingBox:
    """The smallest lat/lon box around a circle on the sphere.

    The longitude half-width is asin(sin(d) / cos(lat)) for angular radius d, which is exact while the circle
    contains no pole. When it reaches a pole every longitude is inside, and when it crosses the antimeridian the
    box would wrap: both then drop the longitude bound rather than handle the wrap, because the haversine that
    follows is exact anyway and such queries are rare.
    """
    angular = radius_km / EARTH_RADIUS_KM
    half_lat = math.degrees(angular)
    lat_min, lat_max = center.lat - half_lat, center.lat + half_lat
    if lat_min <= -90 or lat_max >= 90:
        return BoundingBox(max(lat_min - _BOX_SLACK_DEG, -90.0), min(lat_max + _BOX_SLACK_DEG, 90.0), None, None)
    half_lon = math.degrees(math.asin(math.sin(angular) / math.cos(math.radians(center.lat))))
    lon_min, lon_max = center.lon - half_lon, center.lon + half_lon
    lat_min, lat_max = lat_min - _BOX_SLACK_DEG, lat_max + _BOX_SLACK_DEG
    if lon_min < -180 or lon_max > 180:
        return BoundingBox(lat_min, lat_max, None, None)
    return BoundingBox(lat_min, lat_max, lon_min - _BOX_SLACK_DEG, lon_max + _BOX_SLACK_DEG)


def distance_km_expression(point: GeoPoint) -> ColumnElement[float]:
    """Great-circle distance from ``point`` to the current ``node`` row: ``haversine_km`` written in SQL."""
    sin_half_dlat = func.sin(func.radians(Node.lat - point.lat) / 2)
    sin_half_dlon = func.sin(func.radians(Node.lon - point.lon) / 2)
    cos_lats = math.cos(math.radians(point.lat)) * func.cos(func.radians(Node.lat))
    h = func.power(sin_half_dlat, 2) + cos_lats * func.power(sin_half_dlon, 2)
    # Rounding can push sqrt(h) a hair above 1 for antipodal points, where asin is undefined.
    return 2 * EARTH_RADIUS_KM * func.asin(func.least(func.sqrt(h), 1.0), type_=Float)


class InventoryQuery:
    """Read-only questions about stock, each answered by one statement."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def atp_statement(
        self,
        *,
        skus: Sequence[str] | None = None,
        node_ids: Sequence[str] | None = None,
        near: GeoPoint | None = None,
        radius_km: float | None = None,
        customer_id: str | None = None,
        limit: int,
    ) -> Select[*tuple[Any, ...]]:
        """The statement behind ``atp``, apart so that a plan can be inspected with EXPLAIN."""
        if radius_km is not None and near is None:
            raise ValueError("radius_km needs a point to measure from")
        rank: int | ColumnElement[int] = UNTIERED_RANK if customer_id is None else customer_rank(customer_id)
        distance = distance_km_expression(near) if near is not None else null().cast(Float)
        statement = select(  # the columns in AtpRow's order
            Stock.sku,
            Stock.node_id,
            Node.name,
            Node.kind,
            Node.status,
            Stock.on_hand,
            Stock.reserved,
            Stock.safety_stock,
            protected_above_rank(rank).label("protected"),
            atp_expression(rank).label("atp"),
            distance.label("distance_km"),
        ).join(Node, Node.node_id == Stock.node_id)
        if skus is not None:
            statement = statement.where(Stock.sku.in_(list(skus)))
        if node_ids is not None:
            statement = statement.where(Stock.node_id.in_(list(node_ids)))
        if near is not None:
            if radius_km is not None:
                box = bounding_box(near, radius_km)
                statement = statement.where(Node.lat.between(box.lat_min, box.lat_max))
                if box.lon_min is not None and box.lon_max is not None:
                    statement = statement.where(Node.lon.between(box.lon_min, box.lon_max))
                statement = statement.where(distance <= radius_km)
            statement = statement.order_by(distance, Stock.sku, Stock.node_id)
        else:
            statement = statement.order_by(Stock.sku, Stock.node_id)
        return statement.limit(limit)

    async def atp(
        self,
        *,
        skus: Sequence[str] | None = None,
        node_ids: Sequence[str] | None = None,
        near: GeoPoint | None = None,
        radius_km: float | None = None,
        customer_id: str | None = None,
        limit: int,
    ) -> list[AtpRow]:
        """ATP per (SKU, node) for ``customer_id`` (untiered when None or unknown), narrowed by every filter given.

        ``None`` for a filter means "any"; an empty list matches nothing. With ``near``, rows come nearest first
        (then by SKU and node) and ``radius_km``, if given, drops nodes farther away; without it, by SKU then
        node. Paused nodes are included with their status: whether to source from them is sourcing's decision.
        """
        statement = self.atp_statement(
            skus=skus, node_ids=node_ids, near=near, radius_km=radius_km, customer_id=customer_id, limit=limit
        )
        rows = (await self._session.execute(statement)).all()
        return [
            AtpRow(sku, node_id, name, _KINDS[kind], _STATUSES[status], *figures)
            for sku, node_id, name, kind, status, *figures in rows
        ]

    async def unknown(self, *, skus: Sequence[str] = (), node_ids: Sequence[str] = ()) -> UnknownIds:
        """Which of ``skus`` and ``node_ids`` exist neither in the catalogue nor in the network (one statement)."""
        wanted_skus, wanted_nodes = sorted(set(skus)), sorted(set(node_ids))
        if not wanted_skus and not wanted_nodes:
            return UnknownIds(skus=[], node_ids=[])
        found = (
            await self._session.execute(
                union_all(
                    select(literal("sku").label("what"), Sku.sku.label("id")).where(Sku.sku.in_(wanted_skus)),
                    select(literal("node").label("what"), Node.node_id.label("id")).where(
                        Node.node_id.in_(wanted_nodes)
                    ),
                )
            )
        ).all()
        found_skus = {id_ for what, id_ in found if what == "sku"}
        found_nodes = {id_ for what, id_ in found if what == "node"}
        return UnknownIds(
            skus=[s for s in wanted_skus if s not in found_skus],
            node_ids=[n for n in wanted_nodes if n not in found_nodes],
        )
