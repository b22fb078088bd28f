"""Repositories: every query the application runs lives here, behind methods named for what they mean."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import OutOfStock
from domain.network import Capability, NetworkSnapshot, NodeKind, NodeStatus, NodeView
from domain.orders import GeoPoint
from domain.sourcing import Allocation
from infra.db.tables import InboundEvent, InventoryJournal, Node, Reservation, ReservationRequest, Sku, Stock

ACTIVE_STATES = ("held", "committed")


@dataclass(frozen=True)
class ReserveOutcome:
    reserved_units: int
    replayed: bool


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def known_skus(self, skus: Iterable[str]) -> set[str]:
        wanted = set(skus)
        if not wanted:
            return set()
        rows = await self._session.scalars(select(Sku.sku).where(Sku.sku.in_(wanted)))
        return set(rows)

    async def node_count(self) -> int:
        return int(await self._session.scalar(select(func.count()).select_from(Node)) or 0)


def _node_view(node: Node) -> NodeView:
    return NodeView(
        node_id=node.node_id,
        name=node.name,
        kind=NodeKind(node.kind),
        status=NodeStatus(node.status),
        capabilities=frozenset(Capability(c) for c in node.capabilities),
        location=GeoPoint(lat=node.lat, lon=node.lon),
        priority=node.priority,
    )


class InventoryRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def snapshot_for(self, skus: Iterable[str]) -> NetworkSnapshot:
        """Nodes holding any of ``skus`` with their available-to-promise, as of one statement."""
        wanted = sorted(set(skus))
        atp_expr = Stock.on_hand - Stock.reserved - Stock.safety_stock
        rows = (
            await self._session.execute(
                select(Node, Stock.sku, atp_expr)
                .join(Stock, Stock.node_id == Node.node_id)
                .where(Stock.sku.in_(wanted))
            )
        ).all()
        nodes: dict[str, NodeView] = {}
        atp: dict[str, dict[str, int]] = defaultdict(dict)
        for node, sku, available in rows:
            nodes.setdefault(node.node_id, _node_view(node))
            atp[node.node_id][sku] = max(0, int(available))
        return NetworkSnapshot(nodes=[nodes[k] for k in sorted(nodes)], atp=dict(atp))

    async def reserve(self, reservation_key: str, order_id: str, allocations: Sequence[Allocation]) -> ReserveOutcome:
        """Hold every allocation or none. Safe to call again with the same key: it returns the first outcome.

        Stock rows are locked in (node_id, sku) order, so two orders that want the same SKUs in different
        line orders queue behind each other instead of deadlocking. The caller commits.
        """
        claimed = await self._session.scalar(
            insert(ReservationRequest)
            .values(reservation_key=reservation_key, order_id=order_id)
            .on_conflict_do_nothing()
            .returning(ReservationRequest.reservation_key)
        )
        if claimed is None:
            units = await self._session.scalar(
                select(func.coalesce(func.sum(Reservation.quantity), 0)).where(
                    Reservation.reservation_key == reservation_key
                )
            )
            return ReserveOutcome(reserved_units=int(units or 0), replayed=True)

        demand: dict[tuple[str, str], int] = defaultdict(int)
        for allocation in allocations:
            demand[(allocation.node_id, allocation.sku)] += allocation.quantity
        keys = sorted(demand)
        locked = {
            (row.node_id, row.sku): row
            for row in (
                await self._session.execute(
                    select(Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, Stock.safety_stock)
                    .where(tuple_(Stock.node_id, Stock.sku).in_(keys))
                    .order_by(Stock.node_id, Stock.sku)
                    .with_for_update()
                )
            ).all()
        }
        shortfall: dict[str, int] = {}
        for key in keys:
            row = locked.get(key)
            available = 0 if row is None else row.on_hand - row.reserved - row.safety_stock
            if available < demand[key]:
                shortfall[f"{key[1]}@{key[0]}"] = demand[key] - max(0, available)
        if shortfall:
            detail = ", ".join(f"{k} short by {v}" for k, v in sorted(shortfall.items()))
            raise OutOfStock(f"cannot hold the plan: {detail}", details=shortfall)

        for node_id, sku in keys:
            await self._session.execute(
                update(Stock)
                .where(Stock.node_id == node_id, Stock.sku == sku)
                .values(reserved=Stock.reserved + demand[(node_id, sku)])
            )
        await self._session.execute(
            insert(Reservation),
            [
                {
                    "reservation_key": reservation_key,
                    "order_id": order_id,
                    "line_id": a.line_id,
                    "node_id": a.node_id,
                    "sku": a.sku,
                    "quantity": a.quantity,
                }
                for a in allocations
            ],
        )
        return ReserveOutcome(reserved_units=sum(demand.values()), replayed=False)

    async def settle(self, reservation_key: str, *, consume: bool, node_id: str | None, actor: str) -> int:
        """Consume (stock shipped) or release (plan abandoned) active reservation lines; idempotent.

        Returns the number of reservation lines changed; a second call finds none left to change.
        """
        condition = [Reservation.reservation_key == reservation_key, Reservation.state.in_(ACTIVE_STATES)]
        if node_id is not None:
            condition.append(Reservation.node_id == node_id)
        changed = (
            await self._session.execute(
                update(Reservation)
                .where(*condition)
                .values(state="consumed" if consume else "released")
                .returning(Reservation.node_id, Reservation.sku, Reservation.quantity)
            )
        ).all()
        totals: dict[tuple[str, str], int] = defaultdict(int)
        for row in changed:
            totals[(row.node_id, row.sku)] += row.quantity
        for (node, sku), quantity in sorted(totals.items()):
            values: dict[str, Any] = {"reserved": Stock.reserved - quantity}
            if consume:
                values["on_hand"] = Stock.on_hand - quantity
            on_hand_after = await self._session.scalar(
                update(Stock).where(Stock.node_id == node, Stock.sku == sku).values(**values).returning(Stock.on_hand)
            )
            if consume and on_hand_after is not None:
                self._session.add(
                    InventoryJournal(
                        node_id=node,
                        sku=sku,
                        kind="shipment",
                        actor=actor,
                        reason="shipped",
                        source_ref=reservation_key,
                        on_hand_before=on_hand_after + quantity,
                        on_hand_after=on_hand_after,
                    )
                )
        return len(changed)

    async def reservations_for(self, order_id: str) -> list[Reservation]:
        rows = await self._session.scalars(
            select(Reservation).where(Reservation.order_id == order_id).order_by(Reservation.reservation_id)
        )
        return list(rows)

    async def stock_levels(
        self, skus: Iterable[str] | None = None, node_ids: Iterable[str] | None = None
    ) -> list[Stock]:
        query = select(Stock).order_by(Stock.sku, Stock.node_id)
        if skus is not None:
            query = query.where(Stock.sku.in_(list(skus)))
        if node_ids is not None:
            query = query.where(Stock.node_id.in_(list(node_ids)))
        return list(await self._session.scalars(query))


class EventRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def seen(self, event_id: str) -> bool:
        return await self._session.get(InboundEvent, event_id) is not None

    async def record(
        self, *, event_id: str, source: str, order_id: str | None, outcome: str, payload: dict[str, Any]
    ) -> bool:
        """Store an inbound event once. Returns False when that event id was already stored."""
        stored = await self._session.scalar(
            insert(InboundEvent)
            .values(event_id=event_id, source=source, order_id=order_id, outcome=outcome, payload=payload)
            .on_conflict_do_nothing()
            .returning(InboundEvent.event_id)
        )
        return stored is not None
