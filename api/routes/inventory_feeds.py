"""Inventory feeds: absolute snapshots and adjustments from an ERP/WMS, as JSON or as one CSV file.

Every feed is one batch, applied all or nothing: 200 with a per-row report when it applied (stale snapshot rows
included), 422 with the same report and nothing written when any row was refused or malformed. The rules are
in ``domain.feeds``; the writes in ``infra.db.feeds``.

A batch id names each batch in the journal (``source_ref`` = ``<batch id>:row <n>``). It is the
``Idempotency-Key`` header when sent, otherwise a hash of the content, so a retried POST of the same
adjustments is answered with the first outcome (``replayed: true``) instead of moving stock twice.

Once a batch is committed, the running backordered orders are told which SKUs went up (``api.backorders``), in the
background: the answer does not wait for it, and a failure there never fails the feed.

The CSV import takes the file as the raw request body (``Content-Type: text/csv``), not multipart: one
``curl --data-binary @file.csv`` sends it, the batch id can hash the exact bytes, and no form parser is needed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.auth import ActorDep
from api.backorders import BackorderNotifier, BackorderNotifierDep, RaisedStock
from api.deps import UowDep
from api.errors import ApiError
from domain.feeds import (
    MAX_ROWS,
    AdjustmentLine,
    BatchConflict,
    FeedFormatError,
    FeedKind,
    FeedReport,
    FeedRow,
    FeedTooLarge,
    Line,
    ParsedFeed,
    SnapshotLine,
    Source,
    as_of_error,
    batch_fingerprint,
    decode_csv,
    parse_adjustment_csv,
    parse_snapshot_csv,
)
from infra.db.feeds import FeedRepository
from infra.db.uow import UnitOfWork

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 10 * 1024 * 1024
CSV_COLUMNS = "snapshot: node_id,sku,on_hand[,safety_stock]; adjustment: node_id,sku,delta,kind,reason (any order)"
REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")
]


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class CappedBodyRoute(APIRoute):
    """Reads at most ``MAX_BODY_BYTES`` before FastAPI parses the body, so a huge upload is refused, not buffered."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def capped(request: Request) -> Response:
            body = await read_capped(request, MAX_BODY_BYTES)

            async def replay() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            return await handler(Request(request.scope, replay))

        return capped


router = APIRouter(prefix="/inventory", tags=["inventory feeds"], route_class=CappedBodyRoute)


class SnapshotFeed(BaseModel):
    """Absolute counts as of one instant; rows older than what is stored are ignored as stale."""

    model_config = ConfigDict(extra="forbid")

    as_of: AwareDatetime
    source: Source
    rows: list[SnapshotLine] = Field(min_length=1)


class AdjustmentFeed(BaseModel):
    """Stock movements (receipts, damage, cycle counts, adjustments) applied on top of what is stored."""

    model_config = ConfigDict(extra="forbid")

    source: Source
    rows: list[AdjustmentLine] = Field(min_length=1)


_REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"description": "the Idempotency-Key was already used for a batch with other rows"},
    413: {"description": f"body over {MAX_BODY_BYTES} bytes or more than {MAX_ROWS} rows"},
    422: {"description": "invalid request, or a batch refused: the per-row report with a message; nothing written"},
}


def _invalid(location: str, field: str, message: str) -> RequestValidationError:
    """A 422 in the shape every validation error has, for checks pydantic cannot make alone."""
    return RequestValidationError([{"loc": (location, field), "msg": message, "type": "value_error"}])


def _check_rows(count: int) -> None:
    if count > MAX_ROWS:
        raise ApiError(413, f"{count} rows: at most {MAX_ROWS} rows per batch; split the feed")


def _check_as_of(as_of: datetime, location: str) -> None:
    if error := as_of_error(as_of, datetime.now(UTC)):
        raise _invalid(location, "as_of", error)


async def _apply(
    uow: UnitOfWork,
    response: Response,
    apply: Callable[[FeedRepository], Awaitable[FeedReport]],
    *,
    actor: str,
    source: str,
    notifier: BackorderNotifier,
    rows: Sequence[FeedRow[Any]] = (),
) -> FeedReport:
    """Apply one batch, commit it if accepted, then (committed, not replayed) wake the orders waiting for its SKUs.

    ``rows`` are the batch's lines by row number, so snapshot rows that set safety stock count as raising it too.
    """
    async with uow:
        try:
            report = await apply(uow.feeds)
        except BatchConflict as err:
            raise ApiError(409, f"{err.message}: send a different batch under a new Idempotency-Key") from None
        if report.accepted:
            await uow.commit()
    log.info(
        "inventory feed " + ("applied" if report.accepted else "refused"),
        batch_id=report.batch_id,
        kind=str(report.kind),
        applied=report.applied,
        stale=report.stale,
        refused=report.refused,
        replayed=report.replayed,
        actor=actor,
        source=source,
    )
    if not report.accepted:
        raise ApiError(422, report.summary(), **report.model_dump(mode="json"))
    if report.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    notifier.notify_soon(RaisedStock.of_feed(report, rows))
    return report


