"""The network admin API over ASGI against real PostgreSQL: every endpoint's happy path, 404 for unknown ids,
422 naming the field, and a refused change that leaves nothing behind. Ids are unique per test; ``api_client``
comes from tests/api/conftest.py."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.dialects.postgresql import insert

from infra.db.tables import NodeCapacityUsage, Stock

pytestmark = pytest.mark.db


def prefix() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


def rank() -> int:
    """A rank no other test (nor the demo seed's 1 to 3) will take."""
    return random.randint(2_000_000, 2_000_000_000)


def node_body(kind: str = "store", **changes: Any) -> dict[str, Any]:
    return {
        "name": "Austin Branch",
        "kind": kind,
        "capabilities": ["ship_from_store", "ship", "pickup"] if kind == "store" else ["transfer_origin", "ship"],
        "location": {"lat": 30.2672, "lon": -97.7431},
        "address": {"line1": "500 Congress Ave", "city": "Austin", "region": "TX", "postal_code": "78701",
                    "country": "US"},
        "timezone": "America/Chicago",
        "operating_hours": {"sun": ["10:00", "16:00"], "mon": ["08:00", "19:00"]},
        "cutoff_local": "17:00",
        "pick_pack_minutes": 45,
        "capacity_orders_per_day": 150,
        "capacity_units_per_day": 400,
        **changes,
    }  # fmt: skip


def fields(response: httpx.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return [e["field"] for e in response.json()["errors"]]


async def put_node(client: httpx.AsyncClient, node_id: str, kind: str = "store", **changes: Any) -> dict[str, Any]:
    response = await client.put(f"/network/nodes/{node_id}", json=node_body(kind, **changes))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# --- nodes ---------------------------------------------------------------------------------------------------


async def test_put_node_creates_then_replaces(api_client):
    node_id = f"{prefix()}-BR"
    created = await api_client.put(f"/network/nodes/{node_id}", json=node_body())
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/network/nodes/{node_id}"
    assert created.json() == {
        "node_id": node_id,
        "status": "active",
        **node_body(),
        "capabilities": ["pickup", "ship", "ship_from_store"],
        "priority": 100,
        "operating_hours": {"mon": ["08:00", "19:00"], "sun": ["10:00", "16:00"]},
        "provider": "store",  # from the kind; tests/api/test_node_providers.py covers these two
        "endpoint": None,
        "cutoff_local": "17:00:00",
    }

    replaced = await api_client.put(
        f"/network/nodes/{node_id}", json=node_body(name="Austin North", capacity_units_per_day=None)
    )
    assert replaced.status_code == 200, replaced.text
    assert "location" not in replaced.headers
    got = await api_client.get(f"/network/nodes/{node_id}")
    assert got.status_code == 200
    assert got.json()["name"] == "Austin North"
    assert got.json()["capacity_units_per_day"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"node_id": "X"}, "node_id"),  # the id comes from the path only
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"operating_hours": {"mon": ["19:00", "08:00"]}}, "operating_hours.mon"),
        ({"operating_hours": {"funday": ["08:00", "19:00"]}}, "operating_hours.funday"),
        ({"capabilities": ["teleport"]}, "capabilities.0"),
        ({"kind": "dc", "capabilities": ["ship_from_store"]}, "capabilities"),  # a rule across fields, in the domain
        ({"capacity_orders_per_day": -1}, "capacity_orders_per_day"),
        ({"location": {"lat": 95, "lon": 0}}, "location.lat"),
        ({"cutoff_local": "17:00+01:00"}, "cutoff_local"),
        ({"status": "paused"}, "status"),
        ({"name": "Austin\x00Branch"}, "name"),  # PostgreSQL would refuse it: a 422, not a 500
    ],
)
async def test_put_node_refusals_name_the_field_and_write_nothing(api_client, changes, field):
    node_id = f"{prefix()}-BR"
    response = await api_client.put(f"/network/nodes/{node_id}", json=node_body(**changes))
    assert fields(response) == [field]
    assert field in response.json()["message"]
    assert (await api_client.get(f"/network/nodes/{node_id}")).status_code == 404


async def test_node_ids_in_the_path_are_validated(api_client):
    assert fields(await api_client.put("/network/nodes/bad%20id", json=node_body())) == ["node_id"]
    missing = await api_client.get(f"/network/nodes/{prefix()}-NONE")
    assert missing.status_code == 404
    assert "not found" in missing.json()["message"]


