"""A Hypothesis state machine over the reservation ledger on real PostgreSQL: reserve, reserve again, commit,
consume, release, expire, adjust and snapshot in any order, with a model of what each should do and the
ledger's invariants read back from the database after every step.

How it runs: Hypothesis drives rules synchronously, while the repository is async on psycopg's async
driver, whose connections belong to the event loop that opened them. The session's engine belongs to
pytest-asyncio's loop, which is not running while a synchronous test runs, so the machine gets an event loop
of its own in a dedicated thread, and an engine created and disposed there; each rule hands its coroutine
to that loop (``run_coroutine_threadsafe``) and waits. Nothing touches the session loop.

Adjust and snapshot are the inventory feeds' (``infra.db.feeds``), used as they are: a delta or a count that
would leave ``on_hand`` below ``reserved`` is refused and writes nothing (the feeds' rule in ``domain.feeds``:
accepting it would mean choosing which orders lose their stock). A count between ``reserved`` and
``reserved + safety_stock`` is accepted and leaves the row oversubscribed with ATP 0, as ``domain.inventory``
allows.

Expiry is global, so the machine's clock lives in the year 2000, far from the other tests' expiries, and each
example releases what it still holds when it ends: an exact count of what a sweep released stays exact.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update

from domain.errors import OutOfStock, ReservationReleased
from domain.feeds import AdjustmentKind, AdjustmentLine, FeedRow, SnapshotLine
from domain.sourcing import Allocation
from infra.db.atp import atp_expression
from infra.db.engine import create_engine, session_factory
from infra.db.tables import InventoryJournal, Reservation, Stock
from infra.db.uow import UowFactory
from infra.db.uow import uow_factory as make_uow_factory
from tests.support import AUSTIN, DALLAS, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

T = TypeVar("T")

ERA = datetime(2000, 1, 1, tzinfo=UTC)
NODES = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("DALLAS", DALLAS)]
ROWS = [("AUSTIN", "DRILL"), ("AUSTIN", "LADDER"), ("DALLAS", "DRILL"), ("DALLAS", "LADDER")]
ACTIVE = ("held", "committed")

row_index = st.integers(0, len(ROWS) - 1)
plan_lines = st.lists(st.tuples(row_index, st.integers(1, 3)), min_size=1, max_size=3)


class LoopThread:
    """An event loop running in a thread of its own; ``run`` executes a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="ledger-state-machine", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


@dataclass
class Line:
    line_id: str
    row: int
    quantity: int
    state: str = "held"


@dataclass
class Hold:
    """What the model expects of one reservation key."""

    units: int
    lines: list[Line]
    expires_at: datetime | None


@dataclass
class Ledger:
    on_hand: list[int]
    safety: list[int]
    initial: list[int] = field(default_factory=list)
    consumed: list[int] = field(default_factory=lambda: [0] * len(ROWS))
    # Net change to on_hand from adjustments and snapshots: whatever consumption does not explain.
    external: list[int] = field(default_factory=lambda: [0] * len(ROWS))
    holds: dict[str, Hold] = field(default_factory=dict)

    def reserved(self, row: int) -> int:
        return sum(
            line.quantity
            for hold in self.holds.values()
            for line in hold.lines
            if line.row == row and line.state in ACTIVE
        )

    def atp(self, row: int) -> int:
        return max(0, self.on_hand[row] - self.reserved(row) - self.safety[row])


@dataclass(frozen=True)
class Harness:
    """The thread's loop and a unit-of-work factory whose engine lives on that loop."""

    runner: LoopThread
    uow: UowFactory


