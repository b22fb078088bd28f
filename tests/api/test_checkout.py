"""``POST /fulfillment-options`` over ASGI against real Postgres: the options the engine offers for a cart, each
with a quote id that verifies for that cart only; a cart that could not be ordered is a 422 naming the field.

Placing orders with these quotes runs on the Temporal dev server (update-with-start): tests/e2e/test_checkout.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from domain.quotes import verify_quote
from infra.settings import Settings
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

SECRETS = Settings.model_validate({}).quote_secrets


@pytest.fixture
async def shops(uow_factory: Any) -> SeededNetwork:
    """Two stores that take pickups (Austin has two drills, Dallas three) and a DC in Newark with five."""
    return await build_network(
        uow_factory,
        [
            NodeSpec("AUSTIN", AUSTIN, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("DALLAS", DALLAS, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("NEWARK", NEWARK),
        ],
        {("AUSTIN", "DRILL"): 2, ("DALLAS", "DRILL"): 3, ("NEWARK", "DRILL"): 5},
    )


ADDRESS = {"name": "A", "line1": "x", "city": "Austin", "region": "TX", "postal_code": "78701", "country": "US"}


def cart(net: SeededNetwork, quantity: int = 2, **changes: Any) -> dict[str, Any]:
    return {
        "customer_id": "C-7",
        "ship_to": {
            "name": "Ada", "line1": "500 Congress Ave", "city": "Austin", "region": "TX", "postal_code": "78701",
            "country": "US", "location": {"lat": AUSTIN.lat, "lon": AUSTIN.lon},
        },
        "lines": [{"line_id": "1", "sku": net.sku("DRILL"), "quantity": quantity, "unit_price_minor": 1000}],
        **changes,
    }  # fmt: skip


async def test_options_come_with_quotes_bound_to_the_cart(api_client: httpx.AsyncClient, shops: SeededNetwork) -> None:
    response = await api_client.post("/fulfillment-options", json=cart(shops))
    assert response.status_code == 200, response.text
    body = response.json()
    kinds = {o["kind"]: o for o in body["options"]}
    # Austin has both drills: collect there, or have them shipped from there (the cart's own method).
    assert kinds["pickup_nearest"]["node_ids"] == [shops.node("AUSTIN")]
    assert kinds["pickup_nearest"]["price_minor"] == 0
    assert kinds["pickup_nearest"]["trade_off"].startswith("Pick up at AUSTIN")
    assert kinds["ship_standard"]["recommended"] is True
    assert kinds["pickup_nearest"]["recommended"] is False
    now = datetime.now(UTC)
    for option in body["options"]:
        payload = verify_quote(option["quote_id"], SECRETS, now)
        assert payload.cart_fingerprint == body["cart_fingerprint"]
        assert (payload.option_id, payload.customer_id) == (option["option_id"], "C-7")
        assert sum(p["units"] for p in option["parcels"]) == 2
    assert datetime.fromisoformat(body["quotes_expire_at"]) > now


async def test_methods_limit_the_options(api_client: httpx.AsyncClient, shops: SeededNetwork) -> None:
    response = await api_client.post("/fulfillment-options", json=cart(shops, methods=["pickup"]))
    assert response.status_code == 200, response.text
    assert {o["method"] for o in response.json()["options"]} == {"pickup"}


async def test_a_cart_nothing_can_supply_gets_no_options_and_says_why(
    api_client: httpx.AsyncClient, shops: SeededNetwork
) -> None:
    response = await api_client.post("/fulfillment-options", json=cart(shops, quantity=50))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["options"] == []
    assert "no node can supply" in body["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"pickup_node_id": "NO-SUCH-BRANCH"}, "pickup_node_id"),
        ({"ship_to": {**ADDRESS, "postal_code": "ABC"}}, "ship_to.postal_code"),
        ({"methods": []}, "methods"),
        ({"lines": []}, "lines"),
    ],
    ids=["unknown-branch", "bad-postal-code", "no-methods", "no-lines"],
)  # fmt: skip
async def test_a_cart_that_cannot_be_ordered_is_a_422_naming_the_field(
    api_client: httpx.AsyncClient, shops: SeededNetwork, change: dict[str, Any], field: str
) -> None:
    response = await api_client.post("/fulfillment-options", json=cart(shops, **change))
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_an_unknown_sku_is_named(api_client: httpx.AsyncClient, shops: SeededNetwork) -> None:
    body = cart(shops)
    body["lines"][0]["sku"] = "NO-SUCH-SKU"
    response = await api_client.post("/fulfillment-options", json=body)
    assert response.status_code == 422, response.text
    assert "NO-SUCH-SKU" in response.json()["message"]