async def test_node_detail_has_upcoming_holidays_and_todays_capacity(api_client, uow_factory):
    node_id = f"{prefix()}-DC"
    await put_node(api_client, node_id, kind="dc", capacity_orders_per_day=100, capacity_units_per_day=None)
    today = datetime.now(UTC).astimezone(ZoneInfo("America/Chicago")).date()
    async with uow_factory() as u:
        await u.session.execute(insert(NodeCapacityUsage).values(node_id=node_id, day=today, orders=30, units=120))
        await u.commit()
    past, soon = today - timedelta(days=3), today + timedelta(days=10)
    for day, name in ((past, "Gone"), (soon, "Soon")):
        response = await api_client.put(f"/network/nodes/{node_id}/holidays/{day}", json={"name": name})
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"/network/nodes/{node_id}/holidays/{day}"
        assert response.json() == {"node_id": node_id, "day": day.isoformat(), "name": name}

    detail = (await api_client.get(f"/network/nodes/{node_id}")).json()
    assert detail["holidays"] == [{"node_id": node_id, "day": soon.isoformat(), "name": "Soon"}]
    assert detail["capacity_today"] == {
        "day": today.isoformat(),
        "orders": 30,
        "units": 120,
        "orders_limit": 100,
        "units_limit": None,
        "orders_left": 70,
        "units_left": None,
    }


async def test_holidays_replace_delete_and_refuse_unknown_nodes_and_bad_days(api_client):
    node_id = f"{prefix()}-DC"
    await put_node(api_client, node_id, kind="dc")
    path = f"/network/nodes/{node_id}/holidays/2027-12-24"
    assert (await api_client.put(path, json={"name": "Xmas"})).status_code == 201
    again = await api_client.put(path, json={"name": "Christmas Day"})
    assert again.status_code == 200
    assert again.json()["name"] == "Christmas Day"

    unknown = await api_client.put(f"/network/nodes/{node_id}-NONE/holidays/2027-12-24", json={"name": "x"})
    assert unknown.status_code == 404
    assert f"{node_id}-NONE" in unknown.json()["message"]
    assert fields(await api_client.put(f"/network/nodes/{node_id}/holidays/2027-02-30", json={"name": "x"})) == ["day"]
    assert fields(await api_client.put(path, json={"name": ""})) == ["name"]

    assert (await api_client.delete(path)).status_code == 204
    gone = await api_client.delete(path)
    assert gone.status_code == 404
    assert "2027-12-24" in gone.json()["message"]


async def test_status_pauses_and_activates_and_a_replace_keeps_it(api_client):
    node_id = f"{prefix()}-BR"
    await put_node(api_client, node_id)
    paused = await api_client.post(f"/network/nodes/{node_id}/status", json={"status": "paused", "reason": "flood"})
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"node_id": node_id, "status": "paused", "previous_status": "active", "reason": "flood"}

    assert (await api_client.put(f"/network/nodes/{node_id}", json=node_body(name="Renamed"))).status_code == 200
    assert (await api_client.get(f"/network/nodes/{node_id}")).json()["status"] == "paused"

    active = await api_client.post(f"/network/nodes/{node_id}/status", json={"status": "active", "reason": "dry"})
    assert active.json()["previous_status"] == "paused"
    assert (await api_client.get(f"/network/nodes/{node_id}")).json()["status"] == "active"

    assert fields(await api_client.post(f"/network/nodes/{node_id}/status", json={"status": "paused"})) == ["reason"]
    assert fields(
        await api_client.post(f"/network/nodes/{node_id}/status", json={"status": "closed", "reason": "x"})
    ) == ["status"]
    unknown = await api_client.post(f"/network/nodes/{node_id}-NONE/status", json={"status": "paused", "reason": "x"})
    assert unknown.status_code == 404


