"""The schema. Alembic migrations under ``infra/migrations`` build it; a test proves the two agree."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    Time,
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
    address_line1: Mapped[str] = mapped_column(String(200), server_default="")
    postal_code: Mapped[str] = mapped_column(String(20), server_default="")
    priority: Mapped[int] = mapped_column(Integer, server_default="100")
    # {"mon": ["08:00", "18:00"], ...} in the node's time zone; a missing day is closed.
    operating_hours: Mapped[dict[str, list[str]]] = mapped_column(JSONB, server_default="{}")
    # Orders released after the cut-off (local time) are picked the next operating day.
    cutoff_local: Mapped[time | None] = mapped_column(Time)
    pick_pack_minutes: Mapped[int] = mapped_column(Integer, server_default="120")
    # Daily capacity; NULL means unlimited. Usage per day is in node_capacity_usage.
    capacity_orders_per_day: Mapped[int | None] = mapped_column(Integer)
    capacity_units_per_day: Mapped[int | None] = mapped_column(Integer)
    # Who receives releases and cancels ("wms", "3pl", "store", "dropship") and at which base URL;
    # NULL provider: derived from the kind; NULL endpoint: the worker's default (``wms_url``).
    provider: Mapped[str | None] = mapped_column(String(16))
    endpoint: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("kind IN ('dc', 'store', '3pl', 'dropship')", name="kind"),
        CheckConstraint("status IN ('active', 'paused')", name="status"),
        CheckConstraint("provider IS NULL OR provider IN ('wms', '3pl', 'store', 'dropship')", name="provider"),
        CheckConstraint("pick_pack_minutes >= 0", name="pick_pack_non_negative"),
        CheckConstraint(
            "capacity_orders_per_day IS NULL OR capacity_orders_per_day >= 0", name="capacity_orders_non_negative"
        ),
        CheckConstraint(
            "capacity_units_per_day IS NULL OR capacity_units_per_day >= 0", name="capacity_units_non_negative"
        ),
    )


class NodeHoliday(Base):
    """A day a node does not work (local date)."""

    __tablename__ = "node_holiday"

    node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), server_default="")


class NodeCapacityUsage(Base):
    """Orders and units a node has taken on for one local day, counted against its daily capacity."""

    __tablename__ = "node_capacity_usage"

    node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    orders: Mapped[int] = mapped_column(Integer, server_default="0")
    units: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        CheckConstraint("orders >= 0", name="orders_non_negative"),
        CheckConstraint("units >= 0", name="units_non_negative"),
    )


class Sku(Base):
    __tablename__ = "sku"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    weight_g: Mapped[int] = mapped_column(Integer, server_default="0")
    length_mm: Mapped[int] = mapped_column(Integer, server_default="0")
    width_mm: Mapped[int] = mapped_column(Integer, server_default="0")
    height_mm: Mapped[int] = mapped_column(Integer, server_default="0")
    hazmat: Mapped[bool] = mapped_column(Boolean, server_default="false")
    oversize: Mapped[bool] = mapped_column(Boolean, server_default="false")
    ship_alone: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("weight_g >= 0 AND length_mm >= 0 AND width_mm >= 0 AND height_mm >= 0", name="measures"),
    )


class AllocationTier(Base):
    """A customer tier for allocation; rank 1 is served first. Stock can be protected for higher tiers."""

    __tablename__ = "allocation_tier"

    tier: Mapped[str] = mapped_column(String(32), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, unique=True)
    description: Mapped[str] = mapped_column(String(200), server_default="")

    __table_args__ = (CheckConstraint("rank >= 1", name="rank_positive"),)


class Customer(Base):
    __tablename__ = "customer"

    customer_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    segment: Mapped[str] = mapped_column(String(32), server_default="b2c")
    tier: Mapped[str | None] = mapped_column(ForeignKey("allocation_tier.tier"))
    home_node_id: Mapped[str | None] = mapped_column(ForeignKey("node.node_id"))
    allowed_node_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    excluded_node_ids: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    credit_limit_minor: Mapped[int | None] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("credit_limit_minor IS NULL OR credit_limit_minor >= 0", name="credit_limit_non_negative"),
    )


class TransferLane(Base):
    """Stock can move from ``origin`` to ``destination``: how long it takes, what it costs, when it leaves."""

    __tablename__ = "transfer_lane"

    origin_node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id", ondelete="CASCADE"), primary_key=True)
    destination_node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id", ondelete="CASCADE"), primary_key=True)
    transit_hours: Mapped[int] = mapped_column(Integer)
    cost_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    # Weekdays a transfer departs ("mon".."sun") and the local departure time.
    departure_days: Mapped[list[str]] = mapped_column(ARRAY(String(3)), server_default="{}")
    departure_local: Mapped[time | None] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("origin_node_id <> destination_node_id", name="distinct_ends"),
        CheckConstraint("transit_hours >= 0 AND cost_minor >= 0", name="non_negative"),
    )


class CarrierService(Base):
    """A carrier's service level with its transit days and rates by distance zone."""

    __tablename__ = "carrier_service"

    service_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(64))
    service_level: Mapped[str] = mapped_column(String(32))
    # {"1": 1, "2": 2, ...}: transit days by zone; {"1": {"base_minor": 650, "per_kg_minor": 90}, ...}: rates.
    transit_days_by_zone: Mapped[dict[str, int]] = mapped_column(JSONB)
    rate_by_zone: Mapped[dict[str, dict[str, int]]] = mapped_column(JSONB)
    currency: Mapped[str] = mapped_column(String(3), server_default="USD")
    cutoff_local: Mapped[time | None] = mapped_column(Time)


