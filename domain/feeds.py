"""Inventory feeds: what a snapshot or adjustment row must look like, and what applying a batch does to stock.

Pure: CSV text in, rows and per-row errors out; stock levels in, a report and the changes to write out.
``infra.db.feeds`` reads and locks the levels and writes the changes decided here.

The rules, and why:

- A **snapshot** is an absolute count from an ERP/WMS, taken at ``as_of``. A row applies only when ``as_of`` is
  strictly newer than the row's last applied snapshot; otherwise it is ``stale`` (reported, not an error). An
  equal ``as_of`` is the same count again (a retry) or a rival count of the same instant, and applying it would
  wipe out every adjustment and shipment made since the first one. A snapshot creates a missing stock row when
  the node and SKU exist.
- A count below the units ``reserved`` is **refused**: the count is the truth, but the database keeps
  ``reserved <= on_hand``, and accepting it would mean choosing which orders lose their stock. Release (or
  re-source) reservations first, then send the count again.
- An **adjustment** is an event: a delta with a kind and a reason. It is refused when it would take ``on_hand``
  below zero or below ``reserved``. Receipts add and damage removes, so a sign the wrong way round (a common
  mapping error in feeds) is refused rather than guessed.
- A batch is **all or nothing**: one refused or malformed row refuses the batch, every row is reported, and
  nothing is written. A feed half applied is worse than one not applied, because a retry cannot tell which half.
- A snapshot holds one count per node and SKU, so a repeated pair in one snapshot is an error; an adjustment
  batch may touch a pair several times (two receipts), applied in row order.
- Every change is journaled with ``source_ref`` = ``<batch id>:row <n>``. A count equal to what is stored moves
  ``snapshot_at`` on but changes no stock, so it is not journaled (a nightly full snapshot would otherwise
  journal every row every night). Every adjustment is journaled, a cycle count of 0 too: the journal entries
  are how a repeated adjustment batch is recognised and answered without applying it twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain.orders import NodeId, Sku, ensure_aware

MAX_ROWS = 50_000
# Far below PostgreSQL's integer limit: an on_hand that would pass it is refused, never overflowed into a 500.
MAX_QUANTITY = 1_000_000_000
MAX_REASON_LENGTH = 500
MAX_SOURCE_LENGTH = 100
# A snapshot dated in the future would make every real snapshot stale until then; allow only clock skew.
MAX_FUTURE_SKEW = timedelta(minutes=5)

Quantity = Annotated[int, Strict(), Field(ge=0, le=MAX_QUANTITY)]
Delta = Annotated[int, Strict(), Field(ge=-MAX_QUANTITY, le=MAX_QUANTITY)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_REASON_LENGTH)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_SOURCE_LENGTH)]


class FeedKind(StrEnum):
    SNAPSHOT = "snapshot"
    ADJUSTMENT = "adjustment"


class AdjustmentKind(StrEnum):
    """The adjustment kinds a feed may send; each is also the journal ``kind`` of the change."""

    RECEIPT = "receipt"
    DAMAGE = "damage"
    CYCLE_COUNT = "cycle_count"
    ADJUSTMENT = "adjustment"


SNAPSHOT_JOURNAL_KIND = "snapshot"


class Outcome(StrEnum):
    APPLIED = "applied"
    STALE = "stale"  # a snapshot row not newer than the one stored: ignored, not an error
    REFUSED = "refused"  # well formed, but the stock or catalogue says no
    INVALID = "invalid"  # malformed: bad value, short row, duplicate
    NOT_APPLIED = "not_applied"  # fine by itself, held back because another row refused the batch


class SnapshotLine(BaseModel):
    """One count: the units on hand of ``sku`` at ``node_id``, and optionally its safety stock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: NodeId
    sku: Sku
    on_hand: Quantity
    safety_stock: Quantity | None = None  # None keeps the stored safety stock