class LedgerMachine(RuleBasedStateMachine):
    # Set by the test before the machine runs.
    harness: ClassVar[Harness]

    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.net: SeededNetwork | None = None
        self.model = Ledger(on_hand=[], safety=[])
        self.clock = ERA
        self.counter = 0

    # --- plumbing -----------------------------------------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.harness.runner.run(coro)

    def ids(self, row: int) -> tuple[str, str]:
        assert self.net is not None
        node, sku = ROWS[row]
        return self.net.node(node), self.net.sku(sku)

    def allocations(self, lines: list[tuple[int, int]]) -> list[Allocation]:
        return [
            Allocation(line_id=str(n), node_id=self.ids(row)[0], sku=self.ids(row)[1], quantity=quantity)
            for n, (row, quantity) in enumerate(lines, start=1)
        ]

    async def _reserve(self, key: str, allocations: list[Allocation], expires_at: datetime | None) -> tuple[int, bool]:
        async with self.harness.uow() as u:
            outcome = await u.inventory.reserve(key, "sm", allocations, expires_at=expires_at)
            await u.commit()
        return outcome.reserved_units, outcome.replayed

    async def _commit(self, key: str) -> int:
        async with self.harness.uow() as u:
            changed = await u.inventory.commit(key)
            await u.commit()
        return changed

    async def _settle(self, key: str, *, consume: bool, node_id: str | None) -> int:
        async with self.harness.uow() as u:
            changed = await u.inventory.settle(key, consume=consume, node_id=node_id, actor="state-machine")
            await u.commit()
        return changed

    async def _expire(self, now: datetime, limit: int) -> list[int]:
        """Sweep until a batch comes back short, as the sweeper activity does; the size of every batch."""
        batches: list[int] = []
        while not batches or batches[-1] == limit:
            async with self.harness.uow() as u:
                batches.append(await u.inventory.expire_held(now, limit=limit))
                await u.commit()
        return batches

    async def _adjust(self, row: int, delta: int) -> bool:
        node_id, sku = self.ids(row)
        kind = (
            AdjustmentKind.RECEIPT if delta > 0 else AdjustmentKind.DAMAGE if delta < 0 else AdjustmentKind.CYCLE_COUNT
        )
        line = AdjustmentLine(node_id=node_id, sku=sku, kind=kind, delta=delta, reason="state machine")
        async with self.harness.uow() as u:
            report = await u.feeds.apply_adjustments(
                [FeedRow(row=1, line=line)], batch_id=self.batch_id(), actor="state-machine", source="test"
            )
            await u.commit()
        return report.accepted

    async def _snapshot(self, row: int, count: int) -> bool:
        node_id, sku = self.ids(row)
        line = SnapshotLine(node_id=node_id, sku=sku, on_hand=count)
        async with self.harness.uow() as u:
            report = await u.feeds.apply_snapshot(
                [FeedRow(row=1, line=line)],
                batch_id=self.batch_id(),
                as_of=self.clock + timedelta(microseconds=self.counter),  # newer than any earlier count
                actor="state-machine",
                source="test",
            )
            await u.commit()
        return report.accepted

    def batch_id(self) -> str:
        assert self.net is not None
        self.counter += 1
        return f"T{self.net.prefix}-feed-{self.counter}"

    # --- setup --------------------------------------------------------------------------------------------

    @initialize(
        on_hand=st.lists(st.integers(3, 12), min_size=4, max_size=4),
        safety=st.lists(st.integers(0, 2), min_size=4, max_size=4),
    )
    def build(self, on_hand: list[int], safety: list[int]) -> None:
        async def setup() -> SeededNetwork:
            # Whatever an earlier example could not release (it failed mid-way) must not be swept into this
            # example's counts.
            await self._expire(ERA + timedelta(days=365), 500)
            net = await build_network(self.harness.uow, NODES, {ROWS[r]: on_hand[r] for r in range(len(ROWS))})
            async with self.harness.uow() as u:
                for r, (node, sku) in enumerate(ROWS):
                    await u.session.execute(
                        update(Stock)
                        .where(Stock.node_id == net.node(node), Stock.sku == net.sku(sku))
                        .values(safety_stock=safety[r])
                    )
                await u.commit()
            return net

        self.net = self.call(setup())
        self.model = Ledger(on_hand=list(on_hand), safety=list(safety), initial=list(on_hand))

    def teardown(self) -> None:
        for key in self.model.holds:
            self.call(self._settle(key, consume=False, node_id=None))

    # --- the ledger's operations --------------------------------------------------------------------------

    # Two rules that reserve (open-ended, and with an expiry) so that holds are common enough for the rules
    # that act on them to have something to do.
    @rule(target=keys, lines=plan_lines)
    def reserve(self, lines: list[tuple[int, int]]) -> Any:
        return self._hold(lines, ttl=None)

    @rule(target=keys, lines=plan_lines, ttl=st.integers(0, 60))
    def reserve_until(self, lines: list[tuple[int, int]], ttl: int) -> Any:
        return self._hold(lines, ttl=ttl)

    def _hold(self, lines: list[tuple[int, int]], ttl: int | None) -> Any:
        assert self.net is not None
        self.counter += 1
        key = f"T{self.net.prefix}-{self.counter}:reserve:plan-1"
        expires_at = None if ttl is None else self.clock + timedelta(minutes=ttl)
        demand: Counter[int] = Counter()
        for row, quantity in lines:
            demand[row] += quantity
        short = {row for row, quantity in demand.items() if quantity > self.model.atp(row)}
        refusal: OutOfStock | None = None
        try:
            units, replayed = self.call(self._reserve(key, self.allocations(lines), expires_at))
        except OutOfStock as err:
            refusal = err
        if refusal is not None:
            assert short, f"refused although every row could cover it: {refusal.message}"
            assert isinstance(refusal.details, dict)
            assert set(refusal.details) == {f"{self.ids(r)[1]}@{self.ids(r)[0]}" for r in short}
            return multiple()
        assert not short, f"held although rows {sorted(short)} were short"
        assert (units, replayed) == (sum(demand.values()), False)
        self.model.holds[key] = Hold(
            units=units,
            lines=[Line(str(n), row, quantity) for n, (row, quantity) in enumerate(lines, start=1)],
            expires_at=expires_at,
        )
        return key

    @rule(key=keys, lines=plan_lines)
    def reserve_again(self, key: str, lines: list[tuple[int, int]]) -> None:
        """A retried or replayed call. The same plan gets the first outcome and holds nothing new (refused
        once everything the key held was released, since it holds nothing now); another plan under the same
        key is a bug upstream and fails loudly, holding nothing."""
        hold = self.model.holds[key]
        original = [(line.row, line.quantity) for line in hold.lines]
        if lines != original:
            with pytest.raises(RuntimeError, match="was made for"):
                self.call(self._reserve(key, self.allocations(lines), None))
        if all(line.state == "released" for line in hold.lines):
            with pytest.raises(ReservationReleased):
                self.call(self._reserve(key, self.allocations(original), None))
            return
        units, replayed = self.call(self._reserve(key, self.allocations(original), None))
        assert (units, replayed) == (hold.units, True)

    @rule(key=keys)
    def commit(self, key: str) -> None:
        hold = self.model.holds[key]
        held = [line for line in hold.lines if line.state == "held"]
        if not held and not any(line.state in ("committed", "consumed") for line in hold.lines):
            with pytest.raises(ReservationReleased):
                self.call(self._commit(key))
            return
        assert self.call(self._commit(key)) == len(held)
        for line in held:
            line.state = "committed"
        if held:
            hold.expires_at = None

    @rule(key=keys, node=st.sampled_from([None, "AUSTIN", "DALLAS"]))
    def consume(self, key: str, node: str | None) -> None:
        assert self.net is not None
        taken = [
            line
            for line in self.model.holds[key].lines
            if line.state in ACTIVE and (node is None or ROWS[line.row][0] == node)
        ]
        node_id = None if node is None else self.net.node(node)
        assert self.call(self._settle(key, consume=True, node_id=node_id)) == len(taken)
        for line in taken:
            line.state = "consumed"
            self.model.on_hand[line.row] -= line.quantity
            self.model.consumed[line.row] += line.quantity

    @rule(key=keys)
    def release(self, key: str) -> None:
        freed = [line for line in self.model.holds[key].lines if line.state in ACTIVE]
        assert self.call(self._settle(key, consume=False, node_id=None)) == len(freed)
        for line in freed:
            line.state = "released"

    @rule(minutes=st.integers(0, 45), limit=st.integers(1, 3))
    def expire(self, minutes: int, limit: int) -> None:
        self.clock += timedelta(minutes=minutes)
        due = [
            hold
            for hold in self.model.holds.values()
            if hold.expires_at is not None
            and hold.expires_at <= self.clock
            and any(line.state == "held" for line in hold.lines)
        ]
        batches = self.call(self._expire(self.clock, limit))
        assert sum(batches) == len(due)
        assert all(size <= limit for size in batches)
        for hold in due:
            for line in hold.lines:
                if line.state == "held":
                    line.state = "released"

    @rule(row=row_index, delta=st.integers(-6, 6))
    def adjust(self, row: int, delta: int) -> None:
        """on_hand += delta; refused whole when it would leave fewer units than are reserved."""
        applies = self.model.on_hand[row] + delta >= self.model.reserved(row)
        assert self.call(self._adjust(row, delta)) is applies
        if applies:
            self.model.on_hand[row] += delta
            self.model.external[row] += delta

    @rule(row=row_index, count=st.integers(0, 8))
    def snapshot(self, row: int, count: int) -> None:
        """An absolute count; refused when it is below what is reserved."""
        applies = count >= self.model.reserved(row)
        assert self.call(self._snapshot(row, count)) is applies
        if applies:
            self.model.external[row] += count - self.model.on_hand[row]
            self.model.on_hand[row] = count

    # --- invariants, read from PostgreSQL after every step ------------------------------------------------

    @invariant()
    @precondition(lambda self: self.net is not None)
    def ledger_holds_together(self) -> None:
        assert self.net is not None
        node_ids = list(self.net.node_ids.values())

        async def read() -> tuple[list[Any], list[Any], list[Any]]:
            async with self.harness.uow() as u:
                stock = (
                    await u.session.execute(
                        select(
                            Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, atp_expression().label("atp")
                        ).where(Stock.node_id.in_(node_ids))
                    )
                ).all()
                lines = (
                    await u.session.execute(
                        select(
                            Reservation.reservation_key,
                            Reservation.line_id,
                            Reservation.node_id,
                            Reservation.sku,
                            Reservation.quantity,
                            Reservation.state,
                            Reservation.expires_at,
                        ).where(Reservation.node_id.in_(node_ids))
                    )
                ).all()
                shipped = InventoryJournal.kind == "shipment"
                journal = (
                    await u.session.execute(
                        select(
                            InventoryJournal.node_id,
                            InventoryJournal.sku,
                            func.sum(InventoryJournal.on_hand_before - InventoryJournal.on_hand_after).filter(shipped),
                            func.sum(InventoryJournal.on_hand_after - InventoryJournal.on_hand_before),
                        )
                        .where(InventoryJournal.node_id.in_(node_ids))
                        .group_by(InventoryJournal.node_id, InventoryJournal.sku)
                    )
                ).all()
            return list(stock), list(lines), list(journal)

        stock, lines, journal = self.call(read())
        row_of = {self.ids(r): r for r in range(len(ROWS))}
        by_row = {row_of[(s.node_id, s.sku)]: s for s in stock}
        active: Counter[int] = Counter()
        consumed: Counter[int] = Counter()
        for line in lines:
            if line.state in ACTIVE:
                active[row_of[(line.node_id, line.sku)]] += line.quantity
            if line.state == "consumed":
                consumed[row_of[(line.node_id, line.sku)]] += line.quantity
        shipped = {row_of[(j.node_id, j.sku)]: int(j[2] or 0) for j in journal}
        journaled = {row_of[(j.node_id, j.sku)]: int(j[3]) for j in journal}

        for r, s in by_row.items():
            model = self.model
            assert s.on_hand >= 0, ROWS[r]
            assert s.reserved >= 0, ROWS[r]
            assert s.reserved <= s.on_hand, ROWS[r]
            assert s.reserved == active[r] == model.reserved(r), ROWS[r]
            assert s.on_hand == model.on_hand[r] == model.initial[r] + model.external[r] - model.consumed[r], ROWS[r]
            # Every unit that left through consumption is a consumed reservation and a journal line, and
            # every change to on_hand since the row was created is journaled.
            assert consumed[r] == shipped.get(r, 0) == model.consumed[r], ROWS[r]
            assert s.on_hand == model.initial[r] + journaled.get(r, 0), ROWS[r]
            assert s.atp == model.atp(r) >= 0, ROWS[r]

        # Every line is in the state the model expects; committed lines carry no expiry.
        seen = {(line.reservation_key, line.line_id): (line.state, line.expires_at) for line in lines}
        expected = {
            (key, line.line_id): (line.state, hold.expires_at if line.state == "held" else None)
            for key, hold in self.model.holds.items()
            for line in hold.lines
        }
        assert {k: v[0] for k, v in seen.items()} == {k: v[0] for k, v in expected.items()}
        for k, (state, expires_at) in seen.items():
            if state == "committed":
                assert expires_at is None, k
            if state == "held":
                assert expires_at == expected[k][1], k


def test_the_ledger_keeps_its_invariants_through_any_sequence_of_operations(database_url: str) -> None:
    runner = LoopThread()
    engine = create_engine(database_url, pool_size=2)
    try:
        LedgerMachine.harness = Harness(runner, make_uow_factory(session_factory(engine)))
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=50,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        runner.run(engine.dispose())
        runner.close()
