"""The schema. Alembic migrations under ``infra/migrations`` build it; a test proves the two agree."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _created() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False)


class Node(Base):
    """A place that can fulfil: DC, store/branch, 3PL or dropship vendor."""

    __tablename__ = "node"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    capabilities: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str] = mapped_column(String(100))
    country: Mapped[str] = mapped_column(String(2))
    timezone: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, server_default="100")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("kind IN ('dc', 'store', '3pl', 'dropship')", name="kind"),
        CheckConstraint("status IN ('active', 'paused')", name="status"),
    )


class Sku(Base):
    __tablename__ = "sku"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    weight_g: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Stock(Base):
    """Units of one SKU at one node. ``reserved`` can never exceed ``on_hand``: the database refuses it."""

    __tablename__ = "stock"

    node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("sku.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, server_default="0")
    reserved: Mapped[int] = mapped_column(Integer, server_default="0")
    safety_stock: Mapped[int] = mapped_column(Integer, server_default="0")
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_non_negative"),
        Index("ix_stock_sku", "sku"),
    )


class ReservationRequest(Base):
    """One reserve call, identified by its business key; a repeat of the key returns what it did the first time."""

    __tablename__ = "reservation_request"

    reservation_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = _created()


class Reservation(Base):
    """Units of one order line held at one node: held → consumed (shipped) or released (abandoned)."""

    __tablename__ = "reservation"

    reservation_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    reservation_key: Mapped[str] = mapped_column(ForeignKey("reservation_request.reservation_key", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(64))
    line_id: Mapped[str] = mapped_column(String(32))
    node_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), server_default="held")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("state IN ('held', 'committed', 'consumed', 'released')", name="state"),
        UniqueConstraint("reservation_key", "line_id", "node_id", name="uq_reservation_key_line_node"),
        Index("ix_reservation_order_id", "order_id"),
        Index("ix_reservation_node_sku_active", "node_id", "sku", postgresql_where="state IN ('held', 'committed')"),
    )


class InboundEvent(Base):
    """Every accepted webhook event, once: the dedup record and the audit trail of what came in."""

    __tablename__ = "inbound_event"

    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime] = _created()

    __table_args__ = (CheckConstraint("outcome IN ('applied', 'unknown_order', 'order_closed')", name="outcome"),)


class InventoryJournal(Base):
    """Every change to stock: who, when, why, before and after."""

    __tablename__ = "inventory_journal"

    journal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    node_id: Mapped[str] = mapped_column(String(64))
    sku: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    on_hand_before: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("ix_inventory_journal_node_sku", "node_id", "sku"),)