class AdjustmentLine(BaseModel):
    """One stock movement. ``kind`` comes before ``delta`` so the sign rule can see it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: NodeId
    sku: Sku
    kind: AdjustmentKind
    delta: Delta
    reason: Reason

    @field_validator("delta")
    @classmethod
    def _sign_matches_kind(cls, delta: int, info: ValidationInfo) -> int:
        kind = info.data.get("kind")
        if kind is AdjustmentKind.RECEIPT and delta <= 0:
            raise PydanticCustomError(
                "delta_sign", "a receipt adds units: delta must be positive, got {delta}", {"delta": delta}
            )
        if kind is AdjustmentKind.DAMAGE and delta >= 0:
            raise PydanticCustomError(
                "delta_sign", "damage removes units: delta must be negative, got {delta}", {"delta": delta}
            )
        if kind is AdjustmentKind.ADJUSTMENT and delta == 0:
            raise PydanticCustomError("delta_zero", "an adjustment of 0 changes nothing", {})
        return delta


Line = TypeVar("Line", SnapshotLine, AdjustmentLine)


@dataclass(frozen=True)
class FeedRow(Generic[Line]):
    """A line and where it came from: its position in a JSON batch, or its line number in a CSV file."""

    row: int
    line: Line


class RowReport(BaseModel):
    """What happened to one row. ``before``/``after`` are on_hand; ``after`` is set only when written."""

    model_config = ConfigDict(frozen=True)

    row: int
    node_id: str | None
    sku: str | None
    outcome: Outcome
    before: int | None = None
    after: int | None = None
    error: str | None = None  # why a row was refused or invalid
    note: str | None = None  # anything else worth saying: why stale, what was held back


class FeedReport(BaseModel):
    """The answer to a feed: counts and every row's outcome. ``refused`` counts refused and invalid rows."""

    model_config = ConfigDict(frozen=True)

    batch_id: str
    kind: FeedKind
    accepted: bool
    replayed: bool = False
    applied: int
    stale: int
    refused: int
    rows: list[RowReport]

    def summary(self) -> str:
        if self.accepted:
            return f"{self.applied} row(s) applied, {self.stale} stale"
        return f"batch refused: {self.refused} of {len(self.rows)} row(s) refused or invalid; nothing was written"


@dataclass(frozen=True)
class StockLevel:
    """A stock row as read (and locked) before the batch is decided."""

    on_hand: int
    reserved: int
    safety_stock: int
    snapshot_at: datetime | None


@dataclass(frozen=True)
class StockChange:
    """One write a decided batch asks for, with its journal entry when ``journal`` is set."""

    row: int
    node_id: str
    sku: str
    on_hand_before: int
    on_hand_after: int
    safety_stock: int | None  # the new safety stock; None keeps it
    snapshot_at: datetime | None  # the new snapshot time; None keeps it
    journal: bool
    journal_kind: str
    reason: str


@dataclass(frozen=True)
class BatchDecision:
    report: FeedReport
    changes: list[StockChange]  # empty unless the report is accepted


@dataclass(frozen=True)
class Catalogue:
    """Which of the batch's nodes and SKUs exist."""

    node_ids: frozenset[str]
    skus: frozenset[str]

    def unknown(self, node_id: str, sku: str) -> str | None:
        problems = []
        if node_id not in self.node_ids:
            problems.append(f"unknown node {node_id}")
        if sku not in self.skus:
            problems.append(f"unknown SKU {sku}")
        return "; ".join(problems) or None


