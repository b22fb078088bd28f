"""``FeedRepository`` on real PostgreSQL: stale snapshots, refused batches that write nothing, exact journal
entries, and adjustment batches applied once however often they arrive."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from domain.feeds import AdjustmentLine, BatchConflict, FeedReport, FeedRow, Outcome, SnapshotLine
from infra.db.tables import InventoryJournal, Sku, Stock
from infra.db.uow import UowFactory
from tests.support import AUSTIN, DALLAS, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ACTOR = "erp-bridge"


async def network(uow: UowFactory, stock: dict[tuple[str, str], int] | None = None) -> SeededNetwork:
    return await build_network(
        uow, [NodeSpec("AUS", AUSTIN), NodeSpec("DAL", DALLAS)], stock or {("AUS", "A"): 10, ("DAL", "B"): 4}
    )


async def add_sku(uow: UowFactory, net: SeededNetwork, name: str) -> str:
    """A catalogue SKU with no stock row anywhere."""
    sku = f"T{net.prefix}-{name}"
    async with uow() as u:
        await u.session.execute(insert(Sku).values(sku=sku, name=name))
        await u.commit()
    return sku


async def set_stock(uow: UowFactory, node_id: str, sku: str, **values: object) -> None:
    async with uow() as u:
        await u.session.execute(update(Stock).where(Stock.node_id == node_id, Stock.sku == sku).values(**values))
        await u.commit()


async def stock_of(uow: UowFactory, net: SeededNetwork) -> dict[tuple[str, str], tuple[int, int, int, datetime | None]]:
    """(node_id, sku) -> (on_hand, reserved, safety_stock, snapshot_at) for every stock row of the network."""
    async with uow() as u:
        rows = await u.session.execute(
            select(
                Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, Stock.safety_stock, Stock.snapshot_at
            ).where(Stock.node_id.in_(net.node_ids.values()))
        )
        return {(r.node_id, r.sku): (r.on_hand, r.reserved, r.safety_stock, r.snapshot_at) for r in rows}


async def journal_of(uow: UowFactory, net: SeededNetwork) -> list[tuple[str, str, str, str, str, str | None, int, int]]:
    """(node, sku, kind, actor, reason, source_ref, before, after) for the network's feed entries, oldest first."""
    async with uow() as u:
        rows = await u.session.execute(
            select(
                InventoryJournal.node_id,
                InventoryJournal.sku,
                InventoryJournal.kind,
                InventoryJournal.actor,
                InventoryJournal.reason,
                InventoryJournal.source_ref,
                InventoryJournal.on_hand_before,
                InventoryJournal.on_hand_after,
            )
            .where(InventoryJournal.node_id.in_(net.node_ids.values()))
            .order_by(InventoryJournal.journal_id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def snap(row: int, node_id: str, sku: str, on_hand: int, safety_stock: int | None = None) -> FeedRow[SnapshotLine]:
    return FeedRow(row, SnapshotLine(node_id=node_id, sku=sku, on_hand=on_hand, safety_stock=safety_stock))


def adj(
    row: int, node_id: str, sku: str, delta: int, kind: str = "adjustment", reason: str = "recount"
) -> FeedRow[AdjustmentLine]:
    return FeedRow(
        row,
        AdjustmentLine.model_validate({"node_id": node_id, "sku": sku, "delta": delta, "kind": kind, "reason": reason}),
    )


def batch() -> str:
    return uuid.uuid4().hex[:16]


async def apply_snapshot(uow: UowFactory, rows, *, as_of: datetime, batch_id: str | None = None, **kw) -> FeedReport:
    async with uow() as u:
        report = await u.feeds.apply_snapshot(
            rows, batch_id=batch_id or batch(), as_of=as_of, actor=ACTOR, source=kw.pop("source", "erp"), **kw
        )
        await u.commit()  # committed even when refused: the repository must have left nothing to commit
        return report


async def apply_adjustments(uow: UowFactory, rows, *, batch_id: str | None = None, **kw) -> FeedReport:
    async with uow() as u:
        report = await u.feeds.apply_adjustments(
            rows, batch_id=batch_id or batch(), actor=kw.pop("actor", ACTOR), source=kw.pop("source", "wms"), **kw
        )
        await u.commit()
        return report


def outcomes(report: FeedReport) -> list[tuple[int, Outcome, int | None, int | None]]:
    return [(r.row, r.outcome, r.before, r.after) for r in report.rows]


# --- snapshots ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_at", "as_of", "expected"),
    [
        pytest.param(None, T0, Outcome.APPLIED, id="never-snapshotted"),
        pytest.param(T0, T0 + timedelta(seconds=1), Outcome.APPLIED, id="newer"),
        pytest.param(T0, T0, Outcome.STALE, id="equal-is-stale"),
        pytest.param(T0, T0 - timedelta(hours=1), Outcome.STALE, id="older"),
        # The same instant in another offset is the same instant.
        pytest.param(
            T0,
            T0.astimezone(__import__("datetime").timezone(timedelta(hours=-6))),
            Outcome.STALE,
            id="equal-other-offset",
        ),
    ],
)
async def test_snapshot_applies_only_when_strictly_newer(uow_factory, stored_at, as_of, expected):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    await set_stock(uow_factory, aus, a, snapshot_at=stored_at)
    batch_id = batch()

    report = await apply_snapshot(uow_factory, [snap(1, aus, a, 7)], as_of=as_of, batch_id=batch_id)

    assert report.accepted
    stock = await stock_of(uow_factory, net)
    journal = await journal_of(uow_factory, net)
    if expected is Outcome.APPLIED:
        assert outcomes(report) == [(1, Outcome.APPLIED, 10, 7)]
        assert (report.applied, report.stale, report.refused) == (1, 0, 0)
        assert stock[(aus, a)] == (7, 0, 0, as_of)
        assert journal == [
            (aus, a, "snapshot", ACTOR, f"snapshot from erp as of {as_of.isoformat()}", f"{batch_id}:row 1", 10, 7)
        ]
    else:
        assert outcomes(report) == [(1, Outcome.STALE, 10, None)]
        assert report.rows[0].error is None
        assert "not newer than the stored snapshot" in (report.rows[0].note or "")
        assert (report.applied, report.stale, report.refused) == (0, 1, 0)
        assert stock[(aus, a)] == (10, 0, 0, stored_at)
        assert journal == []


async def test_snapshot_mixes_applied_and_stale_rows_and_is_still_accepted(uow_factory):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    await set_stock(uow_factory, dal, b, snapshot_at=T0 + timedelta(days=1))

    report = await apply_snapshot(uow_factory, [snap(1, aus, a, 3), snap(2, dal, b, 99)], as_of=T0)

    assert report.accepted
    assert outcomes(report) == [(1, Outcome.APPLIED, 10, 3), (2, Outcome.STALE, 4, None)]
    stock = await stock_of(uow_factory, net)
    assert stock[(aus, a)][0] == 3
    assert stock[(dal, b)] == (4, 0, 0, T0 + timedelta(days=1))


async def test_snapshot_creates_a_missing_stock_row_when_node_and_sku_exist(uow_factory):
    net = await network(uow_factory)
    aus = net.node("AUS")
    new_sku = await add_sku(uow_factory, net, "NEW")
    batch_id = batch()

    report = await apply_snapshot(uow_factory, [snap(4, aus, new_sku, 12, safety_stock=2)], as_of=T0, batch_id=batch_id)

    assert outcomes(report) == [(4, Outcome.APPLIED, 0, 12)]
    assert report.rows[0].note == "stock row created; safety_stock 0 -> 2"
    assert (await stock_of(uow_factory, net))[(aus, new_sku)] == (12, 0, 2, T0)
    assert await journal_of(uow_factory, net) == [
        (
            aus,
            new_sku,
            "snapshot",
            ACTOR,
            f"snapshot from erp as of {T0.isoformat()}; stock row created; safety_stock 0 -> 2",
            f"{batch_id}:row 4",
            0,
            12,
        )
    ]


async def test_snapshot_sets_safety_stock_only_when_given(uow_factory):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    await set_stock(uow_factory, aus, a, safety_stock=3)
    await set_stock(uow_factory, dal, b, safety_stock=1)

    await apply_snapshot(uow_factory, [snap(1, aus, a, 10, safety_stock=5), snap(2, dal, b, 4)], as_of=T0)

    stock = await stock_of(uow_factory, net)
    assert stock[(aus, a)] == (10, 0, 5, T0)
    assert stock[(dal, b)] == (4, 0, 1, T0)
    # Row 2 confirmed what was stored: snapshot_at moved on, but no stock changed, so nothing is journaled.
    journal = await journal_of(uow_factory, net)
    assert [(e[0], e[6], e[7]) for e in journal] == [(aus, 10, 10)]
    assert journal[0][4].endswith("; safety_stock 3 -> 5")


@pytest.mark.parametrize("unknown", ["node", "sku", "both"])
async def test_snapshot_with_an_unknown_node_or_sku_refuses_the_batch_and_writes_nothing(uow_factory, unknown):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    missing_row_sku = await add_sku(uow_factory, net, "NEW")
    node = "NO-SUCH-NODE" if unknown in ("node", "both") else aus
    sku = "NO-SUCH-SKU" if unknown in ("sku", "both") else a
    before_stock = await stock_of(uow_factory, net)

    report = await apply_snapshot(
        uow_factory, [snap(1, aus, a, 1), snap(2, node, sku, 5), snap(3, aus, missing_row_sku, 8)], as_of=T0
    )

    assert not report.accepted
    assert (report.applied, report.stale, report.refused) == (0, 0, 1)
    assert [r.outcome for r in report.rows] == [Outcome.NOT_APPLIED, Outcome.REFUSED, Outcome.NOT_APPLIED]
    expected_error = {
        "node": "unknown node NO-SUCH-NODE",
        "sku": "unknown SKU NO-SUCH-SKU",
        "both": "unknown node NO-SUCH-NODE; unknown SKU NO-SUCH-SKU",
    }[unknown]
    assert report.rows[1].error == expected_error
    assert report.rows[0].note == "would have set on_hand 10 -> 1; held back: the batch was refused"
    assert report.rows[0].after is None
    # Nothing written: not the applied row, not the snapshot time, not even the empty row made for row 3.
    assert await stock_of(uow_factory, net) == before_stock
    assert (aus, missing_row_sku) not in before_stock
    assert await journal_of(uow_factory, net) == []


async def test_snapshot_below_reserved_is_refused_naming_the_reserved_units(uow_factory):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    await set_stock(uow_factory, aus, a, reserved=6)
    before_stock = await stock_of(uow_factory, net)

    report = await apply_snapshot(uow_factory, [snap(1, dal, b, 0), snap(2, aus, a, 5)], as_of=T0)

    assert not report.accepted
    assert outcomes(report) == [(1, Outcome.NOT_APPLIED, 4, None), (2, Outcome.REFUSED, 10, None)]
    assert report.rows[1].error == (
        f"on_hand 5 is below the 6 unit(s) reserved at {aus} for {a}: "
        "release or re-source those reservations, then send the count again"
    )
    assert await stock_of(uow_factory, net) == before_stock
    assert await journal_of(uow_factory, net) == []


async def test_snapshot_equal_to_reserved_is_accepted(uow_factory):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    await set_stock(uow_factory, aus, a, reserved=6)

    report = await apply_snapshot(uow_factory, [snap(1, aus, a, 6)], as_of=T0)

    assert report.accepted
    assert (await stock_of(uow_factory, net))[(aus, a)] == (6, 6, 0, T0)


async def test_rows_the_parser_refused_refuse_the_batch(uow_factory):
    from domain.feeds import RowReport

    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    bad = RowReport(row=3, node_id=aus, sku=None, outcome=Outcome.INVALID, error="on_hand: 'x' is not a whole number")

    report = await apply_snapshot(uow_factory, [snap(2, aus, a, 1)], as_of=T0, invalid=[bad])

    assert not report.accepted
    assert outcomes(report) == [(2, Outcome.NOT_APPLIED, 10, None), (3, Outcome.INVALID, None, None)]
    assert (await stock_of(uow_factory, net))[(aus, a)] == (10, 0, 0, None)


async def test_a_large_snapshot_applies_in_a_few_statements(uow_factory):
    """5,000 rows, 4,999 of them new stock rows: more rows than a statement may have parameters per row."""
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    skus = [f"T{net.prefix}-BULK-{i:05d}" for i in range(4_999)]
    async with uow_factory() as u:
        await u.session.execute(insert(Sku), [{"sku": s, "name": s} for s in skus])
        await u.commit()
    rows = [snap(1, aus, a, 11), *(snap(i + 2, aus, s, i) for i, s in enumerate(skus))]

    report = await apply_snapshot(uow_factory, rows, as_of=T0)

    assert report.accepted
    assert report.applied == 5_000
    stock = await stock_of(uow_factory, net)
    assert stock[(aus, a)] == (11, 0, 0, T0)
    assert all(stock[(aus, s)] == (i, 0, 0, T0) for i, s in enumerate(skus))
    assert len(await journal_of(uow_factory, net)) == 5_000


# --- adjustments -------------------------------------------------------------------------------------------------


async def test_adjustments_apply_in_row_order_and_journal_every_row_exactly(uow_factory):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    batch_id = batch()
    rows = [
        adj(1, aus, a, 5, "receipt", "PO-1"),
        adj(2, dal, b, -1, "damage", "forklift"),
        adj(3, aus, a, -12, "cycle_count", "count 2026-03-01"),
        adj(4, dal, b, 0, "cycle_count", "count ok"),
    ]

    report = await apply_adjustments(uow_factory, rows, batch_id=batch_id, source="wms-east", actor="alice")

    assert report.accepted
    assert not report.replayed
    assert outcomes(report) == [
        (1, Outcome.APPLIED, 10, 15),
        (2, Outcome.APPLIED, 4, 3),
        (3, Outcome.APPLIED, 15, 3),
        (4, Outcome.APPLIED, 3, 3),
    ]
    stock = await stock_of(uow_factory, net)
    assert (stock[(aus, a)][0], stock[(dal, b)][0]) == (3, 3)
    assert await journal_of(uow_factory, net) == [
        (aus, a, "receipt", "alice", "PO-1 (from wms-east)", f"{batch_id}:row 1", 10, 15),
        (dal, b, "damage", "alice", "forklift (from wms-east)", f"{batch_id}:row 2", 4, 3),
        (aus, a, "cycle_count", "alice", "count 2026-03-01 (from wms-east)", f"{batch_id}:row 3", 15, 3),
        (dal, b, "cycle_count", "alice", "count ok (from wms-east)", f"{batch_id}:row 4", 3, 3),
    ]
    # Adjustments do not move the snapshot clock.
    assert stock[(aus, a)][3] is None


async def test_a_receipt_creates_a_missing_stock_row(uow_factory):
    net = await network(uow_factory)
    dal = net.node("DAL")
    new_sku = await add_sku(uow_factory, net, "NEW")

    report = await apply_adjustments(uow_factory, [adj(1, dal, new_sku, 7, "receipt", "PO-9")])

    assert outcomes(report) == [(1, Outcome.APPLIED, 0, 7)]
    assert report.rows[0].note == "stock row created"
    assert (await stock_of(uow_factory, net))[(dal, new_sku)] == (7, 0, 0, None)


@pytest.mark.parametrize(
    ("reserved", "delta", "error"),
    [
        pytest.param(0, -11, "delta -11 would take on_hand from 10 to -1, below zero", id="below-zero"),
        pytest.param(
            4,
            -7,
            "delta -7 would take on_hand from 10 to 3, below the 4 unit(s) reserved: "
            "release or re-source those reservations first",
            id="below-reserved",
        ),
    ],
)
async def test_an_adjustment_below_zero_or_reserved_refuses_the_whole_batch(uow_factory, reserved, delta, error):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    new_sku = await add_sku(uow_factory, net, "NEW")
    await set_stock(uow_factory, aus, a, reserved=reserved)
    before_stock = await stock_of(uow_factory, net)
    rows = [adj(1, dal, b, 2, "receipt", "PO-1"), adj(2, aus, a, delta), adj(3, dal, new_sku, 1, "receipt", "PO-2")]

    report = await apply_adjustments(uow_factory, rows)

    assert not report.accepted
    assert outcomes(report) == [
        (1, Outcome.NOT_APPLIED, 4, None),
        (2, Outcome.REFUSED, 10, None),
        (3, Outcome.NOT_APPLIED, 0, None),
    ]
    assert report.rows[1].error == error
    assert await stock_of(uow_factory, net) == before_stock
    assert await journal_of(uow_factory, net) == []


async def test_a_later_row_of_the_same_pair_is_checked_against_the_earlier_rows(uow_factory):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")

    report = await apply_adjustments(
        uow_factory, [adj(1, aus, a, -6, "damage", "wet"), adj(2, aus, a, -6, "damage", "wet")]
    )

    assert outcomes(report) == [(1, Outcome.NOT_APPLIED, 10, None), (2, Outcome.REFUSED, 4, None)]
    assert (await stock_of(uow_factory, net))[(aus, a)][0] == 10


async def test_an_adjustment_batch_sent_again_is_answered_from_the_journal_not_applied_twice(uow_factory):
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    batch_id = batch()
    rows = [adj(1, aus, a, 5, "receipt", "PO-1"), adj(2, dal, b, -1, "damage", "dropped")]
    first = await apply_adjustments(uow_factory, rows, batch_id=batch_id)
    # Stock moves on in between (an order ships); the replay still reports what the batch did, not what is now.
    await set_stock(uow_factory, aus, a, on_hand=2)

    second = await apply_adjustments(uow_factory, rows, batch_id=batch_id, actor="someone-else")

    assert second.replayed
    assert second.accepted
    assert outcomes(second) == outcomes(first) == [(1, Outcome.APPLIED, 10, 15), (2, Outcome.APPLIED, 4, 3)]
    stock = await stock_of(uow_factory, net)
    assert (stock[(aus, a)][0], stock[(dal, b)][0]) == (2, 3)
    assert len(await journal_of(uow_factory, net)) == 2


async def test_a_refused_adjustment_batch_can_be_sent_again_once_fixed(uow_factory):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    await set_stock(uow_factory, aus, a, reserved=8)
    batch_id = batch()
    rows = [adj(1, aus, a, -5, "damage", "crushed")]
    assert not (await apply_adjustments(uow_factory, rows, batch_id=batch_id)).accepted

    await set_stock(uow_factory, aus, a, reserved=0)
    report = await apply_adjustments(uow_factory, rows, batch_id=batch_id)

    assert report.accepted
    assert not report.replayed
    assert (await stock_of(uow_factory, net))[(aus, a)][0] == 5


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(lambda aus, a: [adj(1, aus, a, 6, "receipt", "PO-1")], id="other-delta"),
        pytest.param(lambda aus, a: [adj(1, aus, a, 5, "receipt", "PO-2")], id="other-reason"),
        pytest.param(
            lambda aus, a: [adj(1, aus, a, 5, "receipt", "PO-1"), adj(2, aus, a, 1, "receipt", "x")], id="extra-row"
        ),
    ],
)
async def test_a_batch_id_reused_for_other_rows_is_a_conflict_and_writes_nothing(uow_factory, changed):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    batch_id = batch()
    await apply_adjustments(uow_factory, [adj(1, aus, a, 5, "receipt", "PO-1")], batch_id=batch_id)

    async with uow_factory() as u:
        with pytest.raises(BatchConflict, match=f"batch {batch_id} was already applied with different rows"):
            await u.feeds.apply_adjustments(changed(aus, a), batch_id=batch_id, actor=ACTOR, source="wms")

    assert (await stock_of(uow_factory, net))[(aus, a)][0] == 15
    assert len(await journal_of(uow_factory, net)) == 1


