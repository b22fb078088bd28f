"""Test data and waiting helpers shared by the database, workflow, API and end-to-end tests.

Every test builds its own small network with ids unique to it, so tests share one database without
seeing each other's rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from domain.orders import Address, GeoPoint, Order, OrderLine
from infra.db.tables import Node, Reservation, Sku, Stock
from infra.db.uow import UowFactory

T = TypeVar("T")

# Settings for an API under test: orders are released as soon as they are planned (the change window, which
# holds releases for a few minutes by default, has tests of its own).
IMMEDIATE: dict[str, object] = {"ORCH_ORDER_CHANGE_WINDOW_S": 0}

AUSTIN = GeoPoint(lat=30.2672, lon=-97.7431)
DALLAS = GeoPoint(lat=32.7767, lon=-96.7970)
NEWARK = GeoPoint(lat=40.7357, lon=-74.1724)


@dataclass(frozen=True)
class NodeSpec:
    name: str
    location: GeoPoint
    kind: str = "dc"
    capabilities: tuple[str, ...] = ("ship",)
    status: str = "active"
    priority: int = 100


@dataclass(frozen=True)
class SeededNetwork:
    prefix: str
    node_ids: dict[str, str]
    skus: dict[str, str]

    def node(self, name: str) -> str:
        return self.node_ids[name]

    def sku(self, name: str) -> str:
        return self.skus[name]


async def build_network(uow: UowFactory, nodes: Iterable[NodeSpec], stock: dict[tuple[str, str], int]) -> SeededNetwork:
    """Insert nodes, SKUs and stock under a unique prefix. ``stock`` is keyed by (node name, sku name)."""
    prefix = uuid.uuid4().hex[:8].upper()
    specs = list(nodes)
    node_ids = {spec.name: f"T{prefix}-{spec.name}" for spec in specs}
    skus = {sku: f"T{prefix}-{sku}" for _, sku in stock}
    async with uow() as u:
        await u.session.execute(
            insert(Node),
            [
                {
                    "node_id": node_ids[s.name], "name": s.name, "kind": s.kind, "status": s.status,
                    "capabilities": list(s.capabilities), "lat": s.location.lat, "lon": s.location.lon,
                    "city": s.name, "region": "TX", "country": "US", "timezone": "America/Chicago",
                    "priority": s.priority,
                }
                for s in specs
            ],
        )  # fmt: skip
        await u.session.execute(insert(Sku), [{"sku": sku_id, "name": name} for name, sku_id in skus.items()])
        await u.session.execute(
            insert(Stock),
            [
                {"node_id": node_ids[node], "sku": skus[sku], "on_hand": quantity}
                for (node, sku), quantity in stock.items()
            ],
        )
        await u.commit()
    return SeededNetwork(prefix=prefix, node_ids=node_ids, skus=skus)


def make_order(
    network: SeededNetwork, lines: dict[str, int], *, order_id: str | None = None, destination: GeoPoint = AUSTIN
) -> Order:
    return Order(
        order_id=order_id or f"T{network.prefix}-{uuid.uuid4().hex[:6]}",
        customer_id="C-1",
        ship_to=Address(
            name="Test Customer", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US",
            location=destination,
        ),
        lines=[
            OrderLine(line_id=str(i), sku=network.sku(name), quantity=qty)
            for i, (name, qty) in enumerate(lines.items(), start=1)
        ],
        placed_at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )  # fmt: skip


async def stock_row(uow: UowFactory, node_id: str, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) of one stock row, read fresh."""
    async with uow() as u:
        row = (await u.session.execute(select(Stock.on_hand, Stock.reserved).filter_by(node_id=node_id, sku=sku))).one()
        return int(row.on_hand), int(row.reserved)


async def states_of(uow: UowFactory, key: str) -> list[str]:
    """States of a reservation key's lines, in the order they were made."""
    async with uow() as u:
        rows = await u.session.scalars(
            select(Reservation.state).where(Reservation.reservation_key == key).order_by(Reservation.reservation_id)
        )
        return list(rows)


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, timeout_s: float = 20) -> T:
    """Poll ``probe`` until ``check`` holds; fail with the last value seen. For state owned by another process."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if check(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last value: {value!r}")
        await asyncio.sleep(0.1)


TEST_ADMIN = "test-admin"


async def api_key_headers(
    app: Any, *, role: str = "admin", name: str = TEST_ADMIN, tenant: str | None = None
) -> dict[str, str]:
    """A new API key for an app whose lifespan has started, as the header that sends it."""
    async with app.state.orchestrator.uow() as uow:
        created = await uow.api_keys.create(name=name, role=role, tenant=tenant)
        await uow.commit()
    return {"Authorization": f"Bearer {created.token}"}
