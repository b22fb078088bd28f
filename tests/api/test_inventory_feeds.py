"""``/inventory/snapshots``, ``/inventory/adjustments`` and ``/inventory/import`` over ASGI on real PostgreSQL.

Every refusal names the field or the row, and leaves stock and journal exactly as they were.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from api.routes.inventory_feeds import MAX_BODY_BYTES
from domain.feeds import MAX_ROWS
from infra.db.tables import InventoryJournal, Stock
from infra.db.uow import UowFactory
from tests.support import AUSTIN, DALLAS, TEST_ADMIN, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

AS_OF = "2026-03-01T08:00:00Z"


@pytest.fixture
async def net(uow_factory: UowFactory) -> SeededNetwork:
    """Austin holds 10 of A (3 reserved), Dallas 4 of B."""
    net = await build_network(
        uow_factory, [NodeSpec("AUS", AUSTIN), NodeSpec("DAL", DALLAS)], {("AUS", "A"): 10, ("DAL", "B"): 4}
    )
    async with uow_factory() as u:
        await u.session.execute(
            update(Stock).where(Stock.node_id == net.node("AUS"), Stock.sku == net.sku("A")).values(reserved=3)
        )
        await u.commit()
    return net


async def state(
    uow: UowFactory, net: SeededNetwork
) -> tuple[dict[tuple[str, str], tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every stock row and journal entry of the network: what "nothing was written" is checked against."""
    nodes = list(net.node_ids.values())
    async with uow() as u:
        stock = await u.session.execute(
            select(
                Stock.node_id, Stock.sku, Stock.on_hand, Stock.reserved, Stock.safety_stock, Stock.snapshot_at
            ).where(Stock.node_id.in_(nodes))
        )
        journal = await u.session.execute(
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
            .where(InventoryJournal.node_id.in_(nodes))
            .order_by(InventoryJournal.journal_id)
        )
        return {(r[0], r[1]): tuple(r[2:]) for r in stock}, [tuple(r) for r in journal]


def on_hand(stock: dict[tuple[str, str], tuple[Any, ...]], node_id: str, sku: str) -> int:
    return int(stock[(node_id, sku)][0])


def snapshot_body(net: SeededNetwork, *rows: dict[str, Any], as_of: str = AS_OF) -> dict[str, Any]:
    return {"as_of": as_of, "source": "erp", "rows": list(rows)}


def adjustment_body(*rows: dict[str, Any]) -> dict[str, Any]:
    return {"source": "wms", "rows": list(rows)}


def summary(body: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [(r["row"], r["outcome"], r["before"], r["after"]) for r in body["rows"]]


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json()["errors"]]


# --- POST /inventory/snapshots -----------------------------------------------------------------------------------


async def test_a_snapshot_applies_and_is_journaled_under_the_actor(api_client, uow_factory, net):
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    body = snapshot_body(
        net,
        {"node_id": aus, "sku": a, "on_hand": 12, "safety_stock": 2},
        {"node_id": dal, "sku": b, "on_hand": 0},
    )

    response = await api_client.post("/inventory/snapshots", json=body, headers={"X-Actor": "erp-bridge"})

    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["kind"], report["accepted"], report["replayed"]) == ("snapshot", True, False)
    assert (report["applied"], report["stale"], report["refused"]) == (2, 0, 0)
    assert summary(report) == [(1, "applied", 10, 12), (2, "applied", 4, 0)]
    stock, journal = await state(uow_factory, net)
    as_of = datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert stock[(aus, a)] == (12, 3, 2, as_of)
    assert stock[(dal, b)] == (0, 0, 0, as_of)
    reason = "snapshot from erp as of 2026-03-01T08:00:00+00:00"
    batch = report["batch_id"]
    assert journal == [
        (aus, a, "snapshot", f"{TEST_ADMIN}:erp-bridge", f"{reason}; safety_stock 0 -> 2", f"{batch}:row 1", 10, 12),
        (dal, b, "snapshot", f"{TEST_ADMIN}:erp-bridge", reason, f"{batch}:row 2", 4, 0),
    ]


