"""End-to-end: the Temporal dev server, the simulator, the worker and the API as real processes.

Each test module gets its own stack on free ports; the processes log to files that are printed when a
test fails, and are stopped (only those this fixture started) at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from infra.db.uow import UowFactory
from infra.services import ManagedProcess, free_port, orchestrator_process, temporal_dev_server, wait_for_port
from tests.support import AUSTIN, NEWARK, TEST_ADMIN, NodeSpec, SeededNetwork, build_network

pytestmark = [pytest.mark.db, pytest.mark.e2e]

WEBHOOK_SECRET = "e2e-secret"
QUOTE_SECRET = "e2e-quote-secret-0123456789abcdefghij"


@dataclass
class Stack:
    api_url: str
    simulator_url: str
    temporal_address: str
    env: dict[str, str]
    logs: Path
    temporal: ManagedProcess
    processes: dict[str, ManagedProcess] = field(default_factory=dict)

    def start(self, name: str) -> ManagedProcess:
        process = orchestrator_process(name, [name], self.env, self.logs / f"{name}.log").start()
        self.processes[name] = process
        return process

    def restart_temporal(self) -> None:
        self.temporal.stop()
        self.temporal.start()
        wait_for_port(int(self.temporal_address.rsplit(":", 1)[1]), timeout_s=60, process=self.temporal.process)

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            process.stop()
        self.temporal.stop()

    def dump_logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.read_text()[-4000:]}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def stack(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    temporal_port, api_port, simulator_port = free_port(), free_port(), free_port()
    temporal = temporal_dev_server(
        port=temporal_port, ui_port=None, db_file=logs / "temporal.db", log_path=logs / "temporal.log"
    ).start()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "ORCH_TASK_QUEUE": f"e2e-{uuid.uuid4().hex[:8]}",
        "ORCH_API_PORT": str(api_port),
        "ORCH_SIMULATOR_PORT": str(simulator_port),
        "ORCH_WMS_URL": f"http://127.0.0.1:{simulator_port}",
        "ORCH_API_PUBLIC_URL": f"http://127.0.0.1:{api_port}",
        "ORCH_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "ORCH_QUOTE_SECRET": QUOTE_SECRET,
        "ORCH_SIMULATOR_STEP_DELAY_S": "0.2",
        # Released at once: these tests follow orders to the end (the change window has its own tests).
        "ORCH_ORDER_CHANGE_WINDOW_S": "0",
        "LOG_FORMAT": "json",
    }
    stack = Stack(
        api_url=f"http://127.0.0.1:{api_port}",
        simulator_url=f"http://127.0.0.1:{simulator_port}",
        temporal_address=f"127.0.0.1:{temporal_port}",
        env=env,
        logs=logs,
        temporal=temporal,
    )
    try:
        wait_for_port(temporal_port, timeout_s=60, process=temporal.process)
        for name in ("simulator", "worker", "api"):
            stack.start(name)
        wait_for_port(simulator_port, timeout_s=30, process=stack.processes["simulator"].process)
        wait_for_port(api_port, timeout_s=30, process=stack.processes["api"].process)
        yield stack
    except BaseException:
        print(stack.dump_logs())
        raise
    finally:
        stack.stop()


@pytest_asyncio.fixture
async def http(
    stack: Stack, uow_factory: UowFactory, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the stack's API, authenticated as an admin by default (a key made for this test)."""
    async with uow_factory() as uow:
        created = await uow.api_keys.create(name=TEST_ADMIN, role="admin", tenant=None)
        await uow.commit()
    headers = {"Authorization": f"Bearer {created.token}"}
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30, headers=headers) as client:
        yield client
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(stack.dump_logs())


@pytest_asyncio.fixture
async def simulator_http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.simulator_url, timeout=30) as client:
        yield client


def order_body(net: SeededNetwork, *, order_id: str | None = None, quantity: int = 1) -> dict[str, Any]:
    return {
        "order_id": order_id or f"E2E-{uuid.uuid4().hex[:10]}",
        "customer_id": "C-42",
        "channel": "web",
        "ship_to": {
            "name": "Ada Customer", "line1": "500 Congress Ave", "city": "Austin", "region": "TX",
            "postal_code": "78701", "country": "US",
        },
        "lines": [{"line_id": "1", "sku": net.sku("DRILL"), "quantity": quantity, "unit_price_minor": 12900}],
    }  # fmt: skip


@pytest.fixture
async def network(uow_factory: UowFactory) -> SeededNetwork:
    return await build_network(
        uow_factory,
        [NodeSpec("AUSTIN", AUSTIN), NodeSpec("NEWARK", NEWARK)],
        {("AUSTIN", "DRILL"): 100, ("NEWARK", "DRILL"): 100},
    )


async def order_stage(http: httpx.AsyncClient, order_id: str) -> str:
    response = await http.get(f"/orders/{order_id}")
    return str(response.json().get("stage")) if response.status_code == 200 else f"http {response.status_code}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report
