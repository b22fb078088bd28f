"""Available-to-promise lookups and reservation throughput, each beside a plain baseline in the same run.

Loads a generated network (``infra.seed.generate_network``: 1,000 nodes on real US geography) into a fresh
database, then measures:

- ATP for 10 SKUs across every node, and within 500 km of Chicago, through ``InventoryQuery.atp`` (one unit of
  work per lookup, as the API does), beside a plain read of the same stock rows;
- reservations through ``InventoryRepository.reserve`` (one unit each, its own transaction) by concurrent
  workers on ONE hot stock row, beside the same count of plain ``UPDATE stock SET reserved = reserved + 1``
  transactions on that row with the same concurrency, in alternating rounds;
- the same on distinct rows, each operation on a row of its own.

The full 100,000-SKU catalogue across 1,000 nodes is tens of millions of stock rows, too slow to load on a 2-core
machine for every run; the first ``--skus`` SKUs are loaded instead (2,000 by default, about 530,000 rows), which
is plenty for lookups that select by SKU through an index.

    python bench/inventory.py [--nodes 1000] [--skus 2000] [--lookups 300] [--reservations 2000] [--workers 16]

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
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Integer, func, literal, select, text, tuple_, update  # noqa: E402
from sqlalchemy.dialects.postgresql import insert  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from domain.network import NodeKind  # noqa: E402
from domain.orders import GeoPoint  # noqa: E402
from domain.sourcing import Allocation  # noqa: E402
from infra.db.engine import create_engine, session_factory  # noqa: E402
from infra.db.migrate import upgrade  # noqa: E402
from infra.db.tables import AllocationTier, Node, Sku, Stock, StockProtection  # noqa: E402
from infra.db.uow import UowFactory, uow_factory  # noqa: E402
from infra.seed import Network, generate_network  # noqa: E402
from infra.services import EmbeddedPostgres, drop_database, ensure_database, with_database  # noqa: E402

SEED = 11
LOOKUP_SKUS = 10
CHICAGO = GeoPoint(lat=41.8781, lon=-87.6298)
NEAR_RADIUS_KM = 500.0
# Far above anything the lookups return (10 SKUs x 1,000 nodes), so every matching row is read.
LOOKUP_LIMIT = 100_000
ROUNDS = 10  # reservation batches alternate with update batches, so drift on a shared machine hits both alike
# (tier, rank, share of a DC row's units protected for it): a key-account tier and a trade tier above everyone else.
PROTECTIONS = (("BENCH-GOLD", 1, 0.10), ("BENCH-SILVER", 2, 0.05))
# Enough units that no reservation in the run can fail for stock.
BIG_ON_HAND = 100_000_000


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def load(engine: AsyncEngine, network: Network) -> tuple[int, int]:
    """Nodes and SKUs by bulk insert, stock by COPY (no journal rows: nothing here reads them), then protections
    for two allocation tiers on every DC row, so ATP pays for the tier rule as it would in production.
    Returns the number of stock rows and of protection rows."""
    async with engine.begin() as conn:
        await conn.execute(insert(Node), network.nodes)
        await conn.execute(insert(Sku), network.skus)
    rows = 0
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        async with (
            driver.cursor() as cursor,
            cursor.copy("COPY stock (node_id, sku, on_hand, safety_stock) FROM STDIN") as copy,
        ):
            for stock in network.stock:
                await copy.write_row((stock["node_id"], stock["sku"], stock["on_hand"], stock["safety_stock"]))
                rows += 1
        await driver.commit()
    async with engine.begin() as conn:
        await conn.execute(insert(AllocationTier), [{"tier": tier, "rank": rank} for tier, rank, _ in PROTECTIONS])
        for tier, _, share in PROTECTIONS:
            dc_rows = select(Stock.node_id, Stock.sku, literal(tier), (Stock.on_hand * share).cast(Integer)).where(
                Stock.node_id.in_(select(Node.node_id).where(Node.kind == NodeKind.DC.value))
            )
            await conn.execute(insert(StockProtection).from_select(["node_id", "sku", "tier", "quantity"], dc_rows))
        protections = int(await conn.scalar(select(func.count()).select_from(StockProtection)) or 0)
    async with engine.connect() as conn:
        # A fresh table gets vacuumed by autovacuum soon after a bulk load: do it now, not during the measurements.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE"))
    return rows, protections


@dataclass
class Lookups:
    rows: int
    ms: list[float]

    def p(self, q: int) -> float:
        return round(percentile(self.ms, q), 2)


async def measure_lookups(uow: UowFactory, skus: list[str], runs: int) -> dict[str, Lookups]:
    """Each kind of lookup once per iteration, in turn, so a noisy moment lands on all of them."""

    async def everywhere() -> int:
        async with uow() as u:
            return len(await u.inventory_query.atp(skus=skus, limit=LOOKUP_LIMIT))

    async def near() -> int:
        async with uow() as u:
            return len(
                await u.inventory_query.atp(skus=skus, near=CHICAGO, radius_km=NEAR_RADIUS_KM, limit=LOOKUP_LIMIT)
            )

    async def plain() -> int:
        async with uow() as u:
            columns = (Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, Stock.safety_stock)
            return len((await u.session.execute(select(*columns).where(Stock.sku.in_(skus)))).all())

    kinds: dict[str, Callable[[], Awaitable[int]]] = {"atp": everywhere, "atp_near": near, "plain_read": plain}
    results = {name: Lookups(rows=0, ms=[]) for name in kinds}
    for iteration in range(-max(20, runs // 10), runs):  # the negative iterations warm up and are not kept
        for name, lookup in kinds.items():
            started = time.perf_counter()
            rows = await lookup()
            elapsed_ms = (time.perf_counter() - started) * 1000
            if iteration >= 0:
                results[name].rows = rows
                results[name].ms.append(elapsed_ms)
    return results


async def concurrently(count: int, workers: int, operation: Callable[[int], Awaitable[None]]) -> float:
    """Run ``operation(0..count-1)`` on ``workers`` concurrent tasks; returns the wall time in seconds."""
    indices = iter(range(count))

    async def worker() -> None:
        for i in indices:
            await operation(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - started


@dataclass
class Throughput:
    reserve_per_s: float
    update_per_s: float

    @property
    def cost_ratio(self) -> float:
        """How many plain updates run in the time of one reservation."""
        return round(self.update_per_s / self.reserve_per_s, 2)


async def measure_writes(
    uow: UowFactory, targets: list[tuple[str, str]], count: int, workers: int, label: str
) -> Throughput:
    """``count`` single-unit reservations and ``count`` plain updates; operation i goes to ``targets[i % len]``."""
    run = uuid.uuid4().hex[:6]

    async def reserve(i: int) -> None:
        node_id, sku = targets[i % len(targets)]
        order_id = f"B{run}-{label}-{i}"
        async with uow() as u:
            await u.inventory.reserve(
                f"{order_id}:reserve", order_id, [Allocation(line_id="1", sku=sku, node_id=node_id, quantity=1)]
            )
            await u.commit()

    async def plain_update(i: int) -> None:
        node_id, sku = targets[i % len(targets)]
        async with uow() as u:
            await u.session.execute(
                update(Stock).where(Stock.node_id == node_id, Stock.sku == sku).values(reserved=Stock.reserved + 1)
            )
            await u.commit()

    batch = count // ROUNDS
    reserve_s = update_s = 0.0
    for round_ in range(ROUNDS):
        offset = round_ * batch

        async def reserve_batch(offset: int = offset) -> float:
            return await concurrently(batch, workers, lambda i: reserve(offset + i))

        async def update_batch(offset: int = offset) -> float:
            return await concurrently(batch, workers, lambda i: plain_update(offset + i))

        if round_ % 2 == 0:
            reserve_s += await reserve_batch()
            update_s += await update_batch()
        else:
            update_s += await update_batch()
            reserve_s += await reserve_batch()
    done = batch * ROUNDS
    return Throughput(reserve_per_s=round(done / reserve_s, 1), update_per_s=round(done / update_s, 1))


async def prepare_rows(uow: UowFactory, count: int) -> list[tuple[str, str]]:
    """``count`` stock rows spread over nodes and SKUs, each given enough units for every reservation in the run."""
    picked = select(Stock.node_id, Stock.sku).order_by(func.md5(Stock.node_id + Stock.sku)).limit(count)
    async with uow() as u:
        rows = (
            await u.session.execute(
                update(Stock)
                .where(tuple_(Stock.node_id, Stock.sku).in_(picked))
                .values(on_hand=BIG_ON_HAND, reserved=0, safety_stock=0)
                .returning(Stock.node_id, Stock.sku)
            )
        ).all()
        await u.commit()
    return sorted((node_id, sku) for node_id, sku in rows)


async def main(node_count: int, sku_count: int, lookups: int, reservations: int, workers: int) -> dict[str, object]:
    started = time.perf_counter()
    server = None
    server_url = os.environ.get("DATABASE_URL")
    if not server_url:
        server = EmbeddedPostgres(ROOT / ".data" / "bench-pg")
        server_url = server.start()
    database = f"bench_inventory_{uuid.uuid4().hex[:8]}"
    ensure_database(server_url, database)
    engine = None
    try:
        database_url = with_database(server_url, database)
        upgrade(database_url)
        engine = create_engine(database_url, pool_size=workers)
        uow = uow_factory(session_factory(engine))

        network = generate_network(node_count, sku_count, seed=SEED)
        load_started = time.perf_counter()
        stock_rows, protection_rows = await load(engine, network)
        load_s = time.perf_counter() - load_started

        skus = sorted(random.Random(SEED).sample([s["sku"] for s in network.skus], LOOKUP_SKUS))
        reads = await measure_lookups(uow, skus, lookups)

        hot_row, *_ = await prepare_rows(uow, 1)
        warm = max(workers * 4, reservations // 20)
        await measure_writes(uow, [hot_row], warm, workers, "warm")
        hot = await measure_writes(uow, [hot_row], reservations, workers, "hot")
        distinct_rows = [row for row in await prepare_rows(uow, reservations + 1) if row != hot_row][:reservations]
        distinct = await measure_writes(uow, distinct_rows, reservations, workers, "distinct")
    finally:
        if engine is not None:
            await engine.dispose()
        drop_database(server_url, database)
        if server is not None:
            server.stop()

    return {
        "nodes": len(network.nodes),
        "skus_loaded": len(network.skus),
        "stock_rows": stock_rows,
        "protection_rows": protection_rows,
        "load_s": round(load_s, 1),
        "lookup_skus": LOOKUP_SKUS,
        "lookups": lookups,
        "atp_rows": reads["atp"].rows,
        "atp_p50_ms": reads["atp"].p(50),
        "atp_p99_ms": reads["atp"].p(99),
        "atp_near_rows": reads["atp_near"].rows,
        "atp_near_p50_ms": reads["atp_near"].p(50),
        "atp_near_p99_ms": reads["atp_near"].p(99),
        "plain_read_p50_ms": reads["plain_read"].p(50),
        "plain_read_p99_ms": reads["plain_read"].p(99),
        "atp_to_plain_read_ratio": round(reads["atp"].p(50) / reads["plain_read"].p(50), 2),
        "workers": workers,
        "reservations": reservations // ROUNDS * ROUNDS,
        "hot_reserve_per_s": hot.reserve_per_s,
        "hot_update_per_s": hot.update_per_s,
        "hot_cost_ratio": hot.cost_ratio,
        "distinct_reserve_per_s": distinct.reserve_per_s,
        "distinct_update_per_s": distinct.update_per_s,
        "distinct_cost_ratio": distinct.cost_ratio,
        "runtime_s": round(time.perf_counter() - started, 1),
    }


def report(f: dict[str, object]) -> None:
    print(
        f"Loaded {f['nodes']:,} nodes, {f['skus_loaded']:,} SKUs, {f['stock_rows']:,} stock rows and"
        f" {f['protection_rows']:,} tier protections in {f['load_s']} s (a slice of the 100,000-SKU catalogue)"
    )
    print()
    print(f"ATP lookup, {f['lookup_skus']} SKUs across every node, {f['lookups']} runs each")
    print(f"  {'':44}{'rows':>8}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"  {'InventoryQuery.atp, all nodes':44}{f['atp_rows']:>8,}{f['atp_p50_ms']:>10}{f['atp_p99_ms']:>10}")
    near = f"InventoryQuery.atp, within {NEAR_RADIUS_KM:.0f} km of Chicago"
    print(f"  {near:44}{f['atp_near_rows']:>8,}{f['atp_near_p50_ms']:>10}{f['atp_near_p99_ms']:>10}")
    plain = "plain read of the same stock rows"
    print(f"  {plain:44}{f['atp_rows']:>8,}{f['plain_read_p50_ms']:>10}{f['plain_read_p99_ms']:>10}")
    print(f"  ATP / plain read (p50): {f['atp_to_plain_read_ratio']}")
    print()
    print(f"Reservations: {f['reservations']:,} of each, {f['workers']} concurrent workers, one transaction each")
    print(f"  {'':24}{'reserve/s':>12}{'update/s':>12}{'cost ratio':>12}")
    for kind, label in (("hot", "one hot stock row"), ("distinct", "distinct rows")):
        print(
            f"  {label:24}{f[f'{kind}_reserve_per_s']:>12}{f[f'{kind}_update_per_s']:>12}{f[f'{kind}_cost_ratio']:>12}"
        )
    print("  cost ratio = plain updates per second / reservations per second, measured side by side")
    print(f"Runtime {f['runtime_s']} s")


if __name__ == "__main__":
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=2_000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--reservations", type=int, default=2_000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    figures = asyncio.run(main(args.nodes, args.skus, args.lookups, args.reservations, args.workers))
    report(figures)
    print(json.dumps(figures))
