"""Workflow-test fixtures: real activities over real Postgres, the real simulator in-process as the WMS."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.db.uow import UowFactory
from infra.interceptors import LoggingInterceptor
from integrations.partners import Partners
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from integrations.simulator.config import Clock
from worker import WORKFLOWS, build_activities

pytestmark = pytest.mark.db


@pytest.fixture
def simulator_clock() -> Clock | None:
    """The simulator's now: the wall clock. A test module whose faults must follow virtual time overrides this
    with the test server's (``temporal_env.get_current_time``)."""
    return None


@pytest_asyncio.fixture
async def simulator(simulator_clock: Clock | None) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The simulator as the WMS. Its events are held: workflow tests deliver shipment events as signals."""
    config = SimulatorConfig(
        webhook_url="http://unused.invalid/webhooks/wms",
        webhook_secret="test",
        behaviour=Behaviour(hold_events=True),
        clock=simulator_clock,
    )
    app = create_simulator_app(config)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://x") as http:
        yield app, http


NewWorker = Callable[..., AbstractAsyncContextManager[Worker]]


def activity_name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.from_callable(fn)
    assert defn is not None
    assert defn.name is not None
    return defn.name


HISTORIES = Path(__file__).resolve().parent.parent / "replay" / "histories"


RecordHistory = Callable[[WorkflowHandle[Any, Any], str], Awaitable[None]]


@pytest.fixture
def record_history() -> RecordHistory:
    """Store a finished workflow's history for the replay tests (`make record-histories`).

    A history recorded by older workflow code is the valuable kind: it proves today's code still replays
    what ran before. So recording adds the histories that are missing and keeps the ones already stored,
    unless ORCH_RECORD_HISTORIES=overwrite says otherwise.
    """

    async def record(handle: WorkflowHandle[Any, Any], name: str) -> None:
        mode = os.environ.get("ORCH_RECORD_HISTORIES")
        path = HISTORIES / f"{name}.json"
        if mode == "overwrite" or (mode == "1" and not path.exists()):
            path.write_text((await handle.fetch_history()).to_json())

    return record


@pytest.fixture
def new_worker(
    temporal_env: WorkflowEnvironment, uow_factory: UowFactory, simulator: tuple[FastAPI, httpx.AsyncClient]
) -> NewWorker:
    """A worker with every real activity, on a task queue of its own."""

    @asynccontextmanager
    async def start(replace: Sequence[Callable[..., Any]] = ()) -> AsyncIterator[Worker]:
        """``replace``: activities standing in for the real ones of the same name (to isolate one branch)."""
        _, http = simulator
        replaced = {activity_name(fn) for fn in replace}
        real = [fn for fn in build_activities(uow_factory, Partners.over(http)) if activity_name(fn) not in replaced]
        async with Worker(
            temporal_env.client,
            task_queue=f"test-{uuid.uuid4().hex[:8]}",
            workflows=WORKFLOWS,
            activities=[*real, *replace],
            interceptors=[LoggingInterceptor()],
        ) as worker:
            yield worker

    return start