async def test_nodes_list_filters_and_pages(api_client):
    p = prefix()
    for name, kind in (("A-DC", "dc"), ("B-BR", "store"), ("C-BR", "store"), ("D-3PL", "3pl")):
        await put_node(api_client, f"{p}-{name}", kind=kind, **({"capabilities": ["ship"]} if kind == "3pl" else {}))
    await api_client.post(f"/network/nodes/{p}-C-BR/status", json={"status": "paused", "reason": "refit"})

    async def ids(**params: Any) -> list[str]:
        response = await api_client.get("/network/nodes", params={"after": f"{p}-", "limit": 500, **params})
        assert response.status_code == 200, response.text
        return [n["node_id"] for n in response.json()["items"] if n["node_id"].startswith(p)]

    assert await ids() == [f"{p}-A-DC", f"{p}-B-BR", f"{p}-C-BR", f"{p}-D-3PL"]
    assert await ids(kind="store") == [f"{p}-B-BR", f"{p}-C-BR"]
    assert await ids(status="paused") == [f"{p}-C-BR"]
    assert await ids(capability="transfer_origin") == [f"{p}-A-DC"]
    assert await ids(kind="store", status="active", capability="pickup") == [f"{p}-B-BR"]

    first = (await api_client.get("/network/nodes", params={"after": f"{p}-", "limit": 2})).json()
    assert [n["node_id"] for n in first["items"]] == [f"{p}-A-DC", f"{p}-B-BR"]
    assert first["next_after"] == f"{p}-B-BR"
    second = (await api_client.get("/network/nodes", params={"after": first["next_after"], "limit": 2})).json()
    assert [n["node_id"] for n in second["items"]] == [f"{p}-C-BR", f"{p}-D-3PL"]

    assert fields(await api_client.get("/network/nodes", params={"kind": "warehouse"})) == ["kind"]
    assert fields(await api_client.get("/network/nodes", params={"status": "closed"})) == ["status"]
    assert fields(await api_client.get("/network/nodes", params={"limit": 0})) == ["limit"]


# --- SKUs ----------------------------------------------------------------------------------------------------


async def test_skus_put_get_list_and_refusals(api_client):
    p = prefix()
    body = {"name": "Solvent", "weight_g": 1_000, "length_mm": 200, "width_mm": 100, "height_mm": 80, "hazmat": True}
    created = await api_client.put(f"/network/skus/{p}-HAZ/1L", json=body)  # a SKU may contain "/"
    assert created.status_code == 201, created.text
    assert created.json() == {"sku": f"{p}-HAZ/1L", **body, "oversize": False, "ship_alone": False}
    assert (await api_client.put(f"/network/skus/{p}-HAZ/1L", json={**body, "ship_alone": True})).status_code == 200
    assert (await api_client.put(f"/network/skus/{p}-PLAIN", json={"name": "Plain"})).status_code == 201

    got = await api_client.get(f"/network/skus/{p}-HAZ/1L")
    assert got.status_code == 200
    assert got.json()["ship_alone"] is True
    assert (await api_client.get(f"/network/skus/{p}-NONE")).status_code == 404

    listed = await api_client.get("/network/skus", params={"hazmat": "true", "after": p, "limit": 500})
    assert [s["sku"] for s in listed.json()["items"] if s["sku"].startswith(p)] == [f"{p}-HAZ/1L"]

    assert fields(await api_client.put(f"/network/skus/{p}-X", json={"name": "X", "weight_g": -1})) == ["weight_g"]
    assert fields(await api_client.put(f"/network/skus/{p}-X", json={"name": "X", "sku": "Y"})) == ["sku"]
    assert fields(await api_client.put(f"/network/skus/{p}%20X", json={"name": "X"})) == ["sku"]
    assert (await api_client.get(f"/network/skus/{p}-X")).status_code == 404


# --- tiers ---------------------------------------------------------------------------------------------------


async def test_tiers_put_get_list_and_rank_conflict(api_client):
    p = prefix().lower()
    gold_rank = rank()
    created = await api_client.put(f"/network/tiers/{p}-gold", json={"rank": gold_rank, "description": "trade"})
    assert created.status_code == 201, created.text
    assert created.json() == {"tier": f"{p}-gold", "rank": gold_rank, "description": "trade"}
    assert (await api_client.put(f"/network/tiers/{p}-gold", json={"rank": gold_rank})).status_code == 200
    assert (await api_client.get(f"/network/tiers/{p}-gold")).json()["description"] == ""
    assert (await api_client.get(f"/network/tiers/{p}-none")).status_code == 404

    clash = await api_client.put(f"/network/tiers/{p}-silver", json={"rank": gold_rank})
    assert clash.status_code == 409
    assert clash.json()["errors"][0]["field"] == "rank"
    assert f"{p}-gold" in clash.json()["message"]
    assert (await api_client.get(f"/network/tiers/{p}-silver")).status_code == 404

    tiers = (await api_client.get("/network/tiers")).json()
    assert {"tier": f"{p}-gold", "rank": gold_rank, "description": ""} in tiers
    assert [t["rank"] for t in tiers] == sorted(t["rank"] for t in tiers)
    assert fields(await api_client.put(f"/network/tiers/{p}-x", json={"rank": 0})) == ["rank"]


