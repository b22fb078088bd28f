"""``domain.feeds``: CSV parsing with per-row errors, the row rules, and how a batch is decided (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.feeds import (
    MAX_QUANTITY,
    MAX_ROWS,
    AdjustmentLine,
    BatchConflict,
    Catalogue,
    FeedFormatError,
    FeedRow,
    FeedTooLarge,
    JournaledRow,
    Outcome,
    RowReport,
    SnapshotLine,
    StockLevel,
    as_of_error,
    batch_fingerprint,
    decide_adjustments,
    decide_snapshot,
    decode_csv,
    parse_adjustment_csv,
    parse_snapshot_csv,
    replay_of,
    row_of,
    source_ref,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CATALOGUE = Catalogue(node_ids=frozenset({"N1", "N2"}), skus=frozenset({"S1", "S2", "S3"}))


def parsed_snapshot(text: str, **kw: Any) -> tuple[list[tuple[int, str, str, int, int | None]], list[tuple[int, str]]]:
    """(row, node, sku, on_hand, safety_stock) per good row and (row, error) per invalid one."""
    feed = parse_snapshot_csv(text, **kw)
    good = [(r.row, r.line.node_id, r.line.sku, r.line.on_hand, r.line.safety_stock) for r in feed.rows]
    return good, [(r.row, r.error or "") for r in feed.invalid]


# --- snapshot CSV ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "good", "invalid"),
    [
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,5\nN2,S1,0\n",
            [(2, "N1", "S1", 5, None), (3, "N2", "S1", 0, None)],
            [],
            id="good-file",
        ),
        pytest.param(
            "node_id,sku,on_hand,safety_stock\nN1,S1,5,2\nN1,S2,5,\n",
            [(2, "N1", "S1", 5, 2), (3, "N1", "S2", 5, None)],
            [],
            id="optional-safety-stock",
        ),
        pytest.param("sku,on_hand,node_id\nS1,5,N1\n", [(2, "N1", "S1", 5, None)], [], id="any-column-order"),
        pytest.param(" Node_ID , SKU ,On_Hand\n N1 , S1 , 5 \n", [(2, "N1", "S1", 5, None)], [], id="case-and-spaces"),
        pytest.param("\ufeffnode_id,sku,on_hand\nN1,S1,5\n", [(2, "N1", "S1", 5, None)], [], id="bom"),
        pytest.param(
            "node_id,sku,on_hand\r\nN1,S1,5\r\nN1,S2,6\r\n",
            [(2, "N1", "S1", 5, None), (3, "N1", "S2", 6, None)],
            [],
            id="crlf",
        ),
        pytest.param(
            "\n\nnode_id,sku,on_hand\n\nN1,S1,5\n,,\n  \nN1,S2,6",
            [(5, "N1", "S1", 5, None), (8, "N1", "S2", 6, None)],
            [],
            id="blank-lines-skipped-rows-keep-line-numbers",
        ),
        pytest.param("node_id,sku,on_hand\nN1,S1,+5\n", [(2, "N1", "S1", 5, None)], [], id="explicit-plus"),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,-1\n",
            [],
            [(2, "on_hand: Input should be greater than or equal to 0")],
            id="negative",
        ),
        pytest.param(
            "node_id,sku,on_hand,safety_stock\nN1,S1,1,-2\n",
            [],
            [(2, "safety_stock: Input should be greater than or equal to 0")],
            id="negative-safety-stock",
        ),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,5.0\n", [], [(2, "on_hand: '5.0' is not a whole number")], id="decimal"
        ),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,1e3\n", [], [(2, "on_hand: '1e3' is not a whole number")], id="exponent"
        ),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,five\n", [], [(2, "on_hand: 'five' is not a whole number")], id="word"
        ),
        pytest.param("node_id,sku,on_hand\nN1,S1,\n", [], [(2, "on_hand: required")], id="empty-quantity"),
        pytest.param(
            f"node_id,sku,on_hand\nN1,S1,{MAX_QUANTITY + 1}\n",
            [],
            [(2, f"on_hand: Input should be less than or equal to {MAX_QUANTITY}")],
            id="too-large",
        ),
        pytest.param("node_id,sku,on_hand\nN1,S1\n", [], [(2, "expected 3 values, got 2")], id="short-row"),
        pytest.param("node_id,sku,on_hand\nN1,S1,5,9\n", [], [(2, "expected 3 values, got 4")], id="long-row"),
        pytest.param(
            "node_id,sku,on_hand\nN 1,S1,5\n",
            [],
            [(2, "node_id: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$'")],
            id="bad-node-id",
        ),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,x\nN1,S2,-1\nN1,S3,4\n",
            [(4, "N1", "S3", 4, None)],
            [(2, "on_hand: 'x' is not a whole number"), (3, "on_hand: Input should be greater than or equal to 0")],
            id="bad-rows-reported-good-rows-kept",
        ),
        pytest.param(
            "node_id,sku,on_hand\nN1,S1,5\nN2,S1,1\nN1,S1,6\n",
            [(2, "N1", "S1", 5, None), (3, "N2", "S1", 1, None)],
            [(4, "duplicate of row 2: a snapshot holds one count per node and SKU")],
            id="duplicate-pair",
        ),
        pytest.param(
            'node_id,sku,on_hand\nN1,"S1",5\n"N2","S,2",1\n',
            [(2, "N1", "S1", 5, None)],
            [(3, "sku: String should match pattern '^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$'")],
            id="quoted-cells",
        ),
    ],
)
def test_snapshot_csv_rows(text, good, invalid):
    assert parsed_snapshot(text) == (good, invalid)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "the file is empty: expected a header line node_id,sku,on_hand,[safety_stock]", id="empty"),
        pytest.param(
            "\n \n", "the file is empty: expected a header line node_id,sku,on_hand,[safety_stock]", id="blank"
        ),
        pytest.param(
            "N1,S1,5\n",
            "header: missing column(s) node_id, sku, on_hand; unknown column(s) 'n1', 's1', '5'; "
            "expected node_id,sku,on_hand,[safety_stock]",
            id="no-header",
        ),
        pytest.param(
            "node_id,sku\n",
            "header: missing column(s) on_hand; expected node_id,sku,on_hand,[safety_stock]",
            id="missing",
        ),
        pytest.param(
            "node_id,sku,on_hand,bin\n",
            "header: unknown column(s) 'bin'; expected node_id,sku,on_hand,[safety_stock]",
            id="extra",
        ),
        pytest.param(
            "node_id,sku,on_hand,sku\n",
            "header: repeated column(s) sku; expected node_id,sku,on_hand,[safety_stock]",
            id="repeated",
        ),
        pytest.param(
            'node_id,sku,on_hand\n"N1,S1,5\nN2,S1,5\n',
            "line 3: unexpected end of data; check the quotes on this line and above",
            id="unclosed-quote",
        ),
        pytest.param(
            'node_id,sku,on_hand\nN1,"S1"x,5\n',
            "line 2: ',' expected after '\"'; check the quotes on this line and above",
            id="stray-quote",
        ),
    ],
)
def test_a_snapshot_csv_that_cannot_be_read_is_a_format_error(text, message):
    with pytest.raises(FeedFormatError) as raised:
        parse_snapshot_csv(text)
    assert raised.value.message == message


def test_the_row_limit_counts_rows_bad_ones_too_but_not_blank_lines():
    rows = "N1,S0,1\n\nN1,S1,x\n\nN1,S2,1\n"
    feed = parse_snapshot_csv("node_id,sku,on_hand\n" + rows, max_rows=3)
    assert (len(feed.rows), len(feed.invalid)) == (2, 1)
    with pytest.raises(FeedTooLarge, match=r"^more than 2 rows; split the file into batches of at most 2$"):
        parse_snapshot_csv("node_id,sku,on_hand\n" + rows, max_rows=2)


def test_the_default_row_limit_is_max_rows():
    rows = "".join(f"N1,S{i},1,receipt,PO\n" for i in range(MAX_ROWS + 1))
    with pytest.raises(FeedTooLarge, match=f"^more than {MAX_ROWS} rows"):
        parse_adjustment_csv("node_id,sku,delta,kind,reason\n" + rows)


def test_a_garbage_cell_is_cut_short_in_the_report():
    feed = parse_snapshot_csv("node_id,sku,on_hand\n" + "N" * 5_000 + ",S1,1\n")
    assert feed.invalid[0].node_id == "N" * 80


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"\xef\xbb\xbfnode_id", "node_id", id="bom-dropped"),
        pytest.param("sku\nCAF\u00c9".encode(), "sku\nCAF\u00c9", id="utf-8"),
    ],
)
def test_decode_csv(data, expected):
    assert decode_csv(data) == expected


def test_decode_csv_names_the_line_of_a_byte_that_is_not_utf_8():
    with pytest.raises(FeedFormatError, match=r"^the file is not UTF-8 text: byte 0xe9 on line 3$"):
        decode_csv(b"node_id,sku,on_hand\nN1,S1,1\nN1,CAF\xe9,1\n")


# --- adjustment CSV and rows -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "good", "invalid"),
    [
        pytest.param(
            'node_id,sku,delta,kind,reason\nN1,S1,5,receipt,"PO-1, dock 2"\n'
            "N1,S1,-2,damage,wet\nN1,S1,0,cycle_count,ok\n",
            [(2, 5, "receipt", "PO-1, dock 2"), (3, -2, "damage", "wet"), (4, 0, "cycle_count", "ok")],
            [],
            id="good-file-and-a-pair-repeated",
        ),
        pytest.param(
            "reason,kind,delta,sku,node_id\nfound,adjustment,3,S1,N1\n",
            [(2, 3, "adjustment", "found")],
            [],
            id="column-order",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,5,damage,x\n",
            [],
            [(2, "delta: damage removes units: delta must be negative, got 5")],
            id="positive-damage",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,-5,receipt,x\n",
            [],
            [(2, "delta: a receipt adds units: delta must be positive, got -5")],
            id="negative-receipt",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,0,receipt,x\n",
            [],
            [(2, "delta: a receipt adds units: delta must be positive, got 0")],
            id="zero-receipt",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,0,adjustment,x\n",
            [],
            [(2, "delta: an adjustment of 0 changes nothing")],
            id="zero-adjustment",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,1,Receipt,x\n",
            [],
            [(2, "kind: Input should be 'receipt', 'damage', 'cycle_count' or 'adjustment'")],
            id="kind-is-exact",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,1,receipt,\n",
            [],
            [(2, "reason: String should have at least 1 character")],
            id="no-reason",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,1.5,receipt,x\n",
            [],
            [(2, "delta: '1.5' is not a whole number")],
            id="fraction",
        ),
        pytest.param(
            "node_id,sku,delta,kind,reason\nN1,S1,x,theft,\n",
            [],
            [
                (
                    2,
                    "delta: 'x' is not a whole number; kind: Input should be 'receipt', 'damage', 'cycle_count' or "
                    "'adjustment'; reason: String should have at least 1 character",
                )
            ],
            id="every-problem-of-the-row",
        ),
        pytest.param(
            "kind,delta,node_id,sku,reason\nreceipt,-1,N1,S1,x\n",
            [],
            [(2, "delta: a receipt adds units: delta must be positive, got -1")],
            id="sign-rule-sees-kind-in-any-order",
        ),
    ],
)
def test_adjustment_csv_rows(text, good, invalid):
    feed = parse_adjustment_csv(text)
    assert [(r.row, r.line.delta, str(r.line.kind), r.line.reason) for r in feed.rows] == good
    assert [(r.row, r.error) for r in feed.invalid] == invalid


def test_an_adjustment_csv_needs_every_column():
    with pytest.raises(
        FeedFormatError, match=r"^header: missing column\(s\) reason; expected node_id,sku,delta,kind,reason$"
    ):
        parse_adjustment_csv("node_id,sku,delta,kind\nN1,S1,1,receipt\n")


@pytest.mark.parametrize(
    "row",
    [
        {"node_id": "N1", "sku": "S1", "on_hand": True},
        {"node_id": "N1", "sku": "S1", "on_hand": "1"},
        {"node_id": "N1", "sku": "S1", "on_hand": 1.0},
    ],
    ids=["bool", "string", "float"],
)
def test_quantities_are_strict_integers(row):
    with pytest.raises(ValidationError):
        SnapshotLine.model_validate(row)


# --- identity and clock ------------------------------------------------------------------------------------------


def test_the_batch_fingerprint_depends_on_content_not_key_order():
    a = batch_fingerprint({"kind": "adjustment", "source": "wms", "rows": [{"sku": "S1", "delta": 1}]})
    b = batch_fingerprint({"rows": [{"delta": 1, "sku": "S1"}], "source": "wms", "kind": "adjustment"})
    c = batch_fingerprint({"kind": "adjustment", "source": "wms", "rows": [{"sku": "S1", "delta": 2}]})
    assert a == b != c
    assert len(a) == 32


@pytest.mark.parametrize(
    ("batch_id", "ref", "row"),
    [
        ("abc", "abc:row 7", 7),
        ("abc", "abcd:row 7", None),
        ("a%c", "abc:row 7", None),
        ("abc", "abc:row 7x", None),
        ("abc", "order-1:reserve:plan-1", None),
    ],
)
def test_row_of_reads_only_this_batch_refs(batch_id, ref, row):
    assert source_ref("abc", 7) == "abc:row 7"
    assert row_of(batch_id, ref) == row


@pytest.mark.parametrize(
    ("as_of", "refused"),
    [
        (T0 - timedelta(days=400), False),
        (T0, False),
        (T0 + timedelta(minutes=5), False),
        (T0 + timedelta(minutes=5, seconds=1), True),
        ((T0 + timedelta(hours=1)).astimezone(timezone(timedelta(hours=9))), True),
    ],
)
def test_as_of_may_be_ahead_of_the_clock_by_skew_only(as_of, refused):
    assert (as_of_error(as_of, now=T0) is not None) == refused


# --- deciding a snapshot -----------------------------------------------------------------------------------------


def snap(row: int, node: str, sku: str, on_hand: int, safety: int | None = None) -> FeedRow[SnapshotLine]:
    return FeedRow(row, SnapshotLine(node_id=node, sku=sku, on_hand=on_hand, safety_stock=safety))


def adj(row: int, node: str, sku: str, delta: int, kind: str = "cycle_count") -> FeedRow[AdjustmentLine]:
    return FeedRow(
        row, AdjustmentLine.model_validate({"node_id": node, "sku": sku, "delta": delta, "kind": kind, "reason": "r"})
    )


def level(on_hand: int, reserved: int = 0, safety: int = 0, at: datetime | None = None) -> StockLevel:
    return StockLevel(on_hand=on_hand, reserved=reserved, safety_stock=safety, snapshot_at=at)


@pytest.mark.parametrize(
    ("stored", "line", "outcome", "after", "message"),
    [
        pytest.param(level(5), snap(1, "N1", "S1", 7), Outcome.APPLIED, 7, None, id="first-snapshot"),
        pytest.param(
            level(5, at=T0 - timedelta(seconds=1)), snap(1, "N1", "S1", 7), Outcome.APPLIED, 7, None, id="newer"
        ),
        pytest.param(level(5, at=T0), snap(1, "N1", "S1", 7), Outcome.STALE, None, "not newer", id="equal"),
        pytest.param(
            level(5, at=T0 + timedelta(days=1)), snap(1, "N1", "S1", 7), Outcome.STALE, None, "not newer", id="older"
        ),
        pytest.param(None, snap(1, "N1", "S1", 7), Outcome.APPLIED, 7, "stock row created", id="new-row"),
        pytest.param(
            level(5, reserved=4),
            snap(1, "N1", "S1", 3),
            Outcome.REFUSED,
            None,
            "below the 4 unit(s) reserved",
            id="below-reserved",
        ),
        pytest.param(level(5, reserved=4), snap(1, "N1", "S1", 4), Outcome.APPLIED, 4, None, id="equal-to-reserved"),
        pytest.param(
            level(5, reserved=9, at=T0),
            snap(1, "N1", "S1", 0),
            Outcome.STALE,
            None,
            "not newer",
            id="stale-before-reserved",
        ),
        pytest.param(None, snap(1, "N9", "S1", 1), Outcome.REFUSED, None, "unknown node N9", id="unknown-node"),
        pytest.param(
            level(5), snap(1, "N1", "S1", 5, safety=2), Outcome.APPLIED, 5, "safety_stock 0 -> 2", id="safety-stock"
        ),
    ],
)
def test_one_snapshot_row(stored, line, outcome, after, message):
    levels = {} if stored is None else {("N1", "S1"): stored}

    decision = decide_snapshot(batch_id="b", rows=[line], as_of=T0, source="erp", catalogue=CATALOGUE, levels=levels)

    [report] = decision.report.rows
    assert (report.outcome, report.after) == (outcome, after)
    if message:
        assert message in (report.error or report.note or "")
    assert decision.report.accepted == (outcome is not Outcome.REFUSED)
    assert len(decision.changes) == (outcome is Outcome.APPLIED)


def test_a_count_that_confirms_the_stored_values_moves_the_clock_but_is_not_journaled():
    decision = decide_snapshot(
        batch_id="b",
        rows=[snap(1, "N1", "S1", 5, safety=0)],
        as_of=T0,
        source="erp",
        catalogue=CATALOGUE,
        levels={("N1", "S1"): level(5)},
    )
    [change] = decision.changes
    assert (change.snapshot_at, change.journal) == (T0, False)


def test_one_refused_row_holds_back_every_other_row():
    decision = decide_snapshot(
        batch_id="b",
        rows=[snap(1, "N1", "S1", 7), snap(2, "N1", "S2", 1), snap(3, "N2", "S1", 2)],
        invalid=[RowReport(row=4, node_id=None, sku=None, outcome=Outcome.INVALID, error="expected 3 values, got 1")],
        as_of=T0,
        source="erp",
        catalogue=CATALOGUE,
        levels={("N1", "S1"): level(5), ("N1", "S2"): level(3, at=T0), ("N2", "S1"): level(9)},
    )
    assert not decision.report.accepted
    assert decision.changes == []
    assert [(r.row, r.outcome, r.before, r.after) for r in decision.report.rows] == [
        (1, Outcome.NOT_APPLIED, 5, None),
        (2, Outcome.STALE, 3, None),
        (3, Outcome.NOT_APPLIED, 9, None),
        (4, Outcome.INVALID, None, None),
    ]
    assert (decision.report.applied, decision.report.stale, decision.report.refused) == (0, 1, 1)
    assert decision.report.rows[0].note == "would have set on_hand 5 -> 7; held back: the batch was refused"


def test_a_snapshot_decided_without_the_parser_still_refuses_a_repeated_pair():
    decision = decide_snapshot(
        batch_id="b",
        rows=[snap(1, "N1", "S1", 7), snap(2, "N1", "S1", 8)],
        as_of=T0,
        source="erp",
        catalogue=CATALOGUE,
        levels={("N1", "S1"): level(5)},
    )
    assert [r.outcome for r in decision.report.rows] == [Outcome.NOT_APPLIED, Outcome.INVALID]


# --- deciding adjustments ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored", "deltas", "outcomes"),
    [
        pytest.param(level(5), [3, -8], [(Outcome.APPLIED, 5, 8), (Outcome.APPLIED, 8, 0)], id="chain-to-zero"),
        pytest.param(level(5), [-6], [(Outcome.REFUSED, 5, None)], id="below-zero"),
        pytest.param(level(5, reserved=2), [-3], [(Outcome.APPLIED, 5, 2)], id="down-to-reserved"),
        pytest.param(level(5, reserved=2), [-4], [(Outcome.REFUSED, 5, None)], id="below-reserved"),
        pytest.param(
            level(5), [-3, -3], [(Outcome.NOT_APPLIED, 5, None), (Outcome.REFUSED, 2, None)], id="second-goes-below"
        ),
        pytest.param(None, [4], [(Outcome.APPLIED, 0, 4)], id="new-row"),
        pytest.param(level(MAX_QUANTITY - 1), [2], [(Outcome.REFUSED, MAX_QUANTITY - 1, None)], id="overflow"),
    ],
)
def test_adjustments_of_one_pair(stored, deltas, outcomes):
    levels = {} if stored is None else {("N1", "S1"): stored}
    rows = [adj(i, "N1", "S1", d) for i, d in enumerate(deltas, start=1)]

    decision = decide_adjustments(batch_id="b", rows=rows, source="wms", catalogue=CATALOGUE, levels=levels)

    assert [(r.outcome, r.before, r.after) for r in decision.report.rows] == outcomes


@given(
    st.dictionaries(
        st.sampled_from([("N1", "S1"), ("N1", "S2"), ("N2", "S1")]),
        st.tuples(st.integers(0, 50), st.integers(0, 50)).map(lambda t: level(max(t), reserved=min(t))),
    ),
    st.lists(
        st.tuples(st.sampled_from([("N1", "S1"), ("N1", "S2"), ("N2", "S1")]), st.integers(-30, 30).filter(bool)),
        min_size=1,
        max_size=12,
    ),
)
def test_an_accepted_batch_never_breaks_the_stock_invariants(levels, moves):
    """Accepted: every pair ends at its stored units plus its deltas, never below zero or its reservations.
    Refused: nothing changes."""
    rows = [adj(i, node, sku, delta, "adjustment") for i, ((node, sku), delta) in enumerate(moves, start=1)]

    decision = decide_adjustments(batch_id="b", rows=rows, source="wms", catalogue=CATALOGUE, levels=levels)

    final: dict[tuple[str, str], int] = {}
    for change in decision.changes:
        final[(change.node_id, change.sku)] = change.on_hand_after
    if not decision.report.accepted:
        assert final == {}
        return
    for key in {key for key, _ in moves}:
        stored = levels.get(key, level(0))
        assert final[key] == stored.on_hand + sum(d for k, d in moves if k == key)
        assert final[key] >= stored.reserved >= 0
    assert all(c.journal for c in decision.changes)


# --- replays -----------------------------------------------------------------------------------------------------


def journaled(row: int, delta: int, reason: str = "r (from wms)", kind: str = "cycle_count") -> JournaledRow:
    return JournaledRow(
        row=row, node_id="N1", sku="S1", kind=kind, on_hand_before=10, on_hand_after=10 + delta, reason=reason
    )


def test_a_batch_never_journaled_is_not_a_replay():
    assert replay_of(batch_id="b", rows=[adj(1, "N1", "S1", 2)], source="wms", stored=[]) is None


def test_a_batch_journaled_with_the_same_rows_is_answered_from_the_journal():
    report = replay_of(batch_id="b", rows=[adj(1, "N1", "S1", 2)], source="wms", stored=[journaled(1, 2)])
    assert report is not None
    assert report.replayed
    assert report.accepted
    assert [(r.row, r.outcome, r.before, r.after) for r in report.rows] == [(1, Outcome.APPLIED, 10, 12)]


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param([journaled(1, 3)], id="other-delta"),
        pytest.param([journaled(1, 2, reason="r (from erp)")], id="other-source"),
        pytest.param([journaled(1, 2, kind="receipt")], id="other-kind"),
        pytest.param([journaled(2, 2)], id="other-row"),
        pytest.param([journaled(1, 2), journaled(2, 1)], id="more-rows"),
    ],
)
def test_a_batch_id_journaled_with_other_rows_is_a_conflict(stored):
    with pytest.raises(BatchConflict, match="batch b was already applied with different rows"):
        replay_of(batch_id="b", rows=[adj(1, "N1", "S1", 2)], source="wms", stored=stored)
