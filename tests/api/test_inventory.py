"""``GET /inventory`` over ASGI against real PostgreSQL: validation names the parameter, unknown ids are 404."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.dialects.postgresql import insert

from domain.network import haversine_km
from infra.db.tables import AllocationTier, Customer, Sku, StockProtection
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network

pytestmark = pytest.mark.db

LOCATIONS = {"AUS": AUSTIN, "DAL": DALLAS, "NWK": NEWARK}


@pytest_asyncio.fixture(scope="module")
async def net(uow_factory) -> SeededNetwork:
    """Three nodes, SKU A everywhere, B at Austin only; SKU Z is in the catalogue with no stock anywhere.
    Gold customers are protected 4 of Austin's 10 units of A."""
    net = await build_network(
        uow_factory,
        [NodeSpec(name, point) for name, point in LOCATIONS.items()],
        {("AUS", "A"): 10, ("DAL", "A"): 20, ("NWK", "A"): 30, ("AUS", "B"): 5},
    )
    tier = f"T{net.prefix}-GOLD"
    async with uow_factory() as u:
        await u.session.execute(insert(Sku).values(sku=f"T{net.prefix}-Z", name="Z"))
        await u.session.execute(insert(AllocationTier).values(tier=tier, rank=random.randint(10_000, 900_000)))
        await u.session.execute(insert(Customer).values(customer_id=f"T{net.prefix}-VIP", name="VIP", tier=tier))
        await u.session.execute(
            insert(StockProtection).values(node_id=net.node("AUS"), sku=net.sku("A"), tier=tier, quantity=4)
        )
        await u.commit()
    return net


def pairs(net: SeededNetwork, body: dict[str, Any]) -> list[tuple[str, str]]:
    sku_names = {v: k for k, v in net.skus.items()}
    node_names = {v: k for k, v in net.node_ids.items()}
    return [(sku_names[r["sku"]], node_names[r["node_id"]]) for r in body["rows"]]


