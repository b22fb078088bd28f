"""The API over ASGI (no socket), on the session's migrated database and Temporal test server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from infra.settings import Settings
from infra.temporal import DATA_CONVERTER, ensure_search_attributes
from tests.support import IMMEDIATE, api_key_headers


@pytest_asyncio.fixture
async def api_client(database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app per test, its lifespan entered: its own engine, the session's Temporal client.

    Settings take env-var names (the aliases) and ignore unknown ones: the assert makes sure the app uses the
    test database, not whatever ``DATABASE_URL`` the environment holds.
    """
    settings = Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url})
    assert settings.database_url == database_url
    app = create_app(settings, temporal=temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
        ) as client,
    ):
        yield client


@dataclass
class IsolatedApi:
    http: httpx.AsyncClient
    env: WorkflowEnvironment


@pytest_asyncio.fixture
async def isolated_api(database_url: str) -> AsyncIterator[IsolatedApi]:
    """The API on a Temporal test server of its own, for a test that leaves work no worker will ever take (a
    workflow on a queue nobody serves, an update waiting for one). On the time-skipping server such work stops
    time from skipping for good, even once its workflow is terminated, so it must not share the session's."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=DATA_CONVERTER,
        test_server_existing_path=str(Path(sys.executable).parent / "temporal-test-server"),
    )
    try:
        await ensure_search_attributes(env.client)
        app = create_app(
            Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url}),
            temporal=env.client,
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
            ) as http,
        ):
            yield IsolatedApi(http=http, env=env)
    finally:
        await env.shutdown()