async def test_a_snapshot_sent_again_is_stale_and_changes_nothing(api_client, uow_factory, net):
    body = snapshot_body(net, {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 9})
    first = await api_client.post("/inventory/snapshots", json=body)
    after_first = await state(uow_factory, net)

    again = await api_client.post("/inventory/snapshots", json=body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert first.json()["batch_id"] == again.json()["batch_id"]
    assert summary(again.json()) == [(1, "stale", 9, None)]
    assert again.json()["rows"][0]["error"] is None
    assert await state(uow_factory, net) == after_first
    assert after_first[1][0][3] == TEST_ADMIN  # no X-Actor header: the key's name alone


async def test_a_snapshot_with_an_unknown_sku_is_refused_with_the_row_named_and_nothing_written(
    api_client, uow_factory, net
):
    before = await state(uow_factory, net)
    body = snapshot_body(
        net,
        {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 1},
        {"node_id": net.node("DAL"), "sku": "NO-SUCH-SKU", "on_hand": 1},
    )

    response = await api_client.post("/inventory/snapshots", json=body)

    assert response.status_code == 422
    report = response.json()
    assert report["message"] == "batch refused: 1 of 2 row(s) refused or invalid; nothing was written"
    assert summary(report) == [(1, "not_applied", 4, None), (2, "refused", None, None)]
    assert report["rows"][1]["error"] == "unknown SKU NO-SUCH-SKU"
    assert await state(uow_factory, net) == before


async def test_a_snapshot_below_the_reserved_units_is_refused_naming_them(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    body = snapshot_body(net, {"node_id": net.node("AUS"), "sku": net.sku("A"), "on_hand": 2})

    response = await api_client.post("/inventory/snapshots", json=body)

    assert response.status_code == 422
    assert "on_hand 2 is below the 3 unit(s) reserved" in response.json()["rows"][0]["error"]
    assert await state(uow_factory, net) == before


async def test_a_snapshot_counting_a_pair_twice_is_refused_at_the_repeat(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    row = {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 1}

    response = await api_client.post("/inventory/snapshots", json=snapshot_body(net, row, {**row, "on_hand": 2}))

    assert response.status_code == 422
    assert summary(response.json()) == [(1, "not_applied", 4, None), (2, "invalid", None, None)]
    assert response.json()["rows"][1]["error"] == "duplicate of row 1: a snapshot holds one count per node and SKU"
    assert await state(uow_factory, net) == before


def _shape_cases() -> list[Any]:
    row = {"node_id": "N-1", "sku": "S-1", "on_hand": 1}
    return [
        pytest.param({"rows": [{**row, "on_hand": -1}]}, "rows.0.on_hand", "greater_than_equal", id="negative"),
        pytest.param(
            {"rows": [{**row, "safety_stock": -2}]}, "rows.0.safety_stock", "greater_than_equal", id="neg-safety"
        ),
        pytest.param({"rows": [{**row, "on_hand": "5"}]}, "rows.0.on_hand", "int_type", id="quoted-number"),
        pytest.param({"rows": [{**row, "on_hand": 1.5}]}, "rows.0.on_hand", "int_type", id="fraction"),
        pytest.param({"rows": [{**row, "on_hand": 10**10}]}, "rows.0.on_hand", "less_than_equal", id="huge"),
        pytest.param({"rows": [{**row, "bin": "A1"}]}, "rows.0.bin", "extra_forbidden", id="extra-row-field"),
        pytest.param({"rows": [{"node_id": "N-1", "sku": "S-1"}]}, "rows.0.on_hand", "missing", id="missing-qty"),
        pytest.param({"rows": [{**row, "sku": "bad sku"}]}, "rows.0.sku", "string_pattern_mismatch", id="bad-sku"),
        pytest.param({"rows": []}, "rows", "too_short", id="no-rows"),
        pytest.param({"as_of": "2026-03-01T08:00:00"}, "as_of", "timezone_aware", id="naive-as-of"),
        pytest.param({"source": " "}, "source", "string_too_short", id="blank-source"),
        pytest.param({"colour": "red"}, "colour", "extra_forbidden", id="extra-field"),
    ]


@pytest.mark.parametrize(("change", "field", "error_type"), _shape_cases())
async def test_a_malformed_snapshot_names_the_field(api_client, change, field, error_type):
    body = {"as_of": AS_OF, "source": "erp", "rows": [{"node_id": "N-1", "sku": "S-1", "on_hand": 1}], **change}

    response = await api_client.post("/inventory/snapshots", json=body)

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(e["field"], e["type"]) for e in errors] == [(field, error_type)]
    assert field in response.json()["message"]


async def test_a_snapshot_from_the_future_is_refused_naming_as_of(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = snapshot_body(net, {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 1}, as_of=future)

    response = await api_client.post("/inventory/snapshots", json=body)

    assert response.status_code == 422
    assert fields(response) == ["as_of"]
    assert "ahead of the server clock" in response.json()["errors"][0]["message"]
    assert await state(uow_factory, net) == before


@pytest.mark.parametrize(
    ("headers", "field"),
    [
        pytest.param({"X-Actor": "x" * 101}, "X-Actor", id="actor-too-long"),
        pytest.param({"X-Actor": ""}, "X-Actor", id="actor-empty"),
        pytest.param({"Idempotency-Key": "has space"}, "Idempotency-Key", id="key-with-space"),
    ],
)
async def test_bad_headers_are_named(api_client, net, headers, field):
    body = snapshot_body(net, {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 1})

    response = await api_client.post("/inventory/snapshots", json=body, headers=headers)

    assert response.status_code == 422
    assert fields(response) == [field]


async def test_more_rows_than_a_batch_holds_is_413(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    row = {"node_id": net.node("DAL"), "sku": net.sku("B"), "on_hand": 1}

    response = await api_client.post("/inventory/snapshots", json=snapshot_body(net, *([row] * (MAX_ROWS + 1))))

    assert response.status_code == 413
    assert response.json() == {"message": f"{MAX_ROWS + 1} rows: at most {MAX_ROWS} rows per batch; split the feed"}
    assert await state(uow_factory, net) == before


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
async def test_a_body_over_the_size_limit_is_413_before_it_is_parsed(api_client, declared):
    payload = b'{"source": "erp", "rows": [' + b" " * MAX_BODY_BYTES + b"]}"

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(payload), 1 << 20):
            yield payload[start : start + (1 << 20)]

    content: Any = payload if declared else chunks()
    response = await api_client.post(
        "/inventory/adjustments", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert response.json() == {"message": f"body larger than {MAX_BODY_BYTES} bytes"}


# --- POST /inventory/adjustments ---------------------------------------------------------------------------------


async def test_adjustments_apply_once_and_a_retry_is_answered_from_the_journal(api_client, uow_factory, net):
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    body = adjustment_body(
        {"node_id": aus, "sku": a, "delta": 5, "kind": "receipt", "reason": "PO-1"},
        {"node_id": dal, "sku": b, "delta": -1, "kind": "damage", "reason": "dropped"},
    )

    first = await api_client.post("/inventory/adjustments", json=body, headers={"X-Actor": "alice"})
    after_first = await state(uow_factory, net)
    again = await api_client.post("/inventory/adjustments", json=body, headers={"X-Actor": "alice"})

    assert first.status_code == 200, first.text
    assert summary(first.json()) == [(1, "applied", 10, 15), (2, "applied", 4, 3)]
    assert "idempotent-replayed" not in first.headers
    assert again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["replayed"] is True
    assert summary(again.json()) == summary(first.json())
    assert await state(uow_factory, net) == after_first
    stock, journal = after_first
    assert (on_hand(stock, aus, a), on_hand(stock, dal, b)) == (15, 3)
    batch = first.json()["batch_id"]
    assert journal == [
        (aus, a, "receipt", f"{TEST_ADMIN}:alice", "PO-1 (from wms)", f"{batch}:row 1", 10, 15),
        (dal, b, "damage", f"{TEST_ADMIN}:alice", "dropped (from wms)", f"{batch}:row 2", 4, 3),
    ]


async def test_an_idempotency_key_names_the_batch_and_refuses_other_content(api_client, uow_factory, net):
    row = {"node_id": net.node("DAL"), "sku": net.sku("B"), "delta": 2, "kind": "receipt", "reason": "PO-5"}
    key = {"Idempotency-Key": f"wms-{net.prefix}-0001"}

    first = await api_client.post("/inventory/adjustments", json=adjustment_body(row), headers=key)
    after_first = await state(uow_factory, net)
    same = await api_client.post("/inventory/adjustments", json=adjustment_body(row), headers=key)
    other = await api_client.post("/inventory/adjustments", json=adjustment_body({**row, "delta": 3}), headers=key)

    assert first.json()["batch_id"] == f"wms-{net.prefix}-0001"
    assert after_first[1][0][5] == f"wms-{net.prefix}-0001:row 1"
    assert (same.status_code, same.json()["replayed"]) == (200, True)
    assert other.status_code == 409
    assert other.json()["message"] == (
        f"batch wms-{net.prefix}-0001 was already applied with different rows: "
        "send a different batch under a new Idempotency-Key"
    )
    assert await state(uow_factory, net) == after_first


async def test_an_adjustment_below_zero_refuses_the_batch_and_writes_nothing(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    body = adjustment_body(
        {"node_id": net.node("AUS"), "sku": net.sku("A"), "delta": 1, "kind": "receipt", "reason": "PO-1"},
        {"node_id": net.node("DAL"), "sku": net.sku("B"), "delta": -5, "kind": "adjustment", "reason": "write-off"},
    )

    response = await api_client.post("/inventory/adjustments", json=body)

    assert response.status_code == 422
    assert summary(response.json()) == [(1, "not_applied", 10, None), (2, "refused", 4, None)]
    assert response.json()["rows"][1]["error"] == "delta -5 would take on_hand from 4 to -1, below zero"
    assert await state(uow_factory, net) == before


@pytest.mark.parametrize(
    ("change", "field", "error_type"),
    [
        pytest.param({"kind": "damage", "delta": 2}, "rows.0.delta", "delta_sign", id="positive-damage"),
        pytest.param({"kind": "receipt", "delta": -2}, "rows.0.delta", "delta_sign", id="negative-receipt"),
        pytest.param({"kind": "adjustment", "delta": 0}, "rows.0.delta", "delta_zero", id="zero-adjustment"),
        pytest.param({"kind": "theft"}, "rows.0.kind", "enum", id="unknown-kind"),
        pytest.param({"kind": "shipment"}, "rows.0.kind", "enum", id="shipment-is-not-a-feed-kind"),
        pytest.param({"reason": ""}, "rows.0.reason", "string_too_short", id="no-reason"),
        pytest.param({"delta": "3"}, "rows.0.delta", "int_type", id="quoted-delta"),
    ],
)
async def test_a_malformed_adjustment_names_the_field(api_client, change, field, error_type):
    row = {"node_id": "N-1", "sku": "S-1", "delta": 1, "kind": "cycle_count", "reason": "count", **change}

    response = await api_client.post("/inventory/adjustments", json=adjustment_body(row))

    assert response.status_code == 422
    assert [(e["field"], e["type"]) for e in response.json()["errors"]] == [(field, error_type)]


# --- POST /inventory/import --------------------------------------------------------------------------------------


async def post_csv(client: httpx.AsyncClient, text: str | bytes, **params: str) -> httpx.Response:
    content = text.encode() if isinstance(text, str) else text
    return await client.post("/inventory/import", params=params, content=content, headers={"Content-Type": "text/csv"})


async def test_a_snapshot_file_applies_and_reports_rows_by_line_number(api_client, uow_factory, net):
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    text = f"\ufeffsku,node_id,on_hand,safety_stock\r\n{a},{aus},8,\r\n\r\n{b},{dal},6,1\r\n"

    response = await post_csv(api_client, text, kind="snapshot", source="erp", as_of="2026-03-01T09:00:00+01:00")

    assert response.status_code == 200, response.text
    assert summary(response.json()) == [(2, "applied", 10, 8), (4, "applied", 4, 6)]
    stock, journal = await state(uow_factory, net)
    as_of = datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert stock[(aus, a)] == (8, 3, 0, as_of)
    assert stock[(dal, b)] == (6, 0, 1, as_of)
    assert [e[5] for e in journal] == [f"{response.json()['batch_id']}:row 2", f"{response.json()['batch_id']}:row 4"]


async def test_an_adjustment_file_uploaded_twice_applies_once(api_client, uow_factory, net):
    aus, a = net.node("AUS"), net.sku("A")
    text = f'node_id,sku,delta,kind,reason\n{aus},{a},4,receipt,"PO-7, dock 2"\n{aus},{a},-1,damage,crushed\n'

    first = await post_csv(api_client, text, kind="adjustment", source="wms")
    after_first = await state(uow_factory, net)
    again = await post_csv(api_client, text, kind="adjustment", source="wms")

    assert first.status_code == 200, first.text
    assert summary(first.json()) == [(2, "applied", 10, 14), (3, "applied", 14, 13)]
    assert (again.status_code, again.json()["replayed"]) == (200, True)
    assert await state(uow_factory, net) == after_first
    assert after_first[1][0][4] == "PO-7, dock 2 (from wms)"


async def test_a_file_with_a_malformed_row_is_refused_with_every_row_reported(api_client, uow_factory, net):
    aus, dal, a, b = net.node("AUS"), net.node("DAL"), net.sku("A"), net.sku("B")
    before = await state(uow_factory, net)
    text = f"node_id,sku,on_hand\n{aus},{a},7\n{dal},{b},seven\n{dal},{b},-1\n{dal},NO-SUCH-SKU,1\n{dal},{b}\n"

    response = await post_csv(api_client, text, kind="snapshot", source="erp", as_of=AS_OF)

    assert response.status_code == 422
    report = response.json()
    assert (report["applied"], report["refused"]) == (0, 4)
    assert [(r["row"], r["outcome"], r["error"]) for r in report["rows"]] == [
        (2, "not_applied", None),
        (3, "invalid", "on_hand: 'seven' is not a whole number"),
        (4, "invalid", "on_hand: Input should be greater than or equal to 0"),
        (5, "refused", "unknown SKU NO-SUCH-SKU"),
        (6, "invalid", "expected 3 values, got 2"),
    ]
    assert await state(uow_factory, net) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "node_id,sku\nN,S\n",
            "header: missing column(s) on_hand; expected node_id,sku,on_hand,[safety_stock]",
            id="missing-column",
        ),
        pytest.param(
            "node_id,sku,on_hand,bin\n",
            "header: unknown column(s) 'bin'; expected node_id,sku,on_hand,[safety_stock]",
            id="extra-column",
        ),
        pytest.param("", "the file is empty: expected a header line node_id,sku,on_hand,[safety_stock]", id="empty"),
        pytest.param("node_id,sku,on_hand\n\n", "the file has a header but no rows", id="header-only"),
        pytest.param(
            b"node_id,sku,on_hand\nN,S\xe9,1\n", "the file is not UTF-8 text: byte 0xe9 on line 2", id="latin-1"
        ),
    ],
)
async def test_a_file_that_cannot_be_read_is_refused_with_a_message(api_client, text, message):
    response = await post_csv(api_client, text, kind="snapshot", source="erp", as_of=AS_OF)

    assert response.status_code == 422
    assert response.json()["message"] == message
    assert fields(response) == ["file"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"kind": "snapshot", "source": "erp"}, "as_of", id="snapshot-without-as-of"),
        pytest.param({"kind": "adjustment", "source": "erp", "as_of": AS_OF}, "as_of", id="adjustment-with-as-of"),
        pytest.param({"kind": "snapshot", "source": "erp", "as_of": "2026-03-01T08:00:00"}, "as_of", id="naive-as-of"),
        pytest.param({"kind": "receipts", "source": "erp"}, "kind", id="unknown-kind"),
        pytest.param({"kind": "adjustment"}, "source", id="no-source"),
    ],
)
async def test_bad_import_parameters_are_named(api_client, params, field):
    response = await post_csv(api_client, "node_id,sku,on_hand\nN,S,1\n", **params)

    assert response.status_code == 422
    assert fields(response) == [field]


async def test_an_import_not_sent_as_text_csv_is_415(api_client):
    response = await api_client.post(
        "/inventory/import",
        params={"kind": "adjustment", "source": "wms"},
        content=json.dumps({"rows": []}),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 415
    assert response.json() == {
        "message": "send the file as the request body with Content-Type: text/csv (got application/json)"
    }


async def test_a_file_with_more_rows_than_a_batch_holds_is_413(api_client, uow_factory, net):
    before = await state(uow_factory, net)
    line = f"{net.node('DAL')},{net.sku('B')},1,cycle_count,count\n"
    text = "node_id,sku,delta,kind,reason\n" + line * (MAX_ROWS + 1)

    response = await post_csv(api_client, text, kind="adjustment", source="wms")

    assert response.status_code == 413
    assert response.json()["message"] == f"more than {MAX_ROWS} rows; split the file into batches of at most {MAX_ROWS}"
    assert await state(uow_factory, net) == before