class FeedError(Exception):
    """A feed that cannot be read at all (as opposed to one with bad rows, which gets a per-row report)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FeedFormatError(FeedError):
    """Not a CSV file of the expected shape: not UTF-8, no header, missing or unknown columns."""


class FeedTooLarge(FeedError):
    """More rows than one batch may hold."""


class BatchConflict(FeedError):
    """A batch id (an ``Idempotency-Key``) already applied with different content."""


# --- batch identity ---------------------------------------------------------------------------------------------


def batch_fingerprint(content: Mapping[str, Any]) -> str:
    """A batch id from a feed's content: the same feed sent again gets the same id, so it is applied once.

    ``content`` must be JSON-serialisable; keys are sorted so the id does not depend on their order.
    """
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def source_ref(batch_id: str, row: int) -> str:
    """What the journal records as the cause of a change; also how a repeated batch is recognised."""
    return f"{batch_id}:row {row}"


def row_of(batch_id: str, ref: str) -> int | None:
    """The row number in a ``source_ref`` written by ``source_ref(batch_id, ...)``, else None."""
    prefix = f"{batch_id}:row "
    if not ref.startswith(prefix) or not ref[len(prefix) :].isdigit():
        return None
    return int(ref[len(prefix) :])


def as_of_error(as_of: datetime, now: datetime) -> str | None:
    """Why a snapshot's ``as_of`` is unacceptable, if it is: only clock skew into the future is tolerated."""
    if as_of > now + MAX_FUTURE_SKEW:
        minutes = int(MAX_FUTURE_SKEW.total_seconds() // 60)
        return (
            f"as_of {as_of.isoformat()} is more than {minutes} minutes ahead of the server clock "
            f"({now.astimezone(UTC).isoformat(timespec='seconds')}): a snapshot from the future would make every "
            "real snapshot until then stale"
        )
    return None


def snapshot_reason(source: str, as_of: datetime) -> str:
    return f"snapshot from {source} as of {as_of.astimezone(UTC).isoformat()}"


def adjustment_reason(line: AdjustmentLine, source: str) -> str:
    """The journal's reason for an adjustment: the sender's reason and where it came from."""
    return f"{line.reason} (from {source})"


# --- CSV --------------------------------------------------------------------------------------------------------

SNAPSHOT_COLUMNS = ("node_id", "sku", "on_hand")
SNAPSHOT_OPTIONAL_COLUMNS = ("safety_stock",)
ADJUSTMENT_COLUMNS = ("node_id", "sku", "delta", "kind", "reason")
_INTEGER_COLUMNS = frozenset({"on_hand", "safety_stock", "delta"})
_WHOLE_NUMBER = re.compile(r"^[+-]?[0-9]+$")


@dataclass(frozen=True)
class ParsedFeed(Generic[Line]):
    rows: list[FeedRow[Line]]
    invalid: list[RowReport]


def decode_csv(data: bytes) -> str:
    """UTF-8 text without a byte-order mark (spreadsheets add one)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise FeedFormatError(f"the file is not UTF-8 text: byte 0x{data[err.start]:02x} on line {line}") from None


def parse_snapshot_csv(text: str, *, max_rows: int = MAX_ROWS) -> ParsedFeed[SnapshotLine]:
    """Rows of ``node_id,sku,on_hand[,safety_stock]`` (any column order); ``row`` is the line number in the file."""
    parsed = _parse_csv(text, SnapshotLine, SNAPSHOT_COLUMNS, SNAPSHOT_OPTIONAL_COLUMNS, max_rows)
    rows, duplicates = split_duplicate_counts(parsed.rows)
    return ParsedFeed(rows=rows, invalid=sorted([*parsed.invalid, *duplicates], key=lambda r: r.row))


def parse_adjustment_csv(text: str, *, max_rows: int = MAX_ROWS) -> ParsedFeed[AdjustmentLine]:
    """Rows of ``node_id,sku,delta,kind,reason`` (any column order); ``row`` is the line number in the file."""
    return _parse_csv(text, AdjustmentLine, ADJUSTMENT_COLUMNS, (), max_rows)


def split_duplicate_counts(
    rows: Sequence[FeedRow[SnapshotLine]],
) -> tuple[list[FeedRow[SnapshotLine]], list[RowReport]]:
    """A snapshot's rows with every repeat of a (node, SKU) taken out and reported: two counts contradict."""
    first: dict[tuple[str, str], int] = {}
    kept: list[FeedRow[SnapshotLine]] = []
    repeats: list[RowReport] = []
    for item in rows:
        key = (item.line.node_id, item.line.sku)
        if key in first:
            repeats.append(
                RowReport(
                    row=item.row,
                    node_id=key[0],
                    sku=key[1],
                    outcome=Outcome.INVALID,
                    error=f"duplicate of row {first[key]}: a snapshot holds one count per node and SKU",
                )
            )
        else:
            first[key] = item.row
            kept.append(item)
    return kept, repeats


def _parse_csv(
    text: str, model: type[Line], required: Sequence[str], optional: Sequence[str], max_rows: int
) -> ParsedFeed[Line]:
    # strict: a stray or unclosed quote is an error, not a field that silently swallows the rest of the file.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    rows: list[FeedRow[Line]] = []
    invalid: list[RowReport] = []
    try:
        header = _read_header(reader, required, optional)
        count = 0
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            count += 1
            if count > max_rows:
                raise FeedTooLarge(f"more than {max_rows} rows; split the file into batches of at most {max_rows}")
            item = _parse_row(reader.line_num, header, [c.strip() for c in cells], model)
            if isinstance(item, RowReport):
                invalid.append(item)
            else:
                rows.append(item)
    except csv.Error as err:
        raise FeedFormatError(f"line {reader.line_num}: {err}; check the quotes on this line and above") from None
    return ParsedFeed(rows=rows, invalid=invalid)


def _read_header(reader: Iterable[list[str]], required: Sequence[str], optional: Sequence[str]) -> list[str]:
    expected = ",".join([*required, *(f"[{c}]" for c in optional)])
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        header = [cell.strip().lower() for cell in cells]
        repeated = sorted({c for c in header if header.count(c) > 1})
        missing = [c for c in required if c not in header]
        extra = [c for c in header if c not in required and c not in optional]
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unknown column(s) {', '.join(repr(c) for c in extra)}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        if problems:
            raise FeedFormatError(f"header: {'; '.join(problems)}; expected {expected}")
        return header
    raise FeedFormatError(f"the file is empty: expected a header line {expected}")


def _parse_row(line_number: int, header: list[str], cells: list[str], model: type[Line]) -> FeedRow[Line] | RowReport:
    named = dict(zip(header, cells, strict=False))
    # Echoed back in the report; a garbage cell is cut short rather than repeated whole.
    node_id, sku = (named.get(column, "")[:80] or None for column in ("node_id", "sku"))

    def invalid(error: str) -> RowReport:
        return RowReport(row=line_number, node_id=node_id, sku=sku, outcome=Outcome.INVALID, error=error)

    if len(cells) != len(header):
        return invalid(f"expected {len(header)} values, got {len(cells)}")
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}  # column -> what is wrong with it; every problem of the row, not just the first
    for column, raw in named.items():
        if raw == "" and column in SNAPSHOT_OPTIONAL_COLUMNS:
            continue
        if column not in _INTEGER_COLUMNS:
            values[column] = raw
        elif _WHOLE_NUMBER.match(raw):
            values[column] = int(raw)
        else:
            problems[column] = f"{raw!r} is not a whole number" if raw else "required"
    try:
        line = model.model_validate(values)
    except ValidationError as err:
        for e in err.errors():
            column = str(e["loc"][0]) if e["loc"] else "row"
            problems.setdefault(column, e["msg"])  # a column already reported is "missing" only because we left it out
    else:
        if not problems:
            return FeedRow(row=line_number, line=line)
    ordered = sorted(problems.items(), key=lambda item: header.index(item[0]) if item[0] in header else len(header))
    return invalid("; ".join(f"{column}: {message}" for column, message in ordered))