@router.post("/snapshots", response_model=FeedReport, responses=_REPORT_RESPONSES)
async def post_snapshot(
    body: SnapshotFeed,
    response: Response,
    uow: UowDep,
    notifier: BackorderNotifierDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FeedReport:
    """Set on_hand (and optionally safety_stock) to counted values; a row not newer than the stored count is stale."""
    _check_rows(len(body.rows))
    _check_as_of(body.as_of, "body")
    as_of = body.as_of.astimezone(UTC)
    batch_id = idempotency_key or batch_fingerprint(
        {"kind": "snapshot", **body.model_dump(mode="json"), "as_of": as_of.isoformat()}
    )
    rows = [FeedRow(i, line) for i, line in enumerate(body.rows, start=1)]
    return await _apply(
        uow,
        response,
        lambda feeds: feeds.apply_snapshot(rows, batch_id=batch_id, as_of=as_of, actor=actor, source=body.source),
        actor=actor,
        source=body.source,
        notifier=notifier,
        rows=rows,
    )


@router.post("/adjustments", response_model=FeedReport, responses=_REPORT_RESPONSES)
async def post_adjustments(
    body: AdjustmentFeed,
    response: Response,
    uow: UowDep,
    notifier: BackorderNotifierDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FeedReport:
    """Move stock by deltas, once per batch: the same batch again answers 200 with ``replayed: true``."""
    _check_rows(len(body.rows))
    batch_id = idempotency_key or batch_fingerprint({"kind": "adjustment", **body.model_dump(mode="json")})
    rows = [FeedRow(i, line) for i, line in enumerate(body.rows, start=1)]
    return await _apply(
        uow,
        response,
        lambda feeds: feeds.apply_adjustments(rows, batch_id=batch_id, actor=actor, source=body.source),
        actor=actor,
        source=body.source,
        notifier=notifier,
    )


def _read_csv(parse: Callable[[str], ParsedFeed[Line]], data: bytes) -> ParsedFeed[Line]:
    """The parsed file, or the 413/422 that says why it cannot be read at all."""
    try:
        feed = parse(decode_csv(data))
    except FeedTooLarge as err:
        raise ApiError(413, err.message) from None
    except FeedFormatError as err:
        raise ApiError(
            422, err.message, errors=[{"field": "file", "message": err.message, "type": "csv_format"}]
        ) from None
    if not feed.rows and not feed.invalid:
        message = "the file has a header but no rows"
        raise ApiError(422, message, errors=[{"field": "file", "message": message, "type": "csv_format"}])
    return feed


@router.post(
    "/import",
    response_model=FeedReport,
    responses={**_REPORT_RESPONSES, 415: {"description": "the body is not sent as text/csv"}},
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def import_csv(
    request: Request,
    response: Response,
    uow: UowDep,
    notifier: BackorderNotifierDep,
    kind: Annotated[FeedKind, Query(description=CSV_COLUMNS)],
    source: Annotated[Source, Query(description="the system the file comes from; kept in the journal")],
    actor: ActorDep,
    as_of: Annotated[AwareDatetime | None, Query(description="when the counts were taken; snapshots only")] = None,
    idempotency_key: IdempotencyKeyHeader = None,
) -> FeedReport:
    """A feed as a CSV file with a header line. In the report, ``row`` is the line number in the file."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "text/csv":
        raise ApiError(
            415, f"send the file as the request body with Content-Type: text/csv (got {media_type or 'none'})"
        )
    if kind is FeedKind.ADJUSTMENT and as_of is not None:
        raise _invalid("query", "as_of", "applies to snapshots only; adjustments have no as_of")
    if kind is FeedKind.SNAPSHOT and as_of is None:
        raise _invalid("query", "as_of", "required for a snapshot: the time the counts were taken")
    data = await request.body()
    batch_id = idempotency_key or batch_fingerprint(
        {
            "kind": str(kind),
            "source": source,
            "as_of": as_of.astimezone(UTC).isoformat() if as_of else None,
            "csv_sha256": hashlib.sha256(data).hexdigest(),
        }
    )

    lines: Sequence[FeedRow[Any]] = ()
    if kind is FeedKind.SNAPSHOT and as_of is not None:
        _check_as_of(as_of, "query")
        counted_at = as_of.astimezone(UTC)
        snapshot = _read_csv(parse_snapshot_csv, data)
        lines = snapshot.rows

        async def apply(feeds: FeedRepository) -> FeedReport:
            return await feeds.apply_snapshot(
                snapshot.rows, invalid=snapshot.invalid, batch_id=batch_id, as_of=counted_at, actor=actor, source=source
            )

    else:
        adjustments = _read_csv(parse_adjustment_csv, data)

        async def apply(feeds: FeedRepository) -> FeedReport:
            return await feeds.apply_adjustments(
                adjustments.rows, invalid=adjustments.invalid, batch_id=batch_id, actor=actor, source=source
            )

    return await _apply(uow, response, apply, actor=actor, source=source, notifier=notifier, rows=lines)
