"""The API over ASGI (no socket), on the session's migrated database and Temporal test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from infra.settings import Settings


@pytest_asyncio.fixture
async def api_client(database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a fresh app per test, its lifespan entered: its own engine, the session's Temporal client.

    Settings take env-var names (the aliases) and ignore unknown ones: the assert makes sure the app uses the
    test database, not whatever ``DATABASE_URL`` the environment holds.
    """
    settings = Settings.model_validate({"ORCH_DATABASE_URL": database_url})
    assert settings.database_url == database_url
    app = create_app(settings, temporal=temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        yield client