class Stock(Base):
    """Units of one SKU at one node. ``reserved`` can never exceed ``on_hand``: the database refuses it."""

    __tablename__ = "stock"

    node_id: Mapped[str] = mapped_column(ForeignKey("node.node_id"), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("sku.sku"), primary_key=True)
    on_hand: Mapped[int] = mapped_column(Integer, server_default="0")
    reserved: Mapped[int] = mapped_column(Integer, server_default="0")
    safety_stock: Mapped[int] = mapped_column(Integer, server_default="0")
    # As-of time of the last absolute snapshot applied: an older snapshot is ignored.
    snapshot_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("on_hand >= 0", name="on_hand_non_negative"),
        CheckConstraint("reserved >= 0", name="reserved_non_negative"),
        CheckConstraint("reserved <= on_hand", name="reserved_within_on_hand"),
        CheckConstraint("safety_stock >= 0", name="safety_stock_non_negative"),
        Index("ix_stock_sku", "sku"),
    )


class StockProtection(Base):
    """Units of a stock row that only customers of ``tier`` or a higher tier may take (nested allocation).

    A customer of rank r sees ATP = on_hand - reserved - safety_stock - (protection of every tier ranked
    above r); the highest tier sees everything but safety stock.
    """

    __tablename__ = "stock_protection"

    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    tier: Mapped[str] = mapped_column(ForeignKey("allocation_tier.tier"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_non_negative"),
        ForeignKeyConstraint(["node_id", "sku"], ["stock.node_id", "stock.sku"], ondelete="CASCADE"),
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
    # Held reservations lapse at expires_at (the sweeper releases them); committed ones do not expire.
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_reservation_held_expiry", "expires_at", postgresql_where="state = 'held'"),
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
    # snapshot | adjustment | receipt | damage | cycle_count | shipment | seed
    kind: Mapped[str] = mapped_column(String(32), server_default="adjustment")
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    # What caused it: a feed's batch id and row, a reservation key.
    source_ref: Mapped[str | None] = mapped_column(String(200))
    on_hand_before: Mapped[int] = mapped_column(Integer)
    on_hand_after: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (Index("ix_inventory_journal_node_sku", "node_id", "sku"),)


class OrderPlan(Base):
    """A sourcing decision, recorded the first time it is made: a retried, replayed or reset workflow gets the
    same plan back for the same attempt instead of re-deciding on today's stock (which could pick another
    node and release the order twice). Also the audit record of why an order went where it went."""

    __tablename__ = "order_plan"

    plan_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    policy_version: Mapped[str] = mapped_column(String(64))
    plan: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # What the plan was asked for (the order, its geocoded destination, the attempt and excluded nodes), so the
    # rules simulator can re-plan recent orders under another policy. NULL on plans recorded before 0004.
    request: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("attempt >= 1", name="attempt_positive"),
        UniqueConstraint("order_id", "attempt", name="uq_order_plan_order_attempt"),
        # The simulator's "latest orders": newest first, only plans that kept their request.
        Index("ix_order_plan_recent_requests", "created_at", postgresql_where="request IS NOT NULL"),
    )


class PolicyVersion(Base):
    """One version of the sourcing policy (``domain.policy.PolicyDocument``), numbered 1, 2, 3 … in the order
    they were created.

    Versions are immutable: nothing ever updates or deletes a row (a trigger refuses both), so a plan's
    ``policy_version`` always names the exact rules that made it. Which version is in force is not stored here
    but derived from ``policy_event``. ``checksum`` is the sha256 of the document's canonical JSON: identical
    drafts share it.
    """

    __tablename__ = "policy_version"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    document: Mapped[dict[str, Any]] = mapped_column(JSONB)
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    based_on: Mapped[int | None] = mapped_column(ForeignKey("policy_version.version"))
    note: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("checksum ~ '^[0-9a-f]{64}$'", name="checksum_sha256"),
        CheckConstraint("based_on IS NULL OR based_on < version", name="based_on_earlier"),
    )


