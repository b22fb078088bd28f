"""Checkout options (``POST /fulfillment-options``) beside the app's liveness probe, over real HTTP, in one run.

The API runs as production runs it (``infra.cli``'s ``api`` command: ``uvicorn.run(create_app(settings))``, one
process, no access log) in a child process on a free port, against PostgreSQL; this process drives it with
``--clients`` concurrent ``httpx.AsyncClient`` clients. The baseline is ``GET /health/live`` of the same app in the
same process: the same uvicorn, FastAPI routing, middleware and JSON answer, and nothing else (no database, no
Temporal), so the ratio of the two throughputs is what deciding the options costs over serving a request at all.

**No Temporal.** The options endpoint reads the database and runs the sourcing engine; it never touches Temporal,
and neither does the liveness probe. The app is given a stand-in client (``NoTemporal``) that fails loudly on any
use, so a change that made either endpoint call Temporal would fail this script rather than be measured silently.

**The network**, loaded through the public network API (``PUT /network/...``) of the app under test:
``infra.seed.generate_network(--nodes, --skus)``: for 200 nodes, 4 DCs, 192 branches, 2 3PLs and 2 dropship
vendors on real US geography, with opening hours, cut-offs, pick/pack times and capacity; the first ``--skus``
SKUs of its catalogue; US federal holidays of this year and the next (DCs and 3PLs close on them); its transfer
lanes (each DC to the branches of its region, DCs between each other); the demo's carrier services
(``DEMO_CARRIER_SERVICES``: ground, 2-day and overnight, rated by zone and weight). Stock comes from the same
generator (DCs carry 90 % of the catalogue, branches 25 %, 3PLs 40 %, vendors 15 %) and is written in one
snapshot batch through ``FeedRepository.apply_snapshot``, the repository behind ``POST /inventory/snapshots``.
Not through the route itself: after its commit the route signals backordered orders through Temporal.

**The cart**: 5 lines of 1 to 3 units of plain generated SKUs (no hazmat, oversize or ship-alone; at most 5 kg),
for a trade customer (``b2b``) whose home branch is ``--home`` (New York City), shipping to an address a few km
from it. Five lines of random SKUs almost always fit in one DC and in no branch, which gives one delivery option
and little else; the cart's stock is arranged so that pickup at home via a transfer, pickup nearby, delivery from
one node and delivery consolidated at the home branch are all in play:

- the home branch holds lines 1 to 3 but not 4 and 5: pickup there needs a transfer over its lane from its DC;
- that DC holds all five lines (100 units each);
- the three branches nearest the customer hold all five lines (3 units more than asked): pickup nearby;
- every other node holds what the generator gave it.

The policy in force is the demo's (``infra/policies/demo.yaml``), stored and activated through ``POST /rules/...``:
a trade customer is served from the home branch with missing units transferred in (up to 48 h, 2 origins), else
from the nearest nodes, split up to 3. So one request asks the engine for pickup at the home branch (via
transfer) and at each nearby branch that holds everything (up to 5), then for delivery as the policy wants it
(one shipment from the home branch once the transfer arrives), the same without transfers, from one node, in one
shipment, and expedited. With the defaults that is nine ``plan()`` runs: four pickups, each with one candidate,
and five deliveries, each over the 150 nodes that hold any of the cart's SKUs. Which options come back depends on
the time of day (cut-offs, opening hours, the real clock); the JSON names them (``option_kinds``).

**Measurement.** After a check that the endpoint answers with options, and a warm-up of each kind under load:

1. **One at a time**: ``--single`` requests of each kind, one after the other, the kinds alternating: the latency
   of one request on an otherwise idle app (``options_single_p50_ms`` ...).
2. **Under load**: ``--rounds`` rounds of one phase of each kind, which kind goes first alternating, so a noisy
   moment on the machine lands on both. In a phase each of ``--clients`` clients sends a fixed number of requests
   back to back (a closed loop); the number comes from the warm-up's rate so that the phases of both kinds last
   about as long: ``--phase-s``, or longer when the options need it to send 2 requests per client. A fixed count
   rather than a fixed duration, because under a CPU-bound load the 32 requests advance together and finish in
   waves, and a time window would count one wave more or less. Throughput is requests over phase wall time,
   summed over the rounds; latencies are pooled. ``throughput_ratio`` is options req/s over liveness req/s, and
   ``throughput_ratio_min`` / ``_max`` are those of the single rounds.

Each client is an ``httpx.AsyncClient`` of its own (one connection each, as 32 browsers would have): 32 tasks
sharing one client's pool cost httpx two to three times as much CPU per request, and the liveness phases would
measure that. Even so, the client is Python on the same two cores, and the liveness phases are limited by it, not
by the app: the script reports the CPU each side used (``*_server_cores``, ``*_client_cores``: cores busy during
the phases) and the API process's CPU time per request (``*_server_cpu_ms``; ``server_cpu_ratio`` = options over
liveness). PostgreSQL's CPU is not counted in either.

    python bench/options.py [--nodes 200] [--skus 200] [--clients 32] [--rounds 3] [--phase-s 10] [--single 20]
                            [--seed 11] [--home BR-NY-NEW-YORK-CITY]

Uses ``DATABASE_URL`` when set, otherwise an embedded PostgreSQL under ``.data/bench-pg``; the database it creates
is dropped at the end. Prints a table, then one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402
from sqlalchemy import text  # noqa: E402
from temporalio.client import Client  # noqa: E402

from api.schemas import CartBody  # noqa: E402
from domain.feeds import FeedRow, SnapshotLine  # noqa: E402
from domain.network import Capability, NodeKind, haversine_km  # noqa: E402
from domain.orders import Address, GeoPoint, OrderLine  # noqa: E402
from infra.db.engine import create_engine, session_factory  # noqa: E402
from infra.db.migrate import upgrade  # noqa: E402
from infra.db.uow import uow_factory  # noqa: E402
from infra.logging import configure_logging  # noqa: E402
from infra.seed import (  # noqa: E402
    DEMO_CARRIER_SERVICES,
    DEMO_SKUS,
    LaneRow,
    Network,
    NodeRow,
    SkuRow,
    demo_policy,
    generate_network,
)
from infra.services import (  # noqa: E402
    EmbeddedPostgres,
    ManagedProcess,
    drop_database,
    ensure_database,
    free_port,
    wait_for_port,
    with_database,
)
from infra.settings import Settings  # noqa: E402

OPTIONS_PATH = "/fulfillment-options"
TRIVIAL_PATH = "/health/live"  # answers {"status": "ok"}: no database, no Temporal (api/routes/health.py)
CUSTOMER = "BENCH-TRADE"
CART_LINES = 5
HOME_LINES = 3  # lines the home branch holds; the rest must be transferred in
NEARBY_BRANCHES = 3  # branches nearest the customer that hold the whole cart
NEARBY_EXTRA_UNITS = 3
HOME_EXTRA_UNITS = 4
DC_UNITS = 100
MAX_LINE_UNITS = 3
MAX_ITEM_WEIGHT_G = 5_000
CUSTOMER_OFFSET_DEG = 0.03  # about 3 km from the home branch
SEED_CONCURRENCY = 8  # PUTs in flight while loading the network
WARM_UP_PER_CLIENT = {"options": 1, "trivial": 30}
MIN_PER_CLIENT = 2  # requests per client in a measured phase, at least: one burst alone is no steady state
REQUEST_TIMEOUT_S = 120.0


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# --- the app, in a child process -----------------------------------------------------------------------------


class NoTemporal:
    """Stands in for the Temporal client: the endpoints measured never use it, and any use fails loudly."""

    def __getattr__(self, name: str) -> NoReturn:
        raise RuntimeError(f"bench/options.py runs the API without Temporal, yet something used Client.{name}")


def serve(database_url: str, port: int) -> None:
    """The child process: the app as ``orchestrator api`` runs it, on a stand-in Temporal client."""
    import uvicorn

    from api.app import create_app

    configure_logging(level="WARNING")
    # Authentication is not what this measures (a key lookup per call would be): it is off here.
    settings = Settings.model_validate({"ORCH_DATABASE_URL": database_url, "ORCH_AUTH": "off"})
    assert settings.database_url == database_url
    app = create_app(settings, temporal=cast(Client, NoTemporal()))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def start_api(database_url: str, port: int, log_path: Path) -> ManagedProcess:
    argv = [sys.executable, "-m", "bench.options", "--serve", "--port", str(port), "--database-url", database_url]
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    api = ManagedProcess("api", argv, {**os.environ, "PYTHONPATH": path}, log_path).start()
    try:
        wait_for_port(port, timeout_s=60, process=api.process)
    except Exception:
        api.stop()
        print(log_path.read_text()[-3000:], file=sys.stderr)
        raise
    return api


# --- the network and the cart --------------------------------------------------------------------------------


def point(row: NodeRow) -> GeoPoint:
    return GeoPoint(lat=row["lat"], lon=row["lon"])


@dataclass(frozen=True)
class Layout:
    """What is loaded, and the cart asked about."""

    network: Network
    holidays: list[dict[str, Any]]  # this year's and next year's
    stock: dict[tuple[str, str], tuple[int, int]]  # (node, sku) -> (on hand, safety stock)
    home: NodeRow
    lane_origin: str
    nearby: list[str]
    location: GeoPoint
    lines: list[OrderLine]

    @property
    def cart_skus(self) -> list[str]:
        return [line.sku for line in self.lines]

    def snapshot_nodes(self) -> int:
        """Nodes ``snapshot_for_order`` reads for the cart: those with a stock row of any of its SKUs, and the
        home branch."""
        wanted = set(self.cart_skus)
        return len({node for node, sku in self.stock if sku in wanted} | {self.home["node_id"]})

    def cart(self) -> dict[str, Any]:
        home = self.home
        body = CartBody(
            customer_id=CUSTOMER,
            ship_to=Address(
                name="Bench Trade Customer",
                line1="1 Bench St",
                city=home["city"],
                region=home["region"],
                postal_code="00000",
                country="US",
                location=self.location,
            ),
            lines=self.lines,
        )
        return body.model_dump(mode="json")


def layout(node_count: int, sku_count: int, seed: int, home_id: str) -> Layout:
    year = datetime.now(UTC).year
    network = generate_network(node_count, sku_count, seed=seed, holiday_year=year)
    holidays = [*network.holidays, *generate_network(node_count, sku_count, seed=seed, holiday_year=year + 1).holidays]
    by_id = {row["node_id"]: row for row in network.nodes}
    if home_id not in by_id or by_id[home_id]["kind"] != NodeKind.STORE:
        raise SystemExit(f"--home {home_id} is not a branch of the generated network")
    home = by_id[home_id]
    stock = {(s["node_id"], s["sku"]): (s["on_hand"], s["safety_stock"]) for s in network.stock}

    rng = random.Random(f"{seed}/cart")
    demo = {s["sku"] for s in DEMO_SKUS}
    plain = [
        s["sku"]
        for s in network.skus
        if s["sku"] not in demo
        and not (s["hazmat"] or s["oversize"] or s["ship_alone"])
        and s["weight_g"] <= MAX_ITEM_WEIGHT_G
    ]
    skus = rng.sample(plain, CART_LINES)
    lines = []
    for n, sku in enumerate(skus, start=1):
        units, price = rng.randint(1, MAX_LINE_UNITS), rng.randint(500, 20_000)
        lines.append(OrderLine(line_id=str(n), sku=sku, quantity=units, unit_price_minor=price))

    location = GeoPoint(lat=home["lat"] + CUSTOMER_OFFSET_DEG, lon=home["lon"] - CUSTOMER_OFFSET_DEG)
    (lane_origin,) = [lane["origin_node_id"] for lane in network.lanes if lane["destination_node_id"] == home_id]
    nearby = sorted(
        (
            row
            for row in network.nodes
            if row["kind"] == NodeKind.STORE and Capability.PICKUP in row["capabilities"] and row is not home
        ),
        key=lambda row: (haversine_km(point(row), location), row["node_id"]),
    )[:NEARBY_BRANCHES]
    for i, line in enumerate(lines):
        at_home = line.quantity + HOME_EXTRA_UNITS if i < HOME_LINES else 0
        stock[(home_id, line.sku)] = (at_home, 0)
        stock[(lane_origin, line.sku)] = (DC_UNITS, 0)
        for row in nearby:
            stock[(row["node_id"], line.sku)] = (line.quantity + NEARBY_EXTRA_UNITS, 0)
    return Layout(
        network=network,
        holidays=[dict(h) for h in holidays],
        stock=stock,
        home=home,
        lane_origin=lane_origin,
        nearby=[row["node_id"] for row in nearby],
        location=location,
        lines=lines,
    )


def node_body(row: NodeRow) -> dict[str, Any]:
    return {
        "name": row["name"],
        "kind": row["kind"],
        "capabilities": row["capabilities"],
        "location": {"lat": row["lat"], "lon": row["lon"]},
        "address": {"city": row["city"], "region": row["region"], "country": row["country"]},
        "timezone": row["timezone"],
        "priority": row["priority"],
        "operating_hours": row["operating_hours"],
        "cutoff_local": row["cutoff_local"].isoformat(timespec="minutes"),
        "pick_pack_minutes": row["pick_pack_minutes"],
        "capacity_orders_per_day": row["capacity_orders_per_day"],
        "capacity_units_per_day": row["capacity_units_per_day"],
    }


def sku_body(row: SkuRow) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "sku"}


def carrier_service_body(spec: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in spec.items() if k != "service_id"}, "cutoff_local": spec["cutoff_local"].isoformat()}


def lane_body(row: LaneRow) -> dict[str, Any]:
    return {
        "transit_hours": row["transit_hours"],
        "cost_minor": row["cost_minor"],
        "departure_days": row["departure_days"],
        "departure_local": row["departure_local"].isoformat(timespec="minutes"),
    }


async def put_all(http: httpx.AsyncClient, requests: Iterable[tuple[str, dict[str, Any]]]) -> int:
    """PUT each body to its path, ``SEED_CONCURRENCY`` at a time; any answer but 200/201 stops the run."""
    gate = asyncio.Semaphore(SEED_CONCURRENCY)

    async def one(path: str, body: dict[str, Any]) -> None:
        async with gate:
            response = await http.put(path, json=body)
        if response.status_code not in (200, 201):
            raise RuntimeError(f"PUT {path}: {response.status_code} {response.text}")

    batch = list(requests)
    await asyncio.gather(*(one(path, body) for path, body in batch))
    return len(batch)


async def load(http: httpx.AsyncClient, database_url: str, plan: Layout) -> dict[str, int]:
    """Network, customer and policy through the API; stock through the feed repository, in one batch."""
    network = plan.network
    customer = {"name": "Bench Trade Customer", "segment": "b2b", "home_node_id": plan.home["node_id"]}
    counts = {
        "node": await put_all(http, ((f"/network/nodes/{n['node_id']}", node_body(n)) for n in network.nodes)),
        "sku": await put_all(http, ((f"/network/skus/{s['sku']}", sku_body(s)) for s in network.skus)),
        "carrier_service": await put_all(
            http,
            ((f"/network/carrier-services/{s['service_id']}", carrier_service_body(s)) for s in DEMO_CARRIER_SERVICES),
        ),
        "holiday": await put_all(
            http, ((f"/network/nodes/{h['node_id']}/holidays/{h['day']}", {"name": h["name"]}) for h in plan.holidays)
        ),
        "lane": await put_all(
            http,
            (
                (f"/network/lanes/{lane['origin_node_id']}/{lane['destination_node_id']}", lane_body(lane))
                for lane in network.lanes
            ),
        ),
        "customer": await put_all(http, [(f"/network/customers/{CUSTOMER}", customer)]),
    }

    engine = create_engine(database_url)
    uow = uow_factory(session_factory(engine))
    rows = [
        FeedRow(i, SnapshotLine(node_id=node, sku=sku, on_hand=on_hand, safety_stock=safety))
        for i, ((node, sku), (on_hand, safety)) in enumerate(sorted(plan.stock.items()), start=1)
    ]
    async with uow() as u:
        report = await u.feeds.apply_snapshot(
            rows, batch_id=f"bench-options-{uuid.uuid4().hex[:8]}", as_of=datetime.now(UTC), actor="bench",
            source="bench/options.py",
        )  # fmt: skip
        if not report.accepted:
            raise RuntimeError(f"stock snapshot refused: {report.summary()}")
        await u.commit()
    counts["stock_row"] = len(rows)
    async with engine.connect() as conn:
        # Fresh tables get vacuumed by autovacuum soon after a load: do it now, not during the measurements.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    await engine.dispose()

    created = await http.post(
        "/rules/versions",
        json={"document": demo_policy().model_dump(mode="json"), "note": "bench/options.py: the demo policy"},
    )
    if created.status_code != 201:
        raise RuntimeError(f"POST /rules/versions: {created.status_code} {created.text}")
    version = created.json()["version"]
    activated = await http.post(f"/rules/versions/{version}/activate", json={"reason": "bench/options.py"})
    if activated.status_code != 200:
        raise RuntimeError(f"activating policy version {version}: {activated.status_code} {activated.text}")
    return counts


# --- measuring -----------------------------------------------------------------------------------------------

Send = Callable[[httpx.AsyncClient], Awaitable[None]]


def sender(method: str, path: str, body: dict[str, Any] | None = None) -> Send:
    async def send(http: httpx.AsyncClient) -> None:
        response = await http.request(method, path, json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:500]}")

    return send


@dataclass
class Kind:
    name: str
    send: Send
    per_client: int = 1  # requests each client sends in one phase
    single_ms: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    round_rps: list[float] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class CpuClock:
    """CPU seconds used so far by the API process (all its threads) and by this one."""

    api: psutil.Process

    def read(self) -> tuple[float, float]:
        api = self.api.cpu_times()
        return api.user + api.system, time.process_time()


async def timed(send: Send, http: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    await send(http)
    return (time.perf_counter() - started) * 1000


async def phase(send: Send, clients: list[httpx.AsyncClient], per_client: int) -> tuple[float, list[float]]:
    """Every client sends ``per_client`` requests back to back; (wall seconds, latencies in ms)."""
    latencies: list[float] = []

    async def client(http: httpx.AsyncClient) -> None:
        for _ in range(per_client):
            latencies.append(await timed(send, http))

    started = time.perf_counter()
    await asyncio.gather(*(client(http) for http in clients))
    return time.perf_counter() - started, latencies


async def measure(
    kinds: list[Kind], clients: list[httpx.AsyncClient], cpu: CpuClock, rounds: int, phase_s: float, single: int
) -> None:
    # A warm-up under load, which also gives each kind's rate, so that the phases of both kinds last as long:
    # phase_s, or longer if the slower kind needs it to send MIN_PER_CLIENT requests per client.
    rates = {}
    for kind in kinds:
        seconds, _ = await phase(kind.send, clients, WARM_UP_PER_CLIENT[kind.name])
        rates[kind.name] = len(clients) * WARM_UP_PER_CLIENT[kind.name] / seconds
    target_s = max(phase_s, *(MIN_PER_CLIENT * len(clients) / rate for rate in rates.values()))
    for kind in kinds:
        kind.per_client = max(MIN_PER_CLIENT, round(rates[kind.name] * target_s / len(clients)))
    for i in range(single):
        for kind in kinds if i % 2 == 0 else reversed(kinds):
            kind.single_ms.append(await timed(kind.send, clients[0]))
    for r in range(rounds):
        for kind in kinds if r % 2 == 0 else reversed(kinds):
            server_before, client_before = cpu.read()
            seconds, latencies = await phase(kind.send, clients, kind.per_client)
            server_after, client_after = cpu.read()
            kind.ms += latencies
            kind.requests += len(clients) * kind.per_client
            kind.seconds += seconds
            kind.server_cpu_s += server_after - server_before
            kind.client_cpu_s += client_after - client_before
            kind.round_rps.append(len(clients) * kind.per_client / seconds)


def figures_of(kind: Kind) -> dict[str, float | int]:
    n = kind.name
    return {
        f"{n}_single_p50_ms": round(percentile(kind.single_ms, 50), 2),
        f"{n}_single_p99_ms": round(percentile(kind.single_ms, 99), 2),
        f"{n}_requests": kind.requests,
        f"{n}_p50_ms": round(percentile(kind.ms, 50), 2),
        f"{n}_p99_ms": round(percentile(kind.ms, 99), 2),
        f"{n}_rps": round(kind.rps, 2),
        f"{n}_server_cpu_ms": round(kind.server_cpu_s / kind.requests * 1000, 3),
        f"{n}_server_cores": round(kind.server_cpu_s / kind.seconds, 2),
        f"{n}_client_cores": round(kind.client_cpu_s / kind.seconds, 2),
    }


# --- the run -------------------------------------------------------------------------------------------------


async def run(
    database_url: str, api: psutil.Process, port: int, plan: Layout, args: argparse.Namespace
) -> dict[str, Any]:
    base_url = f"http://127.0.0.1:{port}"
    async with AsyncExitStack() as stack:
        # One client per simulated customer, each on a connection of its own: one pool shared by 32 tasks costs
        # httpx more than the liveness probe costs the server.
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S))
            for _ in range(args.clients)
        ]
        http = clients[0]
        started = time.perf_counter()
        counts = await load(http, database_url, plan)
        load_s = time.perf_counter() - started

        cart = plan.cart()
        first = await http.post(OPTIONS_PATH, json=cart)
        if first.status_code != 200:
            raise RuntimeError(f"POST {OPTIONS_PATH}: {first.status_code} {first.text}")
        answer = first.json()
        if not answer["options"]:
            raise RuntimeError(f"the cart got no options: {answer['message']}")
        options = Kind("options", sender("POST", OPTIONS_PATH, cart))
        trivial = Kind("trivial", sender("GET", TRIVIAL_PATH))
        started = time.perf_counter()
        await measure([options, trivial], clients, CpuClock(api), args.rounds, args.phase_s, args.single)
        measure_s = time.perf_counter() - started

    ratios = [o / t for o, t in zip(options.round_rps, trivial.round_rps, strict=True)]
    return {
        "nodes": counts["node"],
        "skus": counts["sku"],
        "stock_rows": counts["stock_row"],
        "lanes": counts["lane"],
        "holidays": counts["holiday"],
        "carrier_services": counts["carrier_service"],
        "snapshot_nodes": plan.snapshot_nodes(),
        "lines": len(plan.lines),
        "units": sum(line.quantity for line in plan.lines),
        "home_node": plan.home["node_id"],
        "lane_origin": plan.lane_origin,
        "nearby_branches": plan.nearby,
        "policy_version": answer["policy_version"],
        "options_per_cart": len(answer["options"]),
        "option_kinds": [o["kind"] for o in answer["options"]],
        "clients": args.clients,
        "rounds": args.rounds,
        **figures_of(options),
        **figures_of(trivial),
        "throughput_ratio": round(options.rps / trivial.rps, 4),
        "throughput_ratio_min": round(min(ratios), 4),
        "throughput_ratio_max": round(max(ratios), 4),
        "server_cpu_ratio": round(
            (options.server_cpu_s / options.requests) / (trivial.server_cpu_s / trivial.requests), 1
        ),
        "load_s": round(load_s, 1),
        "measure_s": round(measure_s, 1),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    plan = layout(args.nodes, args.skus, args.seed, args.home)
    server = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        server = EmbeddedPostgres(ROOT / ".data" / "bench-pg")
        server_url = server.start()
    database = f"bench_options_{uuid.uuid4().hex[:8]}"
    ensure_database(server_url, database)
    database_url = with_database(server_url, database)
    try:
        upgrade(database_url)
        port = free_port()
        with tempfile.TemporaryDirectory() as scratch:
            log_path = Path(scratch) / "api.log"
            api = start_api(database_url, port, log_path)
            try:
                assert api.process is not None
                figures = asyncio.run(run(database_url, psutil.Process(api.process.pid), port, plan, args))
            except Exception:
                print(log_path.read_text()[-3000:], file=sys.stderr)
                raise
            finally:
                api.stop()
    finally:
        drop_database(server_url, database)
        if server is not None:
            server.stop()
    return {**figures, "seed": args.seed, "runtime_s": round(time.perf_counter() - started, 1)}


def report(f: dict[str, Any]) -> None:
    print(
        f"Network: {f['nodes']} nodes, {f['skus']} SKUs, {f['stock_rows']:,} stock rows, {f['lanes']} lanes,"
        f" {f['holidays']} holidays, {f['carrier_services']} carrier services; loaded in {f['load_s']} s"
    )
    print(
        f"Cart: {f['lines']} lines, {f['units']} units, b2b customer of {f['home_node']}; the snapshot reads"
        f" {f['snapshot_nodes']} nodes; policy {f['policy_version']} (demo)"
    )
    print(f"  home branch stocked from {f['lane_origin']}; whole cart at {', '.join(f['nearby_branches'])}")
    print(f"Options: {f['options_per_cart']} ({', '.join(f['option_kinds'])})")
    print()
    kinds = (("options", "POST " + OPTIONS_PATH), ("trivial", "GET " + TRIVIAL_PATH))
    print("One request at a time, the two kinds alternating:")
    print(f"  {'':28}{'p50 ms':>10}{'p99 ms':>10}")
    for name, label in kinds:
        print(f"  {label:28}{f[f'{name}_single_p50_ms']:>10}{f[f'{name}_single_p99_ms']:>10}")
    print()
    print(f"{f['clients']} concurrent clients, {f['rounds']} rounds of one phase each, alternating which goes first:")
    print(
        f"  {'':28}{'requests':>10}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'API CPU ms':>12}{'API':>6}{'client':>8}"
    )
    for name, label in kinds:
        print(
            f"  {label:28}{f[f'{name}_requests']:>10,}{f[f'{name}_rps']:>10}{f[f'{name}_p50_ms']:>10}"
            f"{f[f'{name}_p99_ms']:>10}{f[f'{name}_server_cpu_ms']:>12}{f[f'{name}_server_cores']:>6}"
            f"{f[f'{name}_client_cores']:>8}"
        )
    print("  (API CPU ms: the API process's CPU time per request; API, client: cores busy during the phases)")
    print(
        f"  options / liveness throughput: {f['throughput_ratio']} (single rounds {f['throughput_ratio_min']}"
        f" to {f['throughput_ratio_max']}); API CPU per request, options / liveness: {f['server_cpu_ratio']}"
    )
    print(f"Runtime {f['runtime_s']} s (measuring {f['measure_s']} s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--skus", type=int, default=200, help="the first SKUs of the generated catalogue")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--home", default="BR-NY-NEW-YORK-CITY", help="the customer's home branch")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phase-s", type=float, default=10.0, help="about how long each phase lasts, at least")
    parser.add_argument("--single", type=int, default=20, help="requests of each kind sent one at a time")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # the child process
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.database_url, args.port)
        sys.exit(0)
    configure_logging(level="WARNING")
    figures = main(args)
    report(figures)
    print(json.dumps(figures))
