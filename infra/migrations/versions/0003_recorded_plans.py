"""recorded plans

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 05:54:39.360280
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_plan",
        sa.Column("plan_id", sa.String(length=200), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("policy_version", sa.String(length=64), nullable=False),
        sa.Column("plan", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("attempt >= 1", name=op.f("ck_order_plan_attempt_positive")),
        sa.PrimaryKeyConstraint("plan_id", name=op.f("pk_order_plan")),
        sa.UniqueConstraint("order_id", "attempt", name="uq_order_plan_order_attempt"),
    )
    op.create_index(op.f("ix_order_plan_order_id"), "order_plan", ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_plan_order_id"), table_name="order_plan")
    op.drop_table("order_plan")