# --- deciding a batch -------------------------------------------------------------------------------------------

Pair = tuple[str, str]


def _report(item: FeedRow[Any], outcome: Outcome, **fields: Any) -> RowReport:
    return RowReport(row=item.row, node_id=item.line.node_id, sku=item.line.sku, outcome=outcome, **fields)


def decide_snapshot(
    *,
    batch_id: str,
    rows: Sequence[FeedRow[SnapshotLine]],
    invalid: Sequence[RowReport] = (),
    as_of: AwareDatetime,
    source: str,
    catalogue: Catalogue,
    levels: Mapping[Pair, StockLevel],
) -> BatchDecision:
    """Decide every row of a snapshot against the stored (locked) ``levels``; a pair not in ``levels`` is new."""
    ensure_aware(as_of)
    rows, repeats = split_duplicate_counts(rows)
    reports: list[RowReport] = [*invalid, *repeats]
    changes: list[StockChange] = []
    reason = snapshot_reason(source, as_of)
    for item in rows:
        line = item.line
        level = levels.get((line.node_id, line.sku))
        if unknown := catalogue.unknown(line.node_id, line.sku):
            reports.append(_report(item, Outcome.REFUSED, error=unknown))
            continue
        if level is not None and level.snapshot_at is not None and as_of <= level.snapshot_at:
            stale = f"as_of is not newer than the stored snapshot of {level.snapshot_at.isoformat()}"
            reports.append(_report(item, Outcome.STALE, before=level.on_hand, note=stale))
            continue
        before = level.on_hand if level else 0
        reserved = level.reserved if level else 0
        if line.on_hand < reserved:
            error = (
                f"on_hand {line.on_hand} is below the {reserved} unit(s) reserved at {line.node_id} for {line.sku}: "
                "release or re-source those reservations, then send the count again"
            )
            reports.append(_report(item, Outcome.REFUSED, before=before, error=error))
            continue
        old_safety = level.safety_stock if level else 0
        notes = []
        if level is None:
            notes.append("stock row created")
        if line.safety_stock is not None and line.safety_stock != old_safety:
            notes.append(f"safety_stock {old_safety} -> {line.safety_stock}")
        note = "; ".join(notes) or None
        reports.append(_report(item, Outcome.APPLIED, before=before, after=line.on_hand, note=note))
        changes.append(
            StockChange(
                row=item.row,
                node_id=line.node_id,
                sku=line.sku,
                on_hand_before=before,
                on_hand_after=line.on_hand,
                safety_stock=line.safety_stock,
                snapshot_at=as_of,
                # A count that confirms what is stored moves snapshot_at on, but changes no stock to journal.
                journal=line.on_hand != before or note is not None,
                journal_kind=SNAPSHOT_JOURNAL_KIND,
                reason=f"{reason}; {note}" if note else reason,
            )
        )
    return _settle(batch_id, FeedKind.SNAPSHOT, reports, changes)


