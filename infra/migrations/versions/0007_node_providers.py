"""each node names its fulfilment provider and endpoint

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PROVIDERS = "provider IS NULL OR provider IN ('wms', '3pl', 'store', 'dropship')"


def upgrade() -> None:
    # Both nullable: existing nodes keep working (provider derived from the kind, endpoint the default).
    op.add_column("node", sa.Column("provider", sa.String(length=16), nullable=True))
    op.add_column("node", sa.Column("endpoint", sa.Text(), nullable=True))
    # Autogenerate does not see check constraints added to existing tables: written by hand.
    op.create_check_constraint(op.f("ck_node_provider"), "node", _PROVIDERS)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_node_provider"), "node", type_="check")
    op.drop_column("node", "endpoint")
    op.drop_column("node", "provider")
