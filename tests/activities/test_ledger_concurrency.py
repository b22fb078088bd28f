"""Reservations under contention on real PostgreSQL: the ledger never oversells, never holds part of a plan,
never double-reserves a repeated key, and never lets a deadlock or serialization failure reach a caller.

Each reserve call is its own unit of work (its own connection and transaction), all started together with
``asyncio.gather``. A semaphore keeps them below the test pool's 40 connections, leaving one for a monitor
that samples ATP while they run. Every contended row promises exactly 50 units: on hand is 50 plus a little
safety stock, so the database's own ``reserved <= on_hand`` check cannot be what stops an oversell; only the
ledger's ATP rule can. The last test races expiry sweeps against each other, against commits of the holds
being swept, and against new reserves.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, tuple_

from domain.errors import OutOfStock, ReservationReleased
from domain.sourcing import Allocation
from infra.db.tables import Reservation, ReservationRequest, Stock
from infra.db.uow import UowFactory
from tests.activities.test_ledger import drain_due, set_stock
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

PROMISABLE = 50
SAFETY = 3
CONCURRENCY = 32
NODES = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("DALLAS", DALLAS), NodeSpec("NEWARK", NEWARK)]
SKUS = ["DRILL", "LADDER", "SAW"]


@dataclass(frozen=True)
class Call:
    key: str
    allocations: list[Allocation]


@dataclass(frozen=True)
class Outcome:
    key: str
    held: bool
    replayed: bool = False
    units: int = 0


async def contended_network(uow: UowFactory, rows: list[tuple[str, str]]) -> SeededNetwork:
    net = await build_network(uow, NODES, dict.fromkeys(rows, PROMISABLE + SAFETY))
    for node, sku in rows:
        await set_stock(uow, net.node(node), net.sku(sku), safety_stock=SAFETY)
    return net


async def run_all(uow: UowFactory, net: SeededNetwork, calls: list[Call]) -> tuple[list[Outcome], int, float]:
    """Run every call at once; returns the outcomes, the lowest raw ATP seen meanwhile, and the elapsed time.

    Only ``OutOfStock`` is an expected answer: anything else (a deadlock, a serialization failure, a check
    constraint) is collected and fails the test.
    """
    gate = asyncio.Semaphore(CONCURRENCY)
    done = asyncio.Event()
    lowest = PROMISABLE

    async def reserve(call: Call) -> Outcome:
        async with gate:
            try:
                async with uow() as u:
                    outcome = await u.inventory.reserve(call.key, call.key.split(":")[0], call.allocations)
                    await u.commit()
            except OutOfStock:
                return Outcome(call.key, held=False)
            return Outcome(call.key, held=True, replayed=outcome.replayed, units=outcome.reserved_units)

    async def monitor() -> None:
        # Raw ATP (not clamped at zero) of the contended rows, sampled while the reservers run.
        nonlocal lowest
        while not done.is_set():
            async with uow() as u:
                sample = await u.session.scalar(
                    select(func.min(Stock.on_hand - Stock.reserved - Stock.safety_stock)).where(
                        Stock.node_id.in_(net.node_ids.values())
                    )
                )
            lowest = min(lowest, int(sample if sample is not None else lowest))
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(monitor())
    started = time.perf_counter()
    try:
        results = await asyncio.gather(*(reserve(c) for c in calls), return_exceptions=True)
    finally:
        done.set()
        await watcher
    elapsed = time.perf_counter() - started
    surprises = [r for r in results if isinstance(r, BaseException)]
    assert not surprises, f"{len(surprises)} call(s) failed with something other than OutOfStock: {surprises[:3]!r}"
    return [r for r in results if isinstance(r, Outcome)], lowest, elapsed


async def held_by_key(uow: UowFactory, keys: list[str]) -> dict[str, list[tuple[str, str, str, int]]]:
    async with uow() as u:
        rows = (
            await u.session.execute(
                select(
                    Reservation.reservation_key,
                    Reservation.line_id,
                    Reservation.node_id,
                    Reservation.sku,
                    Reservation.quantity,
                ).where(Reservation.reservation_key.in_(keys), Reservation.state == "held")
            )
        ).all()
    held: dict[str, list[tuple[str, str, str, int]]] = defaultdict(list)
    for key, line_id, node_id, sku, quantity in rows:
        held[key].append((line_id, node_id, sku, quantity))
    return held


async def claimed_keys(uow: UowFactory, keys: list[str]) -> set[str]:
    async with uow() as u:
        return set(
            await u.session.scalars(
                select(ReservationRequest.reservation_key).where(ReservationRequest.reservation_key.in_(keys))
            )
        )


async def ledger_rows(uow: UowFactory, net: SeededNetwork) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(on_hand, reserved, safety_stock) per contended (node_id, sku)."""
    async with uow() as u:
        rows = (
            await u.session.execute(
                select(Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, Stock.safety_stock).where(
                    Stock.node_id.in_(net.node_ids.values())
                )
            )
        ).all()
    return {(r.node_id, r.sku): (r.on_hand, r.reserved, r.safety_stock) for r in rows}


