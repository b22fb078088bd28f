"""Checkout end to end over real HTTP: API, worker, Temporal dev server, Postgres and the simulator.

Options for a cart; an order placed with one of them (update-with-start: the answer says whether it is accepted
and its stock held) executes exactly that plan; the same after stock moves between quote and order, where the
re-plan is recorded and shown; and a tampered, expired or foreign quote is refused with a clear error, leaving
no order behind.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from domain.options import PlanVariant
from domain.policy import Method
from domain.quotes import QuotePayload, sign_quote
from infra.db.tables import Stock
from infra.db.uow import UowFactory
from tests.e2e.conftest import QUOTE_SECRET, order_stage
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network, eventually

pytestmark = [pytest.mark.db, pytest.mark.e2e]

# A customer in Newark: the DC there is the nearest shipper, the Dallas store the nearest pickup branch.
NEWARK_ADDRESS = {
    "name": "Ada Customer", "line1": "1 Broad St", "city": "Newark", "region": "NJ", "postal_code": "07102",
    "country": "US", "location": {"lat": NEWARK.lat, "lon": NEWARK.lon},
}  # fmt: skip


@pytest.fixture
async def shops(uow_factory: UowFactory) -> SeededNetwork:
    return await build_network(
        uow_factory,
        [
            NodeSpec("AUSTIN", AUSTIN, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("DALLAS", DALLAS, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("NEWARK", NEWARK),
        ],
        {("AUSTIN", "DRILL"): 3, ("DALLAS", "DRILL"): 3, ("NEWARK", "DRILL"): 5},
    )


def cart(net: SeededNetwork, quantity: int = 2) -> dict[str, Any]:
    return {
        "customer_id": "C-42",
        "channel": "web",
        "ship_to": NEWARK_ADDRESS,
        "lines": [{"line_id": "1", "sku": net.sku("DRILL"), "quantity": quantity, "unit_price_minor": 12900}],
    }


def order_with(cart_body: dict[str, Any], quote_id: str) -> dict[str, Any]:
    return {"order_id": f"E2E-Q-{uuid.uuid4().hex[:10]}", "quote_id": quote_id, **cart_body}


async def options(http: httpx.AsyncClient, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = await http.post("/fulfillment-options", json=body)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["options"]
    return found


async def test_an_order_placed_with_the_second_option_executes_exactly_that_plan(
    http: httpx.AsyncClient, simulator_http: httpx.AsyncClient, shops: SeededNetwork
) -> None:
    offered = await options(http, cart(shops))
    assert [(o["kind"], o["node_ids"]) for o in offered] == [
        ("pickup_nearest", [shops.node("DALLAS")]),
        ("ship_standard", [shops.node("NEWARK")]),
    ]
    for option in offered:
        assert option["quote_id"].startswith("q1.")
        assert option["trade_off"]
        assert [(line["line_id"], line["quantity"]) for line in option["lines"]] == [("1", 2)]
    second = offered[1]

    body = order_with(cart(shops), second["quote_id"])
    placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    answer = placed.json()
    # Known within the request: accepted, stock held, the quote kept.
    assert answer["placement"]["accepted"] is True
    assert answer["placement"]["reserved"] is True
    assert answer["placement"]["quote"] == {
        "option_id": second["option_id"], "kept": True, "detail": f"kept the quoted option {second['option_id']}",
    }  # fmt: skip
    assert answer["placement"]["promise"]["node_ids"] == [shops.node("NEWARK")]

    # The same request again reaches the same order and the same answer.
    again = await http.post("/orders", json=body)
    assert again.status_code == 200, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["placement"] == answer["placement"]

    await eventually(lambda: order_stage(http, body["order_id"]), lambda s: s == "completed", timeout_s=60)
    # Once it has finished too: the order is answered, not started again.
    finished = await http.post("/orders", json=body)
    assert finished.status_code == 200, finished.text
    assert (finished.headers["idempotent-replayed"], finished.json()["stage"]) == ("true", "completed")
    order = (await http.get(f"/orders/{body['order_id']}")).json()
    assert [(s["node_id"], s["method"], s["stage"]) for s in order["shipments"]] == [
        (shops.node("NEWARK"), "delivery", "delivered")
    ]
    [line] = order["line_sources"]
    assert [(s["node_id"], s["quantity"]) for s in line["sources"]] == [(shops.node("NEWARK"), 2)]
    assert order["quote"]["kept"] is True
    assert order["promise_changes"] == []
    releases = (await simulator_http.get("/wms/releases")).json()["releases"]
    assert [r["node_id"] for r in releases if r["order_id"] == body["order_id"]] == [shops.node("NEWARK")]


async def test_stock_moved_between_quote_and_order_is_replanned_and_the_change_is_shown(
    http: httpx.AsyncClient, shops: SeededNetwork, uow_factory: UowFactory
) -> None:
    offered = await options(http, cart(shops))
    chosen = next(o for o in offered if o["kind"] == "ship_standard")
    async with uow_factory() as u:
        await u.session.execute(
            update(Stock)
            .where(Stock.node_id == shops.node("NEWARK"), Stock.sku == shops.sku("DRILL"))
            .values(on_hand=0)
        )
        await u.commit()

    body = order_with(cart(shops), chosen["quote_id"])
    placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    placement = placed.json()["placement"]
    assert (placement["accepted"], placement["reserved"]) == (True, True)
    assert placement["quote"]["kept"] is False
    assert shops.node("NEWARK") in placement["quote"]["detail"]

    order = (await http.get(f"/orders/{body['order_id']}")).json()
    [change] = order["promise_changes"]
    assert change["before"]["node_ids"] == [shops.node("NEWARK")]
    [shipment] = [s for s in order["shipments"] if s["stage"] != "cancelled"]
    # Re-planned under the customer's method: standard delivery, from a node that has the drills.
    assert (shipment["method"], shipment["service_level"]) == ("delivery", "standard")
    assert shipment["node_id"] in {shops.node("AUSTIN"), shops.node("DALLAS")}
    assert change["after"]["node_ids"] == [shipment["node_id"]]
    assert "could not be kept" in change["reason"]
    assert order["original_promise"] == change["before"]
    assert order["current_promise"]["node_ids"] == [shipment["node_id"]]
    assert "quote not kept" in [e["event"] for e in order["timeline"]]


async def test_a_pickup_placed_with_its_quote_shows_where_and_when_to_collect(
    http: httpx.AsyncClient, shops: SeededNetwork
) -> None:
    offered = await options(http, cart(shops))
    pickup = next(o for o in offered if o["kind"] == "pickup_nearest")
    body = order_with(cart(shops), pickup["quote_id"])
    placed = await http.post("/orders", json=body)
    assert placed.status_code == 201, placed.text
    assert placed.json()["placement"]["quote"]["kept"] is True

    async def read() -> dict[str, Any]:
        found: dict[str, Any] = (await http.get(f"/orders/{body['order_id']}")).json()
        return found

    # The branch picks and packs it (the simulator plays that), then it waits at the counter.
    order = await eventually(read, lambda o: bool(o.get("pickup") and o["pickup"]["ready"]), timeout_s=60)
    assert order["pickup_node_id"] == shops.node("DALLAS")
    assert order["pickup"]["name"] == "DALLAS"
    assert order["pickup"]["address"]["city"] == "DALLAS"
    assert [(s["method"], s["stage"]) for s in order["shipments"]] == [("pickup", "ready_for_pickup")]


def forged(body: dict[str, Any], token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return ".".join((head, payload, flipped))


async def test_tampered_expired_and_foreign_quotes_are_refused_and_leave_no_order(
    http: httpx.AsyncClient, shops: SeededNetwork
) -> None:
    offered = await options(http, cart(shops))
    token = offered[0]["quote_id"]
    expired = sign_quote(
        QuotePayload(
            cart_fingerprint="0" * 64, customer_id="C-42", option_id="ship_standard-x", plan_fingerprint="0" * 64,
            variant=PlanVariant(method=Method.DELIVERY),
        ),
        QUOTE_SECRET, datetime.now(UTC) - timedelta(hours=1), timedelta(minutes=15),
    )  # fmt: skip
    cases = {
        "tampered": (order_with(cart(shops), forged(cart(shops), token)), "quote_invalid", "signature"),
        "expired": (order_with(cart(shops), expired), "quote_expired", "expired"),
        # The quote was for two drills; the order asks for three.
        "another cart": (order_with(cart(shops, quantity=3), token), "quote_mismatch", "another cart"),
        "garbage": (order_with(cart(shops), "not-a-quote"), "quote_invalid", "malformed"),
    }
    for name, (body, kind, words) in cases.items():
        response = await http.post("/orders", json=body)
        assert response.status_code == 422, (name, response.text)
        error = response.json()
        assert (error["field"], error["type"]) == ("quote_id", kind), name
        assert error["message"].startswith("quote_id: "), name
        assert words in error["message"], name
        assert (await http.get(f"/orders/{body['order_id']}")).status_code == 404, name