# --- customers -----------------------------------------------------------------------------------------------


async def test_customers_put_get_and_refusals(api_client):
    p = prefix()
    await put_node(api_client, f"{p}-BR")
    await put_node(api_client, f"{p}-DC", kind="dc")
    tier = f"{p.lower()}-vip"
    assert (await api_client.put(f"/network/tiers/{tier}", json={"rank": rank()})).status_code == 201
    body = {
        "name": "Lone Star Builders",
        "segment": "b2b",
        "tier": tier,
        "home_node_id": f"{p}-BR",
        "excluded_node_ids": [f"{p}-DC"],
        "credit_limit_minor": 5_000_000,
    }
    created = await api_client.put(f"/network/customers/{p}-C1", json=body)
    assert created.status_code == 201, created.text
    assert created.json() == {"customer_id": f"{p}-C1", **body, "allowed_node_ids": [], "currency": "USD"}
    assert (await api_client.put(f"/network/customers/{p}-C1", json={**body, "name": "LSB"})).status_code == 200
    assert (await api_client.get(f"/network/customers/{p}-C1")).json()["name"] == "LSB"
    assert (await api_client.get(f"/network/customers/{p}-NONE")).status_code == 404


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        (lambda p: {"home_node_id": f"{p}-GONE"}, ["home_node_id"]),
        (lambda p: {"allowed_node_ids": [f"{p}-BR", f"{p}-X"], "excluded_node_ids": [f"{p}-Y"]},
         ["allowed_node_ids", "excluded_node_ids"]),
        (lambda p: {"tier": f"nope-{p}"}, ["tier"]),
        (lambda p: {"allowed_node_ids": [f"{p}-BR"], "excluded_node_ids": [f"{p}-BR"]}, ["excluded_node_ids"]),
        (lambda p: {"credit_limit_minor": 100}, ["credit_limit_minor"]),  # b2c
        (lambda p: {"customer_id": f"{p}-C2"}, ["customer_id"]),
    ],
)  # fmt: skip
async def test_a_refused_customer_writes_nothing(api_client, changes, errors):
    p = prefix()
    await put_node(api_client, f"{p}-BR")
    response = await api_client.put(
        f"/network/customers/{p}-C1", json={"name": "Ada", "home_node_id": f"{p}-BR", **changes(p)}
    )
    assert fields(response) == errors
    assert (await api_client.get(f"/network/customers/{p}-C1")).status_code == 404


# --- stock protection ----------------------------------------------------------------------------------------


async def test_protections_need_a_stock_row_and_a_tier(api_client, uow_factory):
    p = prefix()
    node_id, sku, tier = f"{p}-BR", f"{p}-DRILL", f"{p.lower()}-vip"
    await put_node(api_client, node_id)
    assert (await api_client.put(f"/network/skus/{sku}", json={"name": "Drill"})).status_code == 201
    assert (await api_client.put(f"/network/tiers/{tier}", json={"rank": rank()})).status_code == 201
    path = f"/network/protections/{node_id}/{sku}/{tier}"

    no_stock = await api_client.put(path, json={"quantity": 5})
    assert no_stock.status_code == 404
    assert f"{sku} at {node_id}" in no_stock.json()["message"]
    async with uow_factory() as u:
        await u.session.execute(insert(Stock).values(node_id=node_id, sku=sku, on_hand=25))
        await u.commit()

    created = await api_client.put(path, json={"quantity": 5})
    assert created.status_code == 201, created.text
    assert created.json() == {"node_id": node_id, "sku": sku, "tier": tier, "quantity": 5}
    assert (await api_client.put(path, json={"quantity": 7})).status_code == 200
    assert (await api_client.get(path)).json()["quantity"] == 7

    no_tier = await api_client.put(f"/network/protections/{node_id}/{sku}/{tier}-x", json={"quantity": 1})
    assert no_tier.status_code == 404
    assert f"tier {tier}-x not found" in no_tier.json()["message"]
    assert (await api_client.get(f"/network/protections/{node_id}/{sku}/{tier}-x")).status_code == 404
    assert fields(await api_client.put(path, json={"quantity": -1})) == ["quantity"]
    assert (await api_client.get(path)).json()["quantity"] == 7


# --- transfer lanes ------------------------------------------------------------------------------------------