async def test_a_batch_id_with_like_wildcards_matches_only_itself(uow_factory):
    """``source_ref`` is matched by prefix: ``%`` and ``_`` in a client's key must not match other batches."""
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    await apply_adjustments(uow_factory, [adj(1, aus, a, 5, "receipt", "PO-1")], batch_id="key_1")

    report = await apply_adjustments(uow_factory, [adj(1, aus, a, 1, "receipt", "PO-7")], batch_id="key%")

    assert report.accepted
    assert not report.replayed
    assert (await stock_of(uow_factory, net))[(aus, a)][0] == 16


async def test_the_same_adjustment_batch_delivered_twice_at_once_applies_once(uow_factory):
    net = await network(uow_factory)
    aus, a = net.node("AUS"), net.sku("A")
    batch_id = batch()
    rows = [adj(1, aus, a, 5, "receipt", "PO-1")]

    reports = await asyncio.gather(*(apply_adjustments(uow_factory, rows, batch_id=batch_id) for _ in range(4)))

    assert sorted(r.replayed for r in reports) == [False, True, True, True]
    assert (await stock_of(uow_factory, net))[(aus, a)][0] == 15
    assert len(await journal_of(uow_factory, net)) == 1


async def test_concurrent_feeds_on_the_same_rows_serialise(uow_factory):
    """Different batches touching the same pairs in opposite orders: the row locks queue them, none is lost."""
    net = await network(uow_factory)
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    forward = [adj(1, aus, a, 1, "receipt", "f"), adj(2, dal, b, 1, "receipt", "f")]
    backward = [adj(1, dal, b, 1, "receipt", "b"), adj(2, aus, a, 1, "receipt", "b")]

    reports = await asyncio.gather(*(apply_adjustments(uow_factory, forward if i % 2 else backward) for i in range(10)))

    assert all(r.accepted for r in reports)
    stock = await stock_of(uow_factory, net)
    assert (stock[(aus, a)][0], stock[(dal, b)][0]) == (20, 14)
    assert len(await journal_of(uow_factory, net)) == 20
