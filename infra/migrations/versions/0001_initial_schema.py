"""network, stock, reservations, inbound events

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 05:07:44.450378
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_event",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('applied', 'unknown_order', 'order_closed')", name=op.f("ck_inbound_event_outcome")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_inbound_event")),
    )
    op.create_index(op.f("ix_inbound_event_order_id"), "inbound_event", ["order_id"], unique=False)
    op.create_table(
        "inventory_journal",
        sa.Column("journal_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("on_hand_before", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("journal_id", name=op.f("pk_inventory_journal")),
    )
    op.create_index("ix_inventory_journal_node_sku", "inventory_journal", ["node_id", "sku"], unique=False)
    op.create_table(
        "node",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="active", nullable=False),
        sa.Column("capabilities", postgresql.ARRAY(sa.String(length=32)), server_default="{}", nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), server_default="100", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kind IN ('dc', 'store', '3pl', 'dropship')", name=op.f("ck_node_kind")),
        sa.CheckConstraint("status IN ('active', 'paused')", name=op.f("ck_node_status")),
        sa.PrimaryKeyConstraint("node_id", name=op.f("pk_node")),
    )
    op.create_table(
        "reservation_request",
        sa.Column("reservation_key", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("reservation_key", name=op.f("pk_reservation_request")),
    )
    op.create_index(op.f("ix_reservation_request_order_id"), "reservation_request", ["order_id"], unique=False)
    op.create_table(
        "sku",
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("weight_g", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("sku", name=op.f("pk_sku")),
    )
    op.create_table(
        "reservation",
        sa.Column("reservation_id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("reservation_key", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("line_id", sa.String(length=32), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="held", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("state IN ('held', 'committed', 'consumed', 'released')", name=op.f("ck_reservation_state")),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_reservation_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["reservation_key"],
            ["reservation_request.reservation_key"],
            name=op.f("fk_reservation_reservation_key_reservation_request"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reservation_id", name=op.f("pk_reservation")),
        sa.UniqueConstraint("reservation_key", "line_id", "node_id", name="uq_reservation_key_line_node"),
    )
    op.create_index(
        "ix_reservation_node_sku_active",
        "reservation",
        ["node_id", "sku"],
        unique=False,
        postgresql_where="state IN ('held', 'committed')",
    )
    op.create_index("ix_reservation_order_id", "reservation", ["order_id"], unique=False)
    op.create_table(
        "stock",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("on_hand", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reserved", sa.Integer(), server_default="0", nullable=False),
        sa.Column("safety_stock", sa.Integer(), server_default="0", nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("on_hand >= 0", name=op.f("ck_stock_on_hand_non_negative")),
        sa.CheckConstraint("reserved <= on_hand", name=op.f("ck_stock_reserved_within_on_hand")),
        sa.CheckConstraint("reserved >= 0", name=op.f("ck_stock_reserved_non_negative")),
        sa.CheckConstraint("safety_stock >= 0", name=op.f("ck_stock_safety_stock_non_negative")),
        sa.ForeignKeyConstraint(["node_id"], ["node.node_id"], name=op.f("fk_stock_node_id_node")),
        sa.ForeignKeyConstraint(["sku"], ["sku.sku"], name=op.f("fk_stock_sku_sku")),
        sa.PrimaryKeyConstraint("node_id", "sku", name=op.f("pk_stock")),
    )
    op.create_index("ix_stock_sku", "stock", ["sku"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stock_sku", table_name="stock")
    op.drop_table("stock")
    op.drop_index("ix_reservation_order_id", table_name="reservation")
    op.drop_index(
        "ix_reservation_node_sku_active", table_name="reservation", postgresql_where="state IN ('held', 'committed')"
    )
    op.drop_table("reservation")
    op.drop_table("sku")
    op.drop_index(op.f("ix_reservation_request_order_id"), table_name="reservation_request")
    op.drop_table("reservation_request")
    op.drop_table("node")
    op.drop_index("ix_inventory_journal_node_sku", table_name="inventory_journal")
    op.drop_table("inventory_journal")
    op.drop_index(op.f("ix_inbound_event_order_id"), table_name="inbound_event")
    op.drop_table("inbound_event")
