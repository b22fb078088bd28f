"""Repositories: every query the application runs lives here, behind methods named for what they mean."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import OutOfStock, ReservationReleased
from domain.inventory import UNTIERED_RANK
from domain.network import (
    Capability,
    CustomerSegment,
    CustomerView,
    NetworkSnapshot,
    NodeKind,
    NodeStatus,
    NodeView,
    OperatingHours,
    SkuView,
)
from domain.orders import GeoPoint, Order
from domain.sourcing import Allocation
from infra.db.atp import atp_expression, customer_rank
from infra.db.network import carrier_service_spec, lane_spec
from infra.db.tables import (
    CarrierService,
    Customer,
    InboundEvent,
    InventoryJournal,
    Node,
    NodeCapacityUsage,
    NodeHoliday,
    Reservation,
    ReservationRequest,
    Sku,
    Stock,
    TransferLane,
)

ACTIVE_STATES = ("held", "committed")


@dataclass(frozen=True)
class ReserveOutcome:
    reserved_units: int
    replayed: bool


@dataclass(frozen=True)
class Shortfall:
    """One stock row that cannot cover what a plan asks of it, with the order lines asking."""

    node_id: str
    sku: str
    line_ids: tuple[str, ...]
    requested: int
    available: int

    @property
    def key(self) -> str:
        return f"{self.sku}@{self.node_id}"

    @property
    def short(self) -> int:
        return self.requested - self.available

    def describe(self) -> str:
        lines = ", ".join(self.line_ids)
        return f"{self.key} short by {self.short} (line {lines}: {self.requested} wanted, {self.available} available)"

    def as_detail(self) -> dict[str, object]:
        """The form carried in ``OutOfStock.details`` (plain JSON, as it crosses into the workflow)."""
        return {
            "node_id": self.node_id,
            "sku": self.sku,
            "line_ids": list(self.line_ids),
            "requested": self.requested,
            "available": self.available,
            "short": self.short,
        }


class CatalogRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def known_skus(self, skus: Iterable[str]) -> set[str]:
        wanted = set(skus)
        if not wanted:
            return set()
        rows = await self._session.scalars(select(Sku.sku).where(Sku.sku.in_(wanted)))
        return set(rows)


def _node_view(
    node: Node,
    holidays: Iterable[date] = (),
    usage: Iterable[NodeCapacityUsage] = (),
) -> NodeView:
    usage = list(usage)
    return NodeView(
        node_id=node.node_id,
        name=node.name,
        kind=NodeKind(node.kind),
        status=NodeStatus(node.status),
        capabilities=frozenset(Capability(c) for c in node.capabilities),
        location=GeoPoint(lat=node.lat, lon=node.lon),
        priority=node.priority,
        country=node.country,
        region=node.region,
        timezone=node.timezone,
        operating_hours=OperatingHours.model_validate(node.operating_hours) if node.operating_hours else None,
        holidays=frozenset(holidays),
        cutoff_local=node.cutoff_local,
        pick_pack_minutes=node.pick_pack_minutes,
        capacity_orders_per_day=node.capacity_orders_per_day,
        capacity_units_per_day=node.capacity_units_per_day,
        used_orders={u.day: u.orders for u in usage},
        used_units={u.day: u.units for u in usage},
    )


# How far ahead a promise may look for holidays and capacity already taken.
PROMISE_HORIZON_DAYS = 21


class InventoryRepository:
    """The reservation ledger and the stock it draws on.

    Every writer follows the same lock order, which is what keeps concurrent orders free of deadlocks:
    first the ``reservation_request`` row of the key it changes (so two calls on one key run one after the
    other instead of interleaving line by line), then ``stock`` rows in (node_id, sku) order. Nothing waits
    for a request row while it holds a stock row. The caller commits.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def snapshot_for(self, skus: Iterable[str], *, customer_id: str | None = None) -> NetworkSnapshot:
        """Nodes holding any of ``skus`` with the ATP ``customer_id`` may plan with, as of one statement.

        Units protected for tiers above the customer's are left out, so planning never picks stock that the
        reservation would then refuse.
        """
        wanted = sorted(set(skus))
        rows = (
            await self._session.execute(
                select(Node, Stock.sku, atp_expression(_rank(customer_id)))
                .join(Stock, Stock.node_id == Node.node_id)
                .where(Stock.sku.in_(wanted))
            )
        ).all()
        nodes: dict[str, Node] = {}
        atp: dict[str, dict[str, int]] = defaultdict(dict)
        for node, sku, available in rows:
            nodes[node.node_id] = node  # a row per node and SKU: one view per node, built below
            atp[node.node_id][sku] = int(available)
        return NetworkSnapshot(nodes=[_node_view(nodes[k]) for k in sorted(nodes)], atp=dict(atp))

    async def _atp_of_holders(self, skus: Iterable[str], *, customer_id: str | None) -> dict[str, dict[str, int]]:
        """ATP per node and SKU that ``customer_id`` may plan with, of every node with a stock row of any of
        ``skus``, as of one statement: ``snapshot_for`` without the nodes, which the caller reads once itself."""
        rows = await self._session.execute(
            select(Stock.node_id, Stock.sku, atp_expression(_rank(customer_id)))
            .join(Node, Node.node_id == Stock.node_id)
            .where(Stock.sku.in_(sorted(set(skus))))
        )
        atp: dict[str, dict[str, int]] = defaultdict(dict)
        for node_id, sku, available in rows:
            atp[node_id][sku] = int(available)
        return dict(atp)

    async def nodes_on(self, node_ids: Iterable[str], day: date) -> dict[str, NodeView]:
        """These nodes as they stand on ``day`` (a local day): status, holidays and capacity taken that day.
        An unknown id is left out of the answer."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return {}
        rows = list(await self._session.scalars(select(Node).where(Node.node_id.in_(wanted))))
        holidays: dict[str, list[date]] = defaultdict(list)
        for node_id, holiday in await self._session.execute(
            select(NodeHoliday.node_id, NodeHoliday.day).where(NodeHoliday.node_id.in_(wanted), NodeHoliday.day == day)
        ):
            holidays[node_id].append(holiday)
        usage: dict[str, list[NodeCapacityUsage]] = defaultdict(list)
        for row in await self._session.scalars(
            select(NodeCapacityUsage).where(NodeCapacityUsage.node_id.in_(wanted), NodeCapacityUsage.day == day)
        ):
            usage[row.node_id].append(row)
        return {row.node_id: _node_view(row, holidays.get(row.node_id, ()), usage.get(row.node_id, ())) for row in rows}

    async def atp_at(
        self, node_ids: Iterable[str], skus: Iterable[str], *, customer_id: str | None = None
    ) -> dict[str, dict[str, int]]:
        """ATP per node and SKU that ``customer_id`` may plan with (the one ATP rule, tier protection applied).

        Every existing node asked about is in the answer with every SKU asked about: 0 where it holds none.
        An unknown node id is left out."""
        nodes, wanted = sorted(set(node_ids)), sorted(set(skus))
        if not nodes:
            return {}
        known = list(await self._session.scalars(select(Node.node_id).where(Node.node_id.in_(nodes))))
        atp: dict[str, dict[str, int]] = {node_id: dict.fromkeys(wanted, 0) for node_id in known}
        if not wanted:
            return atp
        rows = await self._session.execute(
            select(Stock.node_id, Stock.sku, atp_expression(_rank(customer_id))).where(
                Stock.node_id.in_(nodes), Stock.sku.in_(wanted)
            )
        )
        for node_id, sku, available in rows:
            atp[node_id][sku] = int(available)
        return atp

    async def snapshot_for_order(
        self, order: Order, *, now: datetime, pickup_node_id: str | None = None
    ) -> NetworkSnapshot:
        """Everything one sourcing decision for ``order`` reads, in one transaction.

        Nodes holding any ordered SKU (with the ATP this customer's tier may plan with), plus the customer's
        home branch and the pickup node even when they hold none (a transfer can fill them); their holidays and
        capacity already taken over the promise horizon; the SKUs; the customer; the transfer lanes into the
        home branch or pickup node; and every carrier service.
        """
        skus = sorted({line.sku for line in order.lines})
        atp = await self._atp_of_holders(skus, customer_id=order.customer_id)
        customer_row = await self._session.get(Customer, order.customer_id)
        customer = (
            None
            if customer_row is None
            else CustomerView(
                customer_id=customer_row.customer_id,
                segment=CustomerSegment(customer_row.segment),
                tier=customer_row.tier,
                home_node_id=customer_row.home_node_id,
                allowed_node_ids=frozenset(customer_row.allowed_node_ids),
                excluded_node_ids=frozenset(customer_row.excluded_node_ids),
            )
        )
        receivers = sorted({n for n in (pickup_node_id, customer and customer.home_node_id) if n})
        rows = list(await self._session.scalars(select(Node).where(Node.node_id.in_(sorted({*atp, *receivers})))))
        node_ids = [row.node_id for row in rows]
        first, last = now.date() - timedelta(days=1), now.date() + timedelta(days=PROMISE_HORIZON_DAYS)
        holidays: dict[str, list[date]] = defaultdict(list)
        for node_id, day in await self._session.execute(
            select(NodeHoliday.node_id, NodeHoliday.day).where(
                NodeHoliday.node_id.in_(node_ids), NodeHoliday.day.between(first, last)
            )
        ):
            holidays[node_id].append(day)
        usage: dict[str, list[NodeCapacityUsage]] = defaultdict(list)
        for row in await self._session.scalars(
            select(NodeCapacityUsage).where(
                NodeCapacityUsage.node_id.in_(node_ids), NodeCapacityUsage.day.between(first, last)
            )
        ):
            usage[row.node_id].append(row)
        sku_rows = await self._session.scalars(select(Sku).where(Sku.sku.in_(skus)))
        lanes = await self._session.scalars(
            select(TransferLane)
            .where(TransferLane.destination_node_id.in_(receivers))
            .order_by(TransferLane.origin_node_id, TransferLane.destination_node_id)
        )
        services = await self._session.scalars(select(CarrierService).order_by(CarrierService.service_id))
        return NetworkSnapshot(
            nodes=[
                _node_view(row, holidays.get(row.node_id, ()), usage.get(row.node_id, ()))
                for row in sorted(rows, key=lambda r: r.node_id)
            ],
            atp=atp,
            skus={
                row.sku: SkuView(
                    sku=row.sku,
                    weight_g=row.weight_g,
                    hazmat=row.hazmat,
                    oversize=row.oversize,
                    ship_alone=row.ship_alone,
                )
                for row in sku_rows
            },
            customer=customer,
            lanes=[lane_spec(row) for row in lanes],
            carrier_services=[carrier_service_spec(row) for row in services],
        )

    async def reserve(
        self,
        reservation_key: str,
        order_id: str,
        allocations: Sequence[Allocation],
        *,
        customer_id: str | None = None,
        expires_at: datetime | None = None,
    ) -> ReserveOutcome:
        """Hold every allocation or none, as ``customer_id`` may (tier protection applies); idempotent by key.

        A repeat of a key that succeeded returns the first outcome (``replayed=True``) and reserves nothing,
        even if stock has moved since; if everything it held has been released since, the repeat raises
        ``ReservationReleased`` (a new hold needs a new key). A refusal raises ``OutOfStock`` with the
        shortfall of every stock row short, and rolls back the claim on the key with everything else, so a
        later retry decides afresh. ``expires_at`` makes the hold lapse (the sweeper releases it) unless it is
        committed first.
        """
        if not allocations:
            raise ValueError(f"{reservation_key}: a plan to reserve needs at least one allocation")
        lines = [(a.line_id, a.node_id) for a in allocations]
        if len(set(lines)) != len(lines):
            raise ValueError(f"{reservation_key}: an order line appears twice at one node: {sorted(lines)}")
        if expires_at is not None and expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")

        claimed = await self._session.scalar(
            insert(ReservationRequest)
            .values(reservation_key=reservation_key, order_id=order_id)
            .on_conflict_do_nothing()
            .returning(ReservationRequest.reservation_key)
        )
        if claimed is None:
            return await self._replay(reservation_key, allocations)

        demand: dict[tuple[str, str], int] = defaultdict(int)
        wanted_by: dict[tuple[str, str], list[str]] = defaultdict(list)
        for allocation in allocations:
            demand[(allocation.node_id, allocation.sku)] += allocation.quantity
            wanted_by[(allocation.node_id, allocation.sku)].append(allocation.line_id)
        keys = sorted(demand)
        await self._lock_stock(keys)
        # A fresh statement after the lock: it sees the latest committed figures of the rows now held, and
        # subtracts what is protected from this customer's tier (infra.db.atp, the one ATP rule).
        available = {
            (row.node_id, row.sku): int(row.atp)
            for row in (
                await self._session.execute(
                    select(Stock.node_id, Stock.sku, atp_expression(_rank(customer_id)).label("atp")).where(
                        tuple_(Stock.node_id, Stock.sku).in_(keys)
                    )
                )
            ).all()
        }
        shortfall = [
            Shortfall(
                node_id=node_id,
                sku=sku,
                line_ids=tuple(sorted(wanted_by[(node_id, sku)])),
                requested=demand[(node_id, sku)],
                available=available.get((node_id, sku), 0),
            )
            for node_id, sku in keys
            if available.get((node_id, sku), 0) < demand[(node_id, sku)]
        ]
        if shortfall:
            raise OutOfStock(
                f"cannot hold the plan: {', '.join(s.describe() for s in shortfall)}",
                details={s.key: s.as_detail() for s in shortfall},
            )

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
                    "state": "held",
                    "expires_at": expires_at,
                }
                for a in allocations
            ],
        )
        return ReserveOutcome(reserved_units=sum(demand.values()), replayed=False)

    async def commit(self, reservation_key: str) -> int:
        """Held → committed: the order goes ahead, so its hold stops expiring. Idempotent.

        Returns the number of lines moved (0 when already committed or shipped). A hold past its expiry that
        the sweeper has not released yet can still be committed: its units were never given away. Raises
        ``ReservationReleased`` when nothing is held under the key any more (expired, or released), as those
        units may now be promised to someone else; ``LookupError`` for a key never reserved (a bug).
        """
        if not await self._lock_request(reservation_key):
            raise LookupError(f"no reservation under {reservation_key}")
        changed = (
            await self._session.execute(
                update(Reservation)
                .where(Reservation.reservation_key == reservation_key, Reservation.state == "held")
                .values(state="committed", expires_at=None)
                .returning(Reservation.reservation_id)
            )
        ).all()
        if changed:
            return len(changed)
        states = set(
            await self._session.scalars(select(Reservation.state).where(Reservation.reservation_key == reservation_key))
        )
        if states & {"committed", "consumed"}:
            return 0
        raise _released(reservation_key)

    async def settle(self, reservation_key: str, *, consume: bool, node_id: str | None, actor: str) -> int:
        """Consume (stock shipped) or release (plan abandoned) active reservation lines; idempotent.

        Held and committed lines both settle. Returns the number of reservation lines changed; a second call
        finds none left to change. Consumption journals each stock row it takes units from.
        """
        if not await self._lock_request(reservation_key):
            return 0
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
        await self._give_back(
            _totals((r.node_id, r.sku, r.quantity) for r in changed),
            consume=consume,
            actor=actor,
            reason="shipped",
            source_ref=reservation_key,
        )
        return len(changed)

    async def expire_held(self, now: datetime, *, limit: int = 500) -> int:
        """Release held reservations whose ``expires_at`` is at or before ``now``: one batch of up to ``limit``
        reservation keys, each released whole (never some lines of a plan). Returns how many keys it released.

        Safe beside reserves and beside another sweeper: keys another transaction is working on are skipped
        (``SKIP LOCKED``) and picked up by a later batch. Committed reservations never expire. A release
        changes ``reserved`` only, so nothing is journaled.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        due = select(Reservation.reservation_key).where(Reservation.state == "held", Reservation.expires_at <= now)
        keys = list(
            await self._session.scalars(
                select(ReservationRequest.reservation_key)
                .where(ReservationRequest.reservation_key.in_(due))
                .order_by(ReservationRequest.reservation_key)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        )
        if not keys:
            return 0
        # Checked again now that the keys are locked: a commit may have landed between the scan and the lock.
        released = (
            await self._session.execute(
                update(Reservation)
                .where(
                    Reservation.reservation_key.in_(keys),
                    Reservation.state == "held",
                    Reservation.expires_at <= now,
                )
                .values(state="released")
                .returning(Reservation.reservation_key, Reservation.node_id, Reservation.sku, Reservation.quantity)
            )
        ).all()
        await self._give_back(
            _totals((r.node_id, r.sku, r.quantity) for r in released),
            consume=False,
            actor="sweeper",
            reason="expired",
            source_ref=None,
        )
        return len({row.reservation_key for row in released})

    async def reservations_for(self, order_id: str) -> list[Reservation]:
        rows = await self._session.scalars(
            select(Reservation).where(Reservation.order_id == order_id).order_by(Reservation.reservation_id)
        )
        return list(rows)

    async def _replay(self, reservation_key: str, allocations: Sequence[Allocation]) -> ReserveOutcome:
        """The outcome of the call that claimed the key. A key whose every line was released (compensation,
        expiry) is refused with ``ReservationReleased``: answering "held" would let an order go ahead on
        units it no longer has, so the caller must reserve again under a new key.

        A key is one decision: a repeat asking for other allocations is a bug upstream (plans are recorded so
        this cannot happen), and fails loudly rather than answering for units it did not ask for."""
        rows = (
            await self._session.execute(
                select(
                    Reservation.line_id, Reservation.node_id, Reservation.sku, Reservation.quantity, Reservation.state
                ).where(Reservation.reservation_key == reservation_key)
            )
        ).all()
        held = sorted((r.line_id, r.node_id, r.sku, r.quantity) for r in rows)
        asked = sorted((a.line_id, a.node_id, a.sku, a.quantity) for a in allocations)
        if held != asked:
            raise RuntimeError(f"reservation {reservation_key} was made for {held}, and is now asked for {asked}")
        if {r.state for r in rows} == {"released"}:
            raise _released(reservation_key)
        return ReserveOutcome(reserved_units=sum(r.quantity for r in rows), replayed=True)

    async def _lock_request(self, reservation_key: str) -> bool:
        """Lock the key's request row: calls on one key then run one after the other. False if it is unknown."""
        found = await self._session.scalar(
            select(ReservationRequest.reservation_key)
            .where(ReservationRequest.reservation_key == reservation_key)
            .with_for_update()
        )
        return found is not None

    async def _lock_stock(self, keys: Sequence[tuple[str, str]]) -> None:
        """Lock stock rows in (node_id, sku) order, the order every writer uses, so none wait on each other
        in a cycle. Rows that do not exist are simply not locked (and have nothing to promise)."""
        await self._session.execute(
            select(Stock.node_id)
            .where(tuple_(Stock.node_id, Stock.sku).in_(keys))
            .order_by(Stock.node_id, Stock.sku)
            .with_for_update()
        )

    async def _give_back(
        self, totals: dict[tuple[str, str], int], *, consume: bool, actor: str, reason: str, source_ref: str | None
    ) -> None:
        """Take settled units off ``reserved`` (and off ``on_hand`` when consumed, journaled), row by row in
        (node_id, sku) order."""
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
                        reason=reason,
                        source_ref=source_ref,
                        on_hand_before=on_hand_after + quantity,
                        on_hand_after=on_hand_after,
                    )
                )


def _released(reservation_key: str) -> ReservationReleased:
    return ReservationReleased(
        f"nothing is held under {reservation_key} any more: it expired or was released",
        details={"reservation_key": reservation_key},
    )


def _rank(customer_id: str | None) -> int | ColumnElement[int]:
    """The allocation rank ATP is computed for: the customer's tier, or below every tier when unknown."""
    return UNTIERED_RANK if customer_id is None else customer_rank(customer_id)


def _totals(lines: Iterable[tuple[str, str, int]]) -> dict[tuple[str, str], int]:
    """Units per (node_id, sku) of (node_id, sku, quantity) reservation lines."""
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for node_id, sku, quantity in lines:
        totals[(node_id, sku)] += quantity
    return totals


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

    async def unmatched(self, *, outcomes: Sequence[str], limit: int) -> list[InboundEvent]:
        """Stored events that reached no workflow (their order unknown, or closed), newest first."""
        rows = await self._session.scalars(
            select(InboundEvent)
            .where(InboundEvent.outcome.in_(outcomes))
            .order_by(InboundEvent.received_at.desc(), InboundEvent.event_id)
            .limit(limit)
        )
        return list(rows)
