"""sourcing policies: versions, their journal, and what each plan was asked for

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 09:12:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Versions and their journal are append-only. The repository never updates or deletes them; this makes the
# database refuse it too, whoever asks (a hand-written fix in psql included).
APPEND_ONLY = """
CREATE FUNCTION refuse_policy_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation',
              HINT = 'create a new policy version instead of changing one';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "policy_version",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column("based_on", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_policy_version_version_positive")),
        sa.CheckConstraint("checksum ~ '^[0-9a-f]{64}$'", name=op.f("ck_policy_version_checksum_sha256")),
        sa.CheckConstraint("based_on IS NULL OR based_on < version", name=op.f("ck_policy_version_based_on_earlier")),
        sa.ForeignKeyConstraint(
            ["based_on"], ["policy_version.version"], name=op.f("fk_policy_version_based_on_policy_version")
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_version")),
    )
    op.create_index(op.f("ix_policy_version_checksum"), "policy_version", ["checksum"], unique=False)
    op.create_table(
        "policy_event",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.CheckConstraint("action IN ('created', 'activated', 'rolled_back')", name=op.f("ck_policy_event_action")),
        sa.ForeignKeyConstraint(
            ["version"], ["policy_version.version"], name=op.f("fk_policy_event_version_policy_version")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_event")),
    )
    op.create_index("ix_policy_event_version", "policy_event", ["version"], unique=False)
    op.execute(APPEND_ONLY)
    for table in ("policy_version", "policy_event"):
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_policy_change()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION refuse_policy_change()"
        )

    op.add_column("order_plan", sa.Column("request", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index(
        "ix_order_plan_recent_requests",
        "order_plan",
        ["created_at"],
        unique=False,
        postgresql_where="request IS NOT NULL",
    )


def downgrade() -> None:
    op.drop_index("ix_order_plan_recent_requests", table_name="order_plan", postgresql_where="request IS NOT NULL")
    op.drop_column("order_plan", "request")
    op.drop_index("ix_policy_event_version", table_name="policy_event")
    op.drop_table("policy_event")
    op.drop_index(op.f("ix_policy_version_checksum"), table_name="policy_version")
    op.drop_table("policy_version")
    op.execute("DROP FUNCTION refuse_policy_change()")