def decide_adjustments(
    *,
    batch_id: str,
    rows: Sequence[FeedRow[AdjustmentLine]],
    invalid: Sequence[RowReport] = (),
    source: str,
    catalogue: Catalogue,
    levels: Mapping[Pair, StockLevel],
) -> BatchDecision:
    """Decide every row of an adjustment batch in row order: a pair's later rows start where the earlier left it."""
    reports: list[RowReport] = list(invalid)
    changes: list[StockChange] = []
    on_hand = {key: level.on_hand for key, level in levels.items()}
    for item in sorted(rows, key=lambda r: r.row):
        line = item.line
        key = (line.node_id, line.sku)
        if unknown := catalogue.unknown(*key):
            reports.append(_report(item, Outcome.REFUSED, error=unknown))
            continue
        created = key not in on_hand
        before = on_hand.get(key, 0)
        after = before + line.delta
        reserved = levels[key].reserved if key in levels else 0
        error = None
        if after < 0:
            error = f"delta {line.delta} would take on_hand from {before} to {after}, below zero"
        elif after < reserved:
            error = (
                f"delta {line.delta} would take on_hand from {before} to {after}, below the {reserved} unit(s) "
                "reserved: release or re-source those reservations first"
            )
        elif after > MAX_QUANTITY:
            error = f"delta {line.delta} would take on_hand to {after}, above the limit of {MAX_QUANTITY}"
        if error:
            reports.append(_report(item, Outcome.REFUSED, before=before, error=error))
            continue
        on_hand[key] = after
        note = "stock row created" if created else None
        reports.append(_report(item, Outcome.APPLIED, before=before, after=after, note=note))
        changes.append(
            StockChange(
                row=item.row,
                node_id=line.node_id,
                sku=line.sku,
                on_hand_before=before,
                on_hand_after=after,
                safety_stock=None,
                snapshot_at=None,
                # Every adjustment is journaled, a cycle count of 0 too: the journal is how a repeat is recognised.
                journal=True,
                journal_kind=str(line.kind),
                reason=adjustment_reason(line, source),
            )
        )
    return _settle(batch_id, FeedKind.ADJUSTMENT, reports, changes)


