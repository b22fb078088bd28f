"""network model, allocation tiers, expiry, feeds

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 05:34:03.157048
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "allocation_tier",
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_allocation_tier_rank_positive")),
        sa.PrimaryKeyConstraint("tier", name=op.f("pk_allocation_tier")),
        sa.UniqueConstraint("rank", name=op.f("uq_allocation_tier_rank")),
    )
    op.create_table(
        "carrier_service",
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("service_level", sa.String(length=32), nullable=False),
        sa.Column("transit_days_by_zone", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("rate_by_zone", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("cutoff_local", sa.Time(), nullable=True),
        sa.PrimaryKeyConstraint("service_id", name=op.f("pk_carrier_service")),
    )
    op.create_table(
        "customer",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("segment", sa.String(length=32), server_default="b2c", nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=True),
        sa.Column("home_node_id", sa.String(length=64), nullable=True),
        sa.Column("allowed_node_ids", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("excluded_node_ids", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("credit_limit_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "credit_limit_minor IS NULL OR credit_limit_minor >= 0", name=op.f("ck_customer_credit_limit_non_negative")
        ),
        sa.ForeignKeyConstraint(["home_node_id"], ["node.node_id"], name=op.f("fk_customer_home_node_id_node")),
        sa.ForeignKeyConstraint(["tier"], ["allocation_tier.tier"], name=op.f("fk_customer_tier_allocation_tier")),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_customer")),
    )
    op.create_table(
        "node_capacity_usage",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("orders", sa.Integer(), server_default="0", nullable=False),
        sa.Column("units", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint("orders >= 0", name=op.f("ck_node_capacity_usage_orders_non_negative")),
        sa.CheckConstraint("units >= 0", name=op.f("ck_node_capacity_usage_units_non_negative")),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.node_id"], name=op.f("fk_node_capacity_usage_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", "day", name=op.f("pk_node_capacity_usage")),
    )
    op.create_table(
        "node_holiday",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=100), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["node_id"], ["node.node_id"], name=op.f("fk_node_holiday_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("node_id", "day", name=op.f("pk_node_holiday")),
    )
    op.create_table(
        "transfer_lane",
        sa.Column("origin_node_id", sa.String(length=64), nullable=False),
        sa.Column("destination_node_id", sa.String(length=64), nullable=False),
        sa.Column("transit_hours", sa.Integer(), nullable=False),
        sa.Column("cost_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), server_default="USD", nullable=False),
        sa.Column("departure_days", postgresql.ARRAY(sa.String(length=3)), server_default="{}", nullable=False),
        sa.Column("departure_local", sa.Time(), nullable=True),
        sa.CheckConstraint("origin_node_id <> destination_node_id", name=op.f("ck_transfer_lane_distinct_ends")),
        sa.CheckConstraint("transit_hours >= 0 AND cost_minor >= 0", name=op.f("ck_transfer_lane_non_negative")),
        sa.ForeignKeyConstraint(
            ["destination_node_id"],
            ["node.node_id"],
            name=op.f("fk_transfer_lane_destination_node_id_node"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["origin_node_id"], ["node.node_id"], name=op.f("fk_transfer_lane_origin_node_id_node"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("origin_node_id", "destination_node_id", name=op.f("pk_transfer_lane")),
    )
    op.create_table(
        "stock_protection",
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("tier", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.CheckConstraint("quantity >= 0", name=op.f("ck_stock_protection_quantity_non_negative")),
        sa.ForeignKeyConstraint(
            ["node_id", "sku"],
            ["stock.node_id", "stock.sku"],
            name=op.f("fk_stock_protection_node_id_stock"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tier"], ["allocation_tier.tier"], name=op.f("fk_stock_protection_tier_allocation_tier")
        ),
        sa.PrimaryKeyConstraint("node_id", "sku", "tier", name=op.f("pk_stock_protection")),
    )
    op.add_column(
        "inventory_journal", sa.Column("kind", sa.String(length=32), server_default="adjustment", nullable=False)
    )
    op.add_column("inventory_journal", sa.Column("source_ref", sa.String(length=200), nullable=True))
    op.add_column("node", sa.Column("address_line1", sa.String(length=200), server_default="", nullable=False))
    op.add_column("node", sa.Column("postal_code", sa.String(length=20), server_default="", nullable=False))
    op.add_column(
        "node",
        sa.Column("operating_hours", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
    )
    op.add_column("node", sa.Column("cutoff_local", sa.Time(), nullable=True))
    op.add_column("node", sa.Column("pick_pack_minutes", sa.Integer(), server_default="120", nullable=False))
    op.add_column("node", sa.Column("capacity_orders_per_day", sa.Integer(), nullable=True))
    op.add_column("node", sa.Column("capacity_units_per_day", sa.Integer(), nullable=True))
    op.add_column("reservation", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_reservation_held_expiry", "reservation", ["expires_at"], unique=False, postgresql_where="state = 'held'"
    )
    op.add_column("sku", sa.Column("length_mm", sa.Integer(), server_default="0", nullable=False))
    op.add_column("sku", sa.Column("width_mm", sa.Integer(), server_default="0", nullable=False))
    op.add_column("sku", sa.Column("height_mm", sa.Integer(), server_default="0", nullable=False))
    op.add_column("sku", sa.Column("hazmat", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("sku", sa.Column("oversize", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("sku", sa.Column("ship_alone", sa.Boolean(), server_default="false", nullable=False))
    op.add_column("stock", sa.Column("snapshot_at", sa.DateTime(timezone=True), nullable=True))
    # Autogenerate does not see check constraints added to existing tables: these are written by hand.
    op.create_check_constraint(op.f("ck_node_pick_pack_non_negative"), "node", "pick_pack_minutes >= 0")
    op.create_check_constraint(
        op.f("ck_node_capacity_orders_non_negative"),
        "node",
        "capacity_orders_per_day IS NULL OR capacity_orders_per_day >= 0",
    )
    op.create_check_constraint(
        op.f("ck_node_capacity_units_non_negative"),
        "node",
        "capacity_units_per_day IS NULL OR capacity_units_per_day >= 0",
    )
    op.create_check_constraint(
        op.f("ck_sku_measures"), "sku", "weight_g >= 0 AND length_mm >= 0 AND width_mm >= 0 AND height_mm >= 0"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_sku_measures"), "sku", type_="check")
    op.drop_constraint(op.f("ck_node_capacity_units_non_negative"), "node", type_="check")
    op.drop_constraint(op.f("ck_node_capacity_orders_non_negative"), "node", type_="check")
    op.drop_constraint(op.f("ck_node_pick_pack_non_negative"), "node", type_="check")
    op.drop_column("stock", "snapshot_at")
    op.drop_column("sku", "ship_alone")
    op.drop_column("sku", "oversize")
    op.drop_column("sku", "hazmat")
    op.drop_column("sku", "height_mm")
    op.drop_column("sku", "width_mm")
    op.drop_column("sku", "length_mm")
    op.drop_index("ix_reservation_held_expiry", table_name="reservation", postgresql_where="state = 'held'")
    op.drop_column("reservation", "expires_at")
    op.drop_column("node", "capacity_units_per_day")
    op.drop_column("node", "capacity_orders_per_day")
    op.drop_column("node", "pick_pack_minutes")
    op.drop_column("node", "cutoff_local")
    op.drop_column("node", "operating_hours")
    op.drop_column("node", "postal_code")
    op.drop_column("node", "address_line1")
    op.drop_column("inventory_journal", "source_ref")
    op.drop_column("inventory_journal", "kind")
    op.drop_table("stock_protection")
    op.drop_table("transfer_lane")
    op.drop_table("node_holiday")
    op.drop_table("node_capacity_usage")
    op.drop_table("customer")
    op.drop_table("carrier_service")
    op.drop_table("allocation_tier")