async def test_lanes_put_get_list_and_refusals(api_client):
    p = prefix()
    dc, stores = f"{p}-DC", [f"{p}-BR-{i}" for i in range(3)]
    await put_node(api_client, dc, kind="dc")
    for store in stores:
        await put_node(api_client, store)
    body = {"transit_hours": 12, "cost_minor": 9_000, "departure_days": ["wed", "mon"], "departure_local": "20:00"}

    created = await api_client.put(f"/network/lanes/{dc}/{stores[0]}", json=body)
    assert created.status_code == 201, created.text
    assert created.json() == {
        "origin_node_id": dc,
        "destination_node_id": stores[0],
        **body,
        "currency": "USD",
        "departure_days": ["mon", "wed"],
        "departure_local": "20:00:00",
    }
    assert (await api_client.put(f"/network/lanes/{dc}/{stores[0]}", json={**body, "cost_minor": 1})).status_code == 200
    assert (await api_client.get(f"/network/lanes/{dc}/{stores[0]}")).json()["cost_minor"] == 1
    assert (await api_client.get(f"/network/lanes/{stores[0]}/{dc}")).status_code == 404
    for store in stores[1:]:
        assert (await api_client.put(f"/network/lanes/{dc}/{store}", json=body)).status_code == 201

    first = (await api_client.get("/network/lanes", params={"origin": dc, "limit": 2})).json()
    assert [lane["destination_node_id"] for lane in first["items"]] == stores[:2]
    assert first["next_after"] == f"{dc}/{stores[1]}"
    rest = (await api_client.get("/network/lanes", params={"origin": dc, "after": first["next_after"]})).json()
    assert [lane["destination_node_id"] for lane in rest["items"]] == stores[2:]
    assert rest["next_after"] is None
    into = (await api_client.get("/network/lanes", params={"destination": stores[1]})).json()
    assert [(lane["origin_node_id"], lane["destination_node_id"]) for lane in into["items"]] == [(dc, stores[1])]

    unknown = await api_client.put(f"/network/lanes/{p}-NONE/{stores[0]}", json=body)
    assert unknown.status_code == 404
    assert f"origin node {p}-NONE not found" in unknown.json()["message"]
    assert fields(await api_client.put(f"/network/lanes/{dc}/{dc}", json=body)) == ["destination"]
    assert fields(await api_client.put(f"/network/lanes/{dc}/{stores[0]}", json={**body, "departure_local": None})) == [
        "departure_local"
    ]
    assert fields(await api_client.get("/network/lanes", params={"after": "no-slash"})) == ["after"]
    assert (await api_client.get(f"/network/lanes/{dc}/{stores[0]}")).json()["cost_minor"] == 1


# --- carrier services ----------------------------------------------------------------------------------------


async def test_carrier_services_put_get_list_and_refusals(api_client):
    p = prefix()
    body: dict[str, Any] = {
        "carrier": "Demo Parcel",
        "service_level": "expedited",
        "transit_days_by_zone": {str(z): 1 for z in range(1, 9)},
        "rate_by_zone": {str(z): {"base_minor": 3_500 + 300 * z, "per_kg_minor": 300} for z in range(1, 9)},
        "cutoff_local": "16:00",
    }
    created = await api_client.put(f"/network/carrier-services/{p}-NIGHT", json=body)
    assert created.status_code == 201, created.text
    assert created.json() == {"service_id": f"{p}-NIGHT", **body, "currency": "USD", "cutoff_local": "16:00:00"}
    assert (await api_client.put(f"/network/carrier-services/{p}-NIGHT", json=body)).status_code == 200
    ground = {**body, "service_level": "standard"}
    assert (await api_client.put(f"/network/carrier-services/{p}-GROUND", json=ground)).status_code == 201
    assert (await api_client.get(f"/network/carrier-services/{p}-NIGHT")).json() == created.json()
    assert (await api_client.get(f"/network/carrier-services/{p}-NONE")).status_code == 404

    listed = await api_client.get(
        "/network/carrier-services", params={"service_level": "expedited", "after": p, "limit": 500}
    )
    assert [s["service_id"] for s in listed.json()["items"] if s["service_id"].startswith(p)] == [f"{p}-NIGHT"]

    nine = {**body, "transit_days_by_zone": {**body["transit_days_by_zone"], "9": 2}}
    assert fields(await api_client.put(f"/network/carrier-services/{p}-X", json=nine)) == [
        "transit_days_by_zone.9.[key]"
    ]
    uneven = {**body, "transit_days_by_zone": {"1": 1}}
    assert fields(await api_client.put(f"/network/carrier-services/{p}-X", json=uneven)) == ["rate_by_zone"]
    assert (await api_client.get(f"/network/carrier-services/{p}-X")).status_code == 404
