"""The schema the models describe is exactly the schema the migrations build."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, create_engine, inspect

from infra.db.engine import sqlalchemy_url
from infra.db.migrate import alembic_config, current_head, upgrade
from infra.db.tables import Base
from infra.services import drop_database, ensure_database, with_database

pytestmark = pytest.mark.db


def test_models_and_migrations_agree(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert context.get_current_revision() == current_head()
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; write a migration for: {diff}"


def test_check_constraints_match_the_models(database_url: str) -> None:
    """Autogenerate ignores check constraints on existing tables; compare them by name here instead."""
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as connection:
            inspector = inspect(connection)
            for table in Base.metadata.sorted_tables:
                expected = {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
                actual = {str(c["name"]) for c in inspector.get_check_constraints(table.name)}
                assert expected == actual, f"{table.name}: models {sorted(expected)} vs database {sorted(actual)}"
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(postgres_server_url: str) -> None:
    """Every migration can be undone: a fresh database goes up, all the way down, and up again."""
    name = f"orch_migrate_{uuid.uuid4().hex[:8]}"
    ensure_database(postgres_server_url, name)
    url = with_database(postgres_server_url, name)
    try:
        upgrade(url)
        command.downgrade(alembic_config(url), "base")
        upgrade(url)
    finally:
        drop_database(postgres_server_url, name)