class PolicyEvent(Base):
    """The policy journal, append-only like the versions: a version was created, activated, or re-activated by a
    rollback. The active version is the version of the latest ``activated`` / ``rolled_back`` event (none: the
    built-in policy)."""

    __tablename__ = "policy_event"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("policy_version.version"))
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = _created()
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")

    __table_args__ = (
        CheckConstraint("action IN ('created', 'activated', 'rolled_back')", name="action"),
        Index("ix_policy_event_version", "version"),
    )


class OrderStatus(Base):
    """The latest status of each order the workflows have published: a projection, only ever moved forward
    (a higher ``seq``), written in the same transaction as the outgoing event that announces it."""

    __tablename__ = "order_status"

    order_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(32))
    customer_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("seq >= 1", name="seq_positive"),)


class OutboxEvent(Base):
    """An outgoing event (the transactional outbox): one per order status change, ``<order_id>:status:<seq>``.
    Never updated; the dispatcher delivers it to every subscription that matched when it was written."""

    __tablename__ = "outbox_event"

    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _created()

    __table_args__ = (
        CheckConstraint("seq >= 1", name="seq_positive"),
        UniqueConstraint("order_id", "seq", name="uq_outbox_event_order_seq"),
    )


class Subscription(Base):
    """Someone outside (an OMS, an ERP, a sales channel) who wants our events, signed with their secret.
    ``event_types`` empty means every type; an entry ending in ``*`` is a prefix. Deactivated, never deleted."""

    __tablename__ = "subscription"

    subscription_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Stored as given: it signs every outgoing event (HMAC-SHA256), so it must be readable, not hashed.
    secret: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(64)), server_default="{}")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = _created()


class OutboxDelivery(Base):
    """One event to one subscription: ``pending`` until the subscriber answers 2xx (``delivered``) or the
    attempts run out (``dead``, the dead-letter list, replayable). ``order_id`` and ``seq`` are copied from the
    event so the dispatcher can find the head of each (subscription, order) queue from one index."""

    __tablename__ = "outbox_delivery"

    subscription_id: Mapped[str] = mapped_column(ForeignKey("subscription.subscription_id"), primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_event.event_id"), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("state IN ('pending', 'delivered', 'dead')", name="state"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        # The dispatcher's two questions: what is due, and is anything earlier still pending for this order?
        Index("ix_outbox_delivery_due", "next_attempt_at", postgresql_where="state = 'pending'"),
        Index(
            "ix_outbox_delivery_queue",
            "subscription_id",
            "order_id",
            "seq",
            postgresql_where="state = 'pending'",
        ),
        Index("ix_outbox_delivery_dead", "subscription_id", postgresql_where="state = 'dead'"),
    )


class ApiKey(Base):
    """A caller of the API: ``<key_id>.<secret>`` is its bearer token; only the secret's SHA-256 is kept.
    ``tenant`` is the integration or channel the key acts for (null for staff roles). Revoked, never deleted."""

    __tablename__ = "api_key"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiJournal(Base):
    """Every mutating call that passed authentication: who (key, role, tenant), what, why, and how it ended."""

    __tablename__ = "api_journal"
    __table_args__ = (Index("ix_api_journal_key_id_at", "key_id", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    key_id: Mapped[str | None] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    tenant: Mapped[str | None] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2000))
    status_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(String(200))
    # A truncated summary of the request body, and of the response body (the "after"), when they were JSON.
    request: Mapped[Any] = mapped_column(JSONB, nullable=True)
    response: Mapped[Any] = mapped_column(JSONB, nullable=True)