def check_pairs(outcomes: list[Outcome], copies: int) -> list[Outcome]:
    """Each key was sent ``copies`` times: exactly one call holds and the rest replay it, or all are refused.
    Returns the one first outcome per key."""
    by_key: dict[str, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        by_key[outcome.key].append(outcome)
    firsts = []
    for key, results in by_key.items():
        assert len(results) == copies, key
        fresh = [r for r in results if r.held and not r.replayed]
        if fresh:
            assert len(fresh) == 1, f"{key} was reserved {len(fresh)} times"
            assert all(r.held and r.units == fresh[0].units for r in results), f"{key}: {results}"
            firsts.append(fresh[0])
        else:
            assert not any(r.held for r in results), f"{key}: a replay without a first reservation: {results}"
            firsts.append(results[0])
    return firsts


@pytest.mark.parametrize("copies", [1, 2], ids=["each call once", "each call twice at once"])
async def test_200_single_unit_reservations_against_50_units(uow_factory: UowFactory, copies: int) -> None:
    net = await contended_network(uow_factory, [("AUSTIN", "DRILL")])
    node, sku = net.node("AUSTIN"), net.sku("DRILL")
    calls = [
        Call(f"T{net.prefix}-{i:03d}:reserve:plan-1", [Allocation(line_id="1", node_id=node, sku=sku, quantity=1)])
        for i in range(200)
    ]
    random.Random(copies).shuffle(sent := calls * copies)

    outcomes, lowest, elapsed = await run_all(uow_factory, net, sent)
    firsts = check_pairs(outcomes, copies)

    held = [o for o in firsts if o.held]
    assert len(held) == min(200, PROMISABLE)
    assert Counter(o.replayed for o in outcomes if o.held) == Counter({False: 50, True: 50 * (copies - 1)})
    assert lowest >= 0
    assert (await ledger_rows(uow_factory, net))[(node, sku)] == (PROMISABLE + SAFETY, PROMISABLE, SAFETY)
    keys = [c.key for c in calls]
    assert sum(len(lines) for lines in (await held_by_key(uow_factory, keys)).values()) == PROMISABLE
    assert await claimed_keys(uow_factory, keys) == {o.key for o in held}
    print(f"\nsingle-unit x{copies}: {len(outcomes)} calls, {len(held)} held, {elapsed:.2f}s")


def random_orders(net: SeededNetwork, rng: random.Random, count: int) -> list[Call]:
    """Orders of 3-5 lines on distinct (node, sku) rows drawn from all of them, so they overlap heavily,
    each listing its lines in a random order."""
    rows = [(node, sku) for node in ("AUSTIN", "DALLAS", "NEWARK") for sku in SKUS]
    calls = []
    for i in range(count):
        picked = rng.sample(rows, rng.randint(3, 5))
        allocations = [
            Allocation(line_id=str(n), node_id=net.node(node), sku=net.sku(sku), quantity=rng.randint(1, 6))
            for n, (node, sku) in enumerate(picked, start=1)
        ]
        rng.shuffle(allocations)
        calls.append(Call(f"T{net.prefix}-{i:03d}:reserve:plan-1", allocations))
    return calls


@pytest.mark.parametrize("copies", [1, 2], ids=["each call once", "each call twice at once"])
async def test_50_multi_line_orders_never_oversell_nor_hold_part_of_a_plan(
    uow_factory: UowFactory, copies: int
) -> None:
    rows = [(node, sku) for node in ("AUSTIN", "DALLAS", "NEWARK") for sku in SKUS]
    net = await contended_network(uow_factory, rows)
    rng = random.Random(1120 + copies)
    calls = random_orders(net, rng, 50)
    demand: Counter[tuple[str, str]] = Counter()
    for call in calls:
        for a in call.allocations:
            demand[(a.node_id, a.sku)] += a.quantity
    assert max(demand.values()) > PROMISABLE, "the orders must contend for some row, or the test proves nothing"
    rng.shuffle(sent := calls * copies)

    outcomes, lowest, elapsed = await run_all(uow_factory, net, sent)
    firsts = {o.key: o for o in check_pairs(outcomes, copies)}
    keys = [c.key for c in calls]
    held = await held_by_key(uow_factory, keys)
    ledger = await ledger_rows(uow_factory, net)

    # All or nothing: a held order holds every line as asked, a refused one holds nothing and left no claim.
    for call in calls:
        wanted = sorted((a.line_id, a.node_id, a.sku, a.quantity) for a in call.allocations)
        if firsts[call.key].held:
            assert sorted(held[call.key]) == wanted
            assert firsts[call.key].units == sum(a.quantity for a in call.allocations)
        else:
            assert call.key not in held
    assert await claimed_keys(uow_factory, keys) == {k for k, o in firsts.items() if o.held}

    # The ledger agrees with the reservations, and no row promised more than it had, then or now.
    totals: Counter[tuple[str, str]] = Counter()
    for lines in held.values():
        for _, node_id, sku, quantity in lines:
            totals[(node_id, sku)] += quantity
    for row, (on_hand, reserved, safety) in ledger.items():
        assert reserved == totals[row], row
        assert on_hand - reserved - safety >= 0, row
    assert lowest >= 0

    # Nothing was refused for nothing: stock only went down during the run, so an order refused then would
    # still fit in what is left now if the refusal had been wrong.
    left = {row: on_hand - reserved - safety for row, (on_hand, reserved, safety) in ledger.items()}
    refused = [c for c in calls if not firsts[c.key].held]
    assert refused, "some orders must lose, or the test proves nothing"
    for call in refused:
        assert any(a.quantity > left[(a.node_id, a.sku)] for a in call.allocations), f"{call.key} refused wrongly"
    print(
        f"\nmulti-line x{copies}: {len(outcomes)} calls, {len(calls) - len(refused)} of {len(calls)} orders held,"
        f" {sum(totals.values())} units, {elapsed:.2f}s"
    )


async def test_an_order_lists_the_same_rows_in_any_order_without_deadlock(uow_factory: UowFactory) -> None:
    """The classic deadlock: one order wants A then B, the other B then A, many times over, at once."""
    net = await contended_network(uow_factory, [("AUSTIN", "DRILL"), ("DALLAS", "DRILL")])
    a = (net.node("AUSTIN"), net.sku("DRILL"))
    b = (net.node("DALLAS"), net.sku("DRILL"))
    calls = []
    for i in range(60):
        first, second = (a, b) if i % 2 else (b, a)
        calls.append(
            Call(
                f"T{net.prefix}-{uuid.uuid4().hex[:8]}:reserve:plan-1",
                [
                    Allocation(line_id="1", node_id=first[0], sku=first[1], quantity=1),
                    Allocation(line_id="2", node_id=second[0], sku=second[1], quantity=1),
                ],
            )
        )
    outcomes, lowest, _ = await run_all(uow_factory, net, calls)
    assert sum(o.held for o in outcomes) == PROMISABLE
    assert lowest >= 0
    async with uow_factory() as u:
        reserved = await u.session.scalars(select(Stock.reserved).where(tuple_(Stock.node_id, Stock.sku).in_([a, b])))
        assert list(reserved) == [PROMISABLE, PROMISABLE]


async def test_sweeps_race_each_other_commits_and_reserves_without_splitting_a_plan(uow_factory: UowFactory) -> None:
    """Four sweepers, commits of the very holds being swept, and new reserves on the same rows, all at once:
    every lapsed plan ends wholly committed or wholly released, each release is counted by exactly one sweep,
    and ``reserved`` still equals what the active reservations hold."""
    now = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
    await drain_due(uow_factory, now)
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 1000, ("DALLAS", "LADDER"): 1000})
    plan = [
        Allocation(line_id="1", node_id=net.node("AUSTIN"), sku=net.sku("DRILL"), quantity=2),
        Allocation(line_id="2", node_id=net.node("DALLAS"), sku=net.sku("LADDER"), quantity=1),
    ]
    lapsed = [f"T{net.prefix}-lapsed-{i:03d}:reserve:plan-1" for i in range(60)]
    for key in lapsed:
        async with uow_factory() as u:
            await u.inventory.reserve(key, key.split(":")[0], plan, expires_at=now - timedelta(minutes=1))
            await u.commit()
    fresh = [f"T{net.prefix}-fresh-{i:03d}:reserve:plan-1" for i in range(40)]
    gate = asyncio.Semaphore(CONCURRENCY)
    swept: list[int] = []

    async def sweep() -> int:
        released = 0
        while True:
            async with gate, uow_factory() as u:
                batch = await u.inventory.expire_held(now, limit=5)
                await u.commit()
            released += batch
            if batch == 0:
                swept.append(released)
                return released

    async def commit(key: str) -> bool:
        async with gate:
            try:
                async with uow_factory() as u:
                    await u.inventory.commit(key)
                    await u.commit()
            except ReservationReleased:
                return False
            return True

    async def reserve(key: str) -> int:
        async with gate, uow_factory() as u:
            outcome = await u.inventory.reserve(key, key.split(":")[0], plan)
            await u.commit()
        return outcome.reserved_units

    racing = random.Random(7).sample(lapsed, 20)
    jobs: list[Coroutine[Any, Any, int | bool]] = [sweep() for _ in range(4)]
    jobs += [commit(k) for k in racing] + [reserve(k) for k in fresh]
    random.Random(8).shuffle(jobs)
    results = await asyncio.gather(*jobs, return_exceptions=True)
    surprises = [r for r in results if isinstance(r, BaseException)]
    assert not surprises, surprises[:3]

    async with uow_factory() as u:
        rows = (
            await u.session.execute(
                select(Reservation.reservation_key, Reservation.state).where(
                    Reservation.reservation_key.in_(lapsed + fresh)
                )
            )
        ).all()
    states: dict[str, set[str]] = defaultdict(set)
    for key, state in rows:
        states[key].add(state)
    assert all(len(s) == 1 for s in states.values()), "a plan was split between committed and released"
    committed = {k for k in lapsed if states[k] == {"committed"}}
    assert committed <= set(racing)
    assert all(states[k] == {"released"} for k in lapsed if k not in committed)
    assert all(states[k] == {"held"} for k in fresh)
    # Each sweep counted only what it released itself: together, every lapsed plan not committed, once.
    assert len(swept) == 4
    assert sum(swept) == len(lapsed) - len(committed)

    ledger = await ledger_rows(uow_factory, net)
    active = len(committed) + len(fresh)
    assert ledger[(net.node("AUSTIN"), net.sku("DRILL"))][1] == 2 * active
    assert ledger[(net.node("DALLAS"), net.sku("LADDER"))][1] == active
    print(f"\nsweep race: {sum(swept)} released by 4 sweepers {swept}, {len(committed)} of 20 racing commits won")
