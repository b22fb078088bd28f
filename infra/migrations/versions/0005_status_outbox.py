"""status outbox: the order status projection, outgoing events, subscriptions and their deliveries

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_status",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_order_status_seq_positive")),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_order_status")),
    )
    op.create_table(
        "outbox_event",
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_outbox_event_seq_positive")),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_outbox_event")),
        sa.UniqueConstraint("order_id", "seq", name="uq_outbox_event_order_seq"),
    )
    op.create_table(
        "subscription",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("event_types", postgresql.ARRAY(sa.String(length=64)), server_default="{}", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("subscription_id", name=op.f("pk_subscription")),
    )
    op.create_table(
        "outbox_delivery",
        sa.Column("subscription_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'dead')", name=op.f("ck_outbox_delivery_state")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_delivery_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["event_id"], ["outbox_event.event_id"], name=op.f("fk_outbox_delivery_event_id_outbox_event")
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscription.subscription_id"],
            name=op.f("fk_outbox_delivery_subscription_id_subscription"),
        ),
        sa.PrimaryKeyConstraint("subscription_id", "event_id", name=op.f("pk_outbox_delivery")),
    )
    op.create_index(
        "ix_outbox_delivery_due",
        "outbox_delivery",
        ["next_attempt_at"],
        unique=False,
        postgresql_where="state = 'pending'",
    )
    op.create_index(
        "ix_outbox_delivery_queue",
        "outbox_delivery",
        ["subscription_id", "order_id", "seq"],
        unique=False,
        postgresql_where="state = 'pending'",
    )
    op.create_index(
        "ix_outbox_delivery_dead",
        "outbox_delivery",
        ["subscription_id"],
        unique=False,
        postgresql_where="state = 'dead'",
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_delivery_dead", table_name="outbox_delivery", postgresql_where="state = 'dead'")
    op.drop_index("ix_outbox_delivery_queue", table_name="outbox_delivery", postgresql_where="state = 'pending'")
    op.drop_index("ix_outbox_delivery_due", table_name="outbox_delivery", postgresql_where="state = 'pending'")
    op.drop_table("outbox_delivery")
    op.drop_table("subscription")
    op.drop_table("outbox_event")
    op.drop_table("order_status")
