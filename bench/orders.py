"""Order workflow throughput beside a skeleton with the same steps, in one run, on one machine.

Both workflows run on the same persistent Temporal dev server with the same worker. The skeleton keeps the
first lifecycle's shape: three local steps (validate, plan, reserve), one regular activity (release), four
shipment events as signals, one local step (consume), each doing nothing. The order workflow does the real
work of the current lifecycle against PostgreSQL and the simulator (in process, over ASGI, so no socket sits
between them), which since issue 5 also means a fraud screen and a payment authorization (two more regular
activities) and a node-readiness check (one more local step). The ratio of the two throughputs is what
the orchestration layer costs on top of the engine itself.

    python bench/orders.py [--orders 200] [--in-flight 50]

Prints a table, then one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy.dialects.postgresql import insert  # noqa: E402
from temporalio.client import Client  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from bench.skeleton import EVENTS, SkeletonWorkflow, skeleton_step  # noqa: E402
from domain.orders import Address, GeoPoint, Order, OrderLine  # noqa: E402
from infra.db.engine import create_engine, session_factory  # noqa: E402
from infra.db.migrate import upgrade  # noqa: E402
from infra.db.tables import Node, Sku, Stock  # noqa: E402
from infra.db.uow import UowFactory, uow_factory  # noqa: E402
from infra.logging import configure_logging  # noqa: E402
from infra.services import (  # noqa: E402
    EmbeddedPostgres,
    drop_database,
    ensure_database,
    free_port,
    temporal_dev_server,
    wait_for_port,
    with_database,
)
from infra.temporal import DATA_CONVERTER, ensure_search_attributes  # noqa: E402
from integrations.partners import Partners  # noqa: E402
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app  # noqa: E402
from worker import WORKFLOWS, build_activities  # noqa: E402
from workflows import order_workflow_id  # noqa: E402
from workflows.contracts import OrderWorkflowInput, ShipmentEventReceived  # noqa: E402
from workflows.order import OrderWorkflow  # noqa: E402

NODE = "BENCH-DC"
SKU = "BENCH-SKU"


def events_for(order_id: str) -> list[ShipmentEventReceived]:
    shipment_id = f"{order_id}:p1:{NODE}"
    now = datetime.now(UTC)
    return [
        ShipmentEventReceived(event_id=f"{shipment_id}:{stage}", shipment_id=shipment_id, stage=stage, occurred_at=now)
        for stage in EVENTS
    ]


def make_order(order_id: str) -> Order:
    return Order(
        order_id=order_id,
        customer_id="BENCH",
        ship_to=Address(
            name="Bench", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US",
            location=GeoPoint(lat=30.27, lon=-97.74),
        ),
        lines=[OrderLine(line_id="1", sku=SKU, quantity=1)],
        placed_at=datetime.now(UTC),
    )  # fmt: skip


async def run_batch(count: int, in_flight: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``count`` orders, ``in_flight`` at a time; returns (orders per second, per-order latencies in ms)."""
    gate = asyncio.Semaphore(in_flight)
    latencies: list[float] = []

    async def timed(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await one(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(timed(i) for i in range(count)))
    return count / (time.perf_counter() - started), latencies


async def load_network(uow: UowFactory, units: int) -> None:
    async with uow() as u:
        for table, row in (
            (Node, {"node_id": NODE, "name": "Bench DC", "kind": "dc", "capabilities": ["ship"], "lat": 30.3,
                    "lon": -97.7, "city": "Austin", "region": "TX", "country": "US", "timezone": "America/Chicago"}),
            (Sku, {"sku": SKU, "name": "Bench item"}),
            (Stock, {"node_id": NODE, "sku": SKU, "on_hand": units}),
        ):  # fmt: skip
            await u.session.execute(insert(table).values(**row).on_conflict_do_nothing())
        await u.commit()


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


async def connect_when_healthy(address: str, timeout_s: float = 60) -> Client:
    """The port opens a moment before the frontend reports healthy: retry until it does."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await Client.connect(address, data_converter=DATA_CONVERTER)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def main(orders: int, in_flight: int) -> dict[str, float | int]:
    data = ROOT / ".data"
    server = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        server = EmbeddedPostgres(data / "bench-pg")
        server_url = server.start()
    database = f"bench_orders_{uuid.uuid4().hex[:8]}"
    ensure_database(server_url, database)
    database_url = with_database(server_url, database)
    upgrade(database_url)
    engine = create_engine(database_url, pool_size=20)
    uow = uow_factory(session_factory(engine))
    await load_network(uow, units=orders * 2)

    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        temporal = temporal_dev_server(
            port=port, ui_port=None, db_file=Path(scratch) / "temporal.db", log_path=Path(scratch) / "temporal.log"
        ).start()
        try:
            wait_for_port(port, timeout_s=60, process=temporal.process)
            client = await connect_when_healthy(f"127.0.0.1:{port}")
            await ensure_search_attributes(client)
            simulator = create_simulator_app(
                SimulatorConfig("http://unused.invalid", "bench", Behaviour(hold_events=True))
            )
            transport = httpx.ASGITransport(app=simulator)
            async with (
                simulator.router.lifespan_context(simulator),
                httpx.AsyncClient(transport=transport, base_url="http://sim") as http,
                Worker(
                    client,
                    task_queue="bench",
                    workflows=[*WORKFLOWS, SkeletonWorkflow],
                    activities=[*build_activities(uow, Partners.over(http)), skeleton_step],
                ),
            ):
                run_id = uuid.uuid4().hex[:6]

                async def skeleton(i: int) -> None:
                    order_id = f"SK-{run_id}-{i}"
                    handle = await client.start_workflow(
                        SkeletonWorkflow.run, order_id, id=f"skeleton:{order_id}", task_queue="bench"
                    )
                    for event in events_for(order_id):
                        await handle.signal(SkeletonWorkflow.shipment_event_received, event)
                    await handle.result()

                async def real(i: int) -> None:
                    order_id = f"OR-{run_id}-{i}"
                    handle = await client.start_workflow(
                        OrderWorkflow.run,
                        OrderWorkflowInput(order=make_order(order_id)),
                        id=order_workflow_id(order_id),
                        task_queue="bench",
                    )
                    # Sent at once: events that arrive before the plan are held until it names the shipment.
                    for event in events_for(order_id):
                        await handle.signal(OrderWorkflow.shipment_event_received, event)
                    await handle.result()

                warm = max(10, orders // 10)
                await run_batch(warm, in_flight, skeleton)
                await run_batch(warm, in_flight, real)
                skeleton_rate, skeleton_ms = await run_batch(orders, in_flight, skeleton)
                order_rate, order_ms = await run_batch(orders, in_flight, real)
        finally:
            temporal.stop()
    await engine.dispose()
    drop_database(server_url, database)
    if server is not None:
        server.stop()

    return {
        "orders": orders,
        "in_flight": in_flight,
        "skeleton_wf_per_s": round(skeleton_rate, 1),
        "order_wf_per_s": round(order_rate, 1),
        "order_to_skeleton_ratio": round(order_rate / skeleton_rate, 2),
        "skeleton_p50_ms": round(percentile(skeleton_ms, 50), 1),
        "order_p50_ms": round(percentile(order_ms, 50), 1),
        "order_p99_ms": round(percentile(order_ms, 99), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--in-flight", type=int, default=50)
    args = parser.parse_args()
    configure_logging(level="WARNING")
    figures = asyncio.run(main(args.orders, args.in_flight))
    print(f"{'':24}{'skeleton':>12}{'order':>12}")
    print(f"{'workflows per second':24}{figures['skeleton_wf_per_s']:>12}{figures['order_wf_per_s']:>12}")
    print(f"{'p50 latency (ms)':24}{figures['skeleton_p50_ms']:>12}{figures['order_p50_ms']:>12}")
    print(f"order / skeleton throughput: {figures['order_to_skeleton_ratio']}")
    print(json.dumps(figures))