async def test_by_sku_answers_every_stocking_node_with_the_ledger_figures(api_client, net):
    before = datetime.now(UTC)
    response = await api_client.get("/inventory", params={"sku": [net.sku("A"), net.sku("B")]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert pairs(net, body) == [("A", "AUS"), ("A", "DAL"), ("A", "NWK"), ("B", "AUS")]
    assert before <= datetime.fromisoformat(body["as_of"]) <= datetime.now(UTC)
    assert body["truncated"] is False
    assert body["customer_id"] is None
    assert body["rows"][0] == {
        "sku": net.sku("A"),
        "node_id": net.node("AUS"),
        "node_name": "AUS",
        "node_kind": "dc",
        "node_status": "active",
        "on_hand": 10,
        "reserved": 0,
        "safety_stock": 0,
        "protected": 4,
        "atp": 6,
        "distance_km": None,
    }


async def test_by_node_answers_every_sku_there(api_client, net):
    response = await api_client.get("/inventory", params={"node_id": net.node("AUS")})
    assert response.status_code == 200, response.text
    assert pairs(net, response.json()) == [("A", "AUS"), ("B", "AUS")]


async def test_near_a_point_answers_nearest_first_within_the_radius(api_client, net):
    response = await api_client.get(
        "/inventory", params={"sku": net.sku("A"), "lat": AUSTIN.lat, "lon": AUSTIN.lon, "radius_km": 500}
    )
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert pairs(net, response.json()) == [("A", "AUS"), ("A", "DAL")]
    assert rows[1]["distance_km"] == pytest.approx(haversine_km(AUSTIN, DALLAS), abs=0.5)


async def test_a_tiered_customer_sees_the_units_protected_for_their_tier(api_client, net):
    params = {"sku": net.sku("A"), "node_id": net.node("AUS")}
    plain = (await api_client.get("/inventory", params={**params, "customer_id": "SOMEONE-ELSE"})).json()
    vip = (await api_client.get("/inventory", params={**params, "customer_id": f"T{net.prefix}-VIP"})).json()
    assert (plain["rows"][0]["protected"], plain["rows"][0]["atp"]) == (4, 6)
    assert (vip["rows"][0]["protected"], vip["rows"][0]["atp"]) == (0, 10)
    assert vip["customer_id"] == f"T{net.prefix}-VIP"


async def test_limit_cuts_the_rows_and_says_so(api_client, net):
    response = await api_client.get("/inventory", params={"sku": net.sku("A"), "limit": 2})
    body = response.json()
    assert pairs(net, body) == [("A", "AUS"), ("A", "DAL")]
    assert body["truncated"] is True
    exact = (await api_client.get("/inventory", params={"sku": net.sku("A"), "limit": 3})).json()
    assert exact["truncated"] is False
    assert len(exact["rows"]) == 3


async def test_a_known_sku_without_stock_is_an_empty_answer(api_client, net):
    for params in ({"sku": f"T{net.prefix}-Z"}, {"sku": net.sku("B"), "node_id": net.node("DAL")}):
        response = await api_client.get("/inventory", params=params)
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == []


@pytest.mark.parametrize(
    ("params", "unknown_skus", "unknown_nodes"),
    [
        ({"sku": ["{A}", "NOPE-1"]}, ["NOPE-1"], []),
        ({"node_id": ["NOPE-N", "{AUS}"]}, [], ["NOPE-N"]),
        ({"sku": ["NOPE-2"], "node_id": ["NOPE-M"]}, ["NOPE-2"], ["NOPE-M"]),
    ],
)
async def test_an_unknown_id_is_404_naming_it(api_client, net, params, unknown_skus, unknown_nodes):
    ids = {"{A}": net.sku("A"), "{AUS}": net.node("AUS")}
    response = await api_client.get("/inventory", params={k: [ids.get(v, v) for v in vs] for k, vs in params.items()})
    assert response.status_code == 404
    body = response.json()
    assert (body["unknown_skus"], body["unknown_node_ids"]) == (unknown_skus, unknown_nodes)
    for name in unknown_skus + unknown_nodes:
        assert name in body["message"]


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["sku", "node_id", "lat/lon/radius_km"]),
        ({"customer_id": "C-1"}, ["sku", "node_id", "lat/lon/radius_km"]),
        ({"lat": 30}, ["lon", "radius_km"]),
        ({"lat": 30, "lon": -97}, ["radius_km"]),
        ({"radius_km": 10, "sku": "X"}, ["lat", "lon"]),
        ({"sku": "X", "limit": 0}, ["limit"]),
        ({"sku": "X", "limit": 5_001}, ["limit"]),
        ({"lat": 91, "lon": 0, "radius_km": 1}, ["lat"]),
        ({"lat": 0, "lon": -181, "radius_km": 1}, ["lon"]),
        ({"lat": "north", "lon": 0, "radius_km": 1}, ["lat"]),
        ({"lat": 0, "lon": 0, "radius_km": 0}, ["radius_km"]),
        ({"lat": 0, "lon": 0, "radius_km": 30_000}, ["radius_km"]),
        ({"lat": 0, "lon": 0, "radius_km": "nan"}, ["radius_km"]),
        ({"sku": ["OK-1", "not a sku!"]}, ["sku.1"]),
        ({"node_id": "bad node"}, ["node_id.0"]),
        ({"sku": [f"S-{i}" for i in range(1_001)]}, ["sku"]),
        ({"sku": "X", "customer_id": ""}, ["customer_id"]),
    ],
)
async def test_an_invalid_query_is_422_naming_each_parameter(api_client, params, fields):
    response = await api_client.get("/inventory", params=params)
    assert response.status_code == 422, response.text
    body = response.json()
    assert [e["field"] for e in body["errors"]] == fields
    for field in fields:
        assert field in body["message"]
