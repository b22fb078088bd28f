"""Workflow-test fixtures: real activities over real Postgres, the real simulator in-process as the WMS."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import temporalio.client as client_interceptors
from fastapi import FastAPI
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from infra.db.uow import UowFactory
from infra.interceptors import LoggingInterceptor
from integrations.partners import Partners
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from worker import WORKFLOWS, build_activities

pytestmark = pytest.mark.db


@pytest_asyncio.fixture
async def simulator() -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The simulator as the WMS. Its events are held: workflow tests deliver shipment events as signals."""
    config = SimulatorConfig(
        webhook_url="http://unused.invalid/webhooks/wms",
        webhook_secret="test",
        behaviour=Behaviour(hold_events=True),
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


class _StartedWorkflows(client_interceptors.Interceptor):
    """Remembers the workflows a test started, so none outlives its worker.

    The time-skipping server only skips time while no workflow task is outstanding: a workflow left running by
    a failed test, its worker gone, would hold every later test's timers to real time.
    """

    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(
        self, next: client_interceptors.OutboundInterceptor
    ) -> client_interceptors.OutboundInterceptor:
        ids = self.ids

        class Recorder(client_interceptors.OutboundInterceptor):
            async def start_workflow(self, input: client_interceptors.StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                ids.append(input.id)
                return await super().start_workflow(input)

        return Recorder(next)

    async def terminate_open(self, client: Client) -> None:
        for workflow_id in self.ids:
            with contextlib.suppress(RPCError):
                handle = client.get_workflow_handle(workflow_id)
                if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                    await handle.terminate(reason="test finished with the workflow still open")


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
        started = _StartedWorkflows()
        config = temporal_env.client.config()
        # Keep the environment's own interceptors: one of them lets time skip while a test awaits a result.
        config["interceptors"] = [*config["interceptors"], started]
        client = Client(**config)
        try:
            async with Worker(
                client,
                task_queue=f"test-{uuid.uuid4().hex[:8]}",
                workflows=WORKFLOWS,
                activities=[*real, *replace],
                interceptors=[LoggingInterceptor()],
            ) as worker:
                yield worker
        finally:
            await started.terminate_open(client)

    return start