def _settle(batch_id: str, kind: FeedKind, reports: list[RowReport], changes: list[StockChange]) -> BatchDecision:
    """All or nothing: if any row is refused or invalid, every row that would have applied is held back."""
    ordered = sorted(reports, key=lambda r: r.row)
    refused = sum(r.outcome in (Outcome.REFUSED, Outcome.INVALID) for r in ordered)
    if refused:
        ordered = [_held_back(r) if r.outcome is Outcome.APPLIED else r for r in ordered]
        changes = []
    return BatchDecision(
        report=FeedReport(
            batch_id=batch_id,
            kind=kind,
            accepted=not refused,
            applied=sum(r.outcome is Outcome.APPLIED for r in ordered),
            stale=sum(r.outcome is Outcome.STALE for r in ordered),
            refused=refused,
            rows=ordered,
        ),
        changes=changes,
    )


def _held_back(report: RowReport) -> RowReport:
    return report.model_copy(
        update={
            "outcome": Outcome.NOT_APPLIED,
            "after": None,
            "note": f"would have set on_hand {report.before} -> {report.after}; held back: the batch was refused",
        }
    )


@dataclass(frozen=True)
class JournaledRow:
    """A journal entry written by an earlier application of a batch, found by its ``source_ref``."""

    row: int
    node_id: str
    sku: str
    kind: str
    on_hand_before: int
    on_hand_after: int
    reason: str


def replay_of(
    *,
    batch_id: str,
    rows: Sequence[FeedRow[AdjustmentLine]],
    invalid: Sequence[RowReport] = (),
    source: str,
    stored: Sequence[JournaledRow],
) -> FeedReport | None:
    """The earlier outcome of this adjustment batch, rebuilt from its journal entries; None if it never applied.

    Raises ``BatchConflict`` when the entries under this batch id record different rows: the id (an
    ``Idempotency-Key``) was used before for another batch, and applying this one would blur the audit trail.
    """
    if not stored:
        return None
    expected = {
        item.row: (
            item.line.node_id,
            item.line.sku,
            str(item.line.kind),
            item.line.delta,
            adjustment_reason(item.line, source),
        )
        for item in rows
    }
    found = {e.row: (e.node_id, e.sku, e.kind, e.on_hand_after - e.on_hand_before, e.reason) for e in stored}
    if invalid or expected != found:
        raise BatchConflict(f"batch {batch_id} was already applied with different rows")
    reports = [
        RowReport(
            row=e.row,
            node_id=e.node_id,
            sku=e.sku,
            outcome=Outcome.APPLIED,
            before=e.on_hand_before,
            after=e.on_hand_after,
        )
        for e in sorted(stored, key=lambda e: e.row)
    ]
    return FeedReport(
        batch_id=batch_id,
        kind=FeedKind.ADJUSTMENT,
        accepted=True,
        replayed=True,
        applied=len(reports),
        stale=0,
        refused=0,
        rows=reports,
    )
