"""The rules API over ASGI against real PostgreSQL: the schema, validation by path, versions, diff, activation,
rollback, the journal, and simulation on a small network.

There is one active policy per database, and other tests plan orders in the session's database under the
built-in one; so this module runs its app on a database of its own (``tests.private_db``). Tests here share it:
each looks at the versions it created, and the one that starts from an empty journal makes its own.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.dialects.postgresql import insert
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from domain.orders import Address, Order, OrderLine
from domain.policy import BUILTIN_POLICY
from infra.db.tables import OrderPlan
from infra.db.uow import UowFactory
from infra.settings import Settings
from tests.private_db import private_database, unit_of_work_factory
from tests.support import (
    AUSTIN,
    DALLAS,
    IMMEDIATE,
    NEWARK,
    TEST_ADMIN,
    NodeSpec,
    SeededNetwork,
    api_key_headers,
    build_network,
)

pytestmark = pytest.mark.db

ADMIN = {"X-Actor": "ana@example.com"}
# The actor recorded: the API key's name, then X-Actor as detail.
ADMIN_ACTOR = f"{TEST_ADMIN}:ana@example.com"


@pytest.fixture(scope="module")
def rules_database_url(postgres_server_url: str) -> Iterator[str]:
    with private_database(postgres_server_url, "rules_api") as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def rules_uow(rules_database_url: str) -> AsyncIterator[UowFactory]:
    async with unit_of_work_factory(rules_database_url) as factory:
        yield factory


@asynccontextmanager
async def client_for(database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url}), temporal=temporal_env.client
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
        ) as client,
    ):
        yield client


@pytest_asyncio.fixture
async def rules_client(rules_database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(rules_database_url, temporal_env) as client:
        yield client


@pytest_asyncio.fixture
async def empty_client(postgres_server_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a database where no policy was ever stored."""
    with private_database(postgres_server_url, "rules_empty") as url:
        async with client_for(url, temporal_env) as client:
            yield client


def document(name: str = "Rules API test", **strategy: Any) -> dict[str, Any]:
    """The built-in policy, renamed, with the default strategy changed by ``strategy``."""
    data = copy.deepcopy(BUILTIN_POLICY.model_dump(mode="json"))
    data["name"] = name
    data["profiles"][0]["strategies"][0].update(strategy)
    return data


def prefer(*node_ids: str) -> dict[str, Any]:
    """A strategy change: rank by node priority tiers (these nodes first, in order) before anything else."""
    return {"ranking": [{"step": "node_priority", "tiers": [[n] for n in node_ids]}, {"step": "distance"}]}


def errors(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["message"] for e in response.json()["errors"]}


async def create(client: httpx.AsyncClient, body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    response = await client.post("/rules/versions", json={"document": body, "note": "test", **extra}, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def activate(client: httpx.AsyncClient, version: int, reason: str = "go") -> httpx.Response:
    return await client.post(f"/rules/versions/{version}/activate", json={"reason": reason}, headers=ADMIN)


async def versions(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/rules/versions", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


# --- the language ----------------------------------------------------------------------------------------------


async def test_schema_is_the_policy_documents(rules_client):
    response = await rules_client.get("/rules/schema")
    assert response.status_code == 200
    schema = response.json()
    assert schema["title"] == "PolicyDocument"
    assert {"name", "profiles", "shipping_methods", "costs"} <= set(schema["properties"])
    assert "profiles" in schema["required"]


async def test_a_valid_document_validates_with_its_warnings(rules_client):
    body = document()
    body["profiles"].insert(0, {**body["profiles"][0], "id": "everyone"})
    response = await rules_client.post("/rules/validate", json={"document": body})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["valid"] is True
    assert result["warnings"] == [
        {
            "path": "document.profiles.1",
            "message": "profile 'default' never applies: 'everyone' above it matches every order",
        }
    ]
    assert len(result["checksum"]) == 64


INVALID = [
    pytest.param(
        {"split": {"mode": "never", "max_shipments": 3}},
        "document.profiles.0.strategies.0.split",
        "split mode 'never' means one shipment",
        id="split",
    ),
    pytest.param(
        {"ranking": [{"step": "distance"}, {"step": "distance"}]},
        "document.profiles.0.strategies.0",
        "duplicate ranking step 'distance'",
        id="duplicate-step",
    ),
    pytest.param(
        {"ranking": [{"step": "distance"}, {"step": "cheapest"}]},
        "document.profiles.0.strategies.0.ranking.1",
        "does not match any of the expected tags",
        id="unknown-step",
    ),
    pytest.param(
        {"ranking": [{"step": "distance", "bucket_km": -5}]},
        "document.profiles.0.strategies.0.ranking.0.distance.bucket_km",
        "greater than 0",
        id="negative-bucket",
    ),
    pytest.param({"ranking": []}, "document.profiles.0.strategies.0.ranking", "at least 1 item", id="no-ranking"),
]


@pytest.mark.parametrize(("strategy", "field", "reason"), INVALID)
async def test_an_invalid_document_is_refused_by_path_and_never_stored(rules_client, strategy, field, reason):
    body = document(**strategy)
    found = errors(await rules_client.post("/rules/validate", json={"document": body}))
    assert field in found, found
    assert reason in found[field]

    before = await versions(rules_client)
    refused = await rules_client.post("/rules/versions", json={"document": body, "note": "bad"}, headers=ADMIN)
    assert field in errors(refused)
    assert await versions(rules_client) == before
    # Nothing was stored, so there is no version to activate.
    next_number = (before[0]["version"] if before else 0) + 1
    assert (await activate(rules_client, next_number)).status_code == 404


async def test_the_last_profile_must_catch_everything(rules_client):
    body = document()
    body["profiles"][0]["when"] = {"segments": ["b2b"]}
    found = errors(await rules_client.post("/rules/validate", json={"document": body}))
    assert "must match every order" in found["document"]


async def test_unknown_nodes_are_refused_by_path(rules_client, rules_uow):
    network = await build_network(rules_uow, [NodeSpec("DC", AUSTIN)], {("DC", "SKU"): 1})
    known, unknown = network.node("DC"), f"NOPE-{uuid.uuid4().hex[:6]}"
    body = document(ranking=[{"step": "distance"}, {"step": "node_priority", "tiers": [[known], [unknown]]}])
    found = errors(await rules_client.post("/rules/validate", json={"document": body}))
    path = "document.profiles.0.strategies.0.ranking.1.tiers.1.0"
    assert found == {path: f"unknown node {unknown}: the network has no such node"}

    before = await versions(rules_client)
    assert path in errors(await rules_client.post("/rules/versions", json={"document": body, "note": "x"}))
    assert await versions(rules_client) == before


async def test_paused_nodes_are_a_warning(rules_client, rules_uow):
    network = await build_network(rules_uow, [NodeSpec("DC", AUSTIN, status="paused")], {("DC", "SKU"): 1})
    body = document(**prefer(network.node("DC")))
    response = await rules_client.post("/rules/validate", json={"document": body})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [
        {
            "path": "document.profiles.0.strategies.0.ranking.0.tiers.0.0",
            "message": f"node {network.node('DC')} is paused: it is not used",
        }
    ]


# --- versions, diff, activation, rollback, journal ---------------------------------------------------------------


async def test_from_builtin_to_versions_and_back(empty_client):
    client = empty_client
    active = (await client.get("/rules/active")).json()
    assert (active["version_label"], active["version"], active["activated_at"]) == ("builtin", None, None)
    assert active["document"] == BUILTIN_POLICY.model_dump(mode="json")
    assert (await client.post("/rules/rollback", json={"reason": "undo"}, headers=ADMIN)).status_code == 409

    created = await client.post(
        "/rules/versions",
        json={"document": document("Never split", split={"mode": "never"}), "note": "one box per order"},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/rules/versions/1"
    v1 = created.json()
    assert (v1["version"], v1["version_label"], v1["status"], v1["created_by"]) == (
        1,
        "v1",
        "draft",
        f"{TEST_ADMIN}:{ADMIN['X-Actor']}",
    )
    assert (v1["note"], v1["identical_to"], v1["warnings"]) == ("one box per order", [], [])
    assert v1["document"]["profiles"][0]["strategies"][0]["split"] == {"mode": "never", "max_shipments": 1}

    diff = (await client.get("/rules/versions/1/diff")).json()
    assert (diff["version_label"], diff["against"], diff["identical"]) == ("v1", "builtin", False)
    assert diff["changes"] == [
        {"path": "name", "change": "changed", "before": BUILTIN_POLICY.name, "after": "Never split"},
        {
            "path": "profiles[default].strategies[nearest].split.mode",
            "change": "changed",
            "before": "allowed",
            "after": "never",
        },
        {
            "path": "profiles[default].strategies[nearest].split.max_shipments",
            "change": "changed",
            "before": 5,
            "after": 1,
        },
    ]

    activated = await activate(client, 1, reason="fewer parcels")
    assert activated.status_code == 200, activated.text
    event = activated.json()
    assert (event["version_label"], event["action"], event["actor"], event["reason"]) == (
        "v1",
        "activated",
        f"{TEST_ADMIN}:{ADMIN['X-Actor']}",
        "fewer parcels",
    )
    assert event["detail"] == {"previous": "builtin"}
    again = await activate(client, 1)
    assert again.status_code == 409
    assert again.json()["message"].startswith("v1 is already the active policy")
    assert (await client.get("/rules/versions/1/diff")).json() == {
        "version_label": "v1",
        "against": "v1",
        "identical": True,
        "changes": [],
    }

    # v2 is edited from v1: a new profile in front.
    edited = copy.deepcopy(v1["document"])
    edited["profiles"].insert(0, {**edited["profiles"][0], "id": "b2b", "when": {"segments": ["b2b"]}})
    v2 = await create(client, edited, based_on=1)
    assert (v2["version"], v2["based_on"]) == (2, 1)
    changes = (await client.get("/rules/versions/2/diff", params={"against": "1"})).json()["changes"]
    assert [(c["path"], c["change"]) for c in changes] == [("profiles[b2b]", "added")]
    assert (await activate(client, 2, reason="trade customers")).status_code == 200

    active = (await client.get("/rules/active")).json()
    assert (active["version_label"], active["version"], active["reason"]) == ("v2", 2, "trade customers")
    assert [(v["version"], v["status"]) for v in await versions(client)] == [(2, "active"), (1, "retired")]

    rolled = await client.post("/rules/rollback", json={"reason": "b2b orders stuck"}, headers=ADMIN)
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["version_label"], rolled.json()["action"]) == ("v1", "rolled_back")
    assert rolled.json()["detail"] == {"from": "v2", "to": "v1"}
    assert (await client.get("/rules/active")).json()["version_label"] == "v1"
    assert [(v["version"], v["status"]) for v in await versions(client)] == [(2, "retired"), (1, "active")]
    refused = await client.post("/rules/rollback", json={"reason": "again"}, headers=ADMIN)
    assert refused.status_code == 409
    assert "replaced the built-in policy" in refused.json()["message"]

    journal = (await client.get("/rules/journal")).json()
    assert journal["next_after"] is None
    assert [(e["action"], e["version"], e["reason"]) for e in journal["items"]] == [
        ("rolled_back", 1, "b2b orders stuck"),
        ("activated", 2, "trade customers"),
        ("created", 2, "test"),
        ("activated", 1, "fewer parcels"),
        ("created", 1, "one box per order"),
    ]
    first_page = (await client.get("/rules/journal", params={"limit": 2})).json()
    assert [e["action"] for e in first_page["items"]] == ["rolled_back", "activated"]
    rest = (await client.get("/rules/journal", params={"after": first_page["next_after"]})).json()
    assert [e["action"] for e in rest["items"]] == ["created", "activated", "created"]
    only_v1 = (await client.get("/rules/journal", params={"version": 1})).json()["items"]
    assert [(e["action"], e["version"]) for e in only_v1] == [("rolled_back", 1), ("activated", 1), ("created", 1)]


async def test_identical_drafts_are_pointed_out(rules_client):
    body = document(f"Twin {uuid.uuid4().hex[:6]}")
    first = await create(rules_client, body)
    check = (await rules_client.post("/rules/validate", json={"document": body})).json()
    assert check["identical_to"] == [first["version"]]
    second = await create(rules_client, body)
    assert second["identical_to"] == [first["version"]]
    assert second["checksum"] == first["checksum"]


async def test_versions_page_newest_first(rules_client):
    for i in range(3):
        await create(rules_client, document(f"Paged {i}"))
    first = (await rules_client.get("/rules/versions", params={"limit": 2})).json()
    numbers = [v["version"] for v in first["items"]]
    assert numbers == sorted(numbers, reverse=True)
    assert "document" not in first["items"][0]
    assert first["next_after"] == str(numbers[-1])
    following = (await rules_client.get("/rules/versions", params={"after": first["next_after"], "limit": 1})).json()
    assert [v["version"] for v in following["items"]] == [numbers[-1] - 1]


async def test_unknown_versions_are_404(rules_client):
    missing = 999_999
    assert (await rules_client.get(f"/rules/versions/{missing}")).status_code == 404
    assert (await rules_client.get(f"/rules/versions/{missing}/diff")).status_code == 404
    assert (await activate(rules_client, missing)).status_code == 404
    simulated = await rules_client.post(f"/rules/versions/{missing}/simulate", json={"recent": 1})
    assert simulated.status_code == 404
    existing = (await create(rules_client, document()))["version"]
    against_missing = await rules_client.get(f"/rules/versions/{existing}/diff", params={"against": str(missing)})
    assert against_missing.status_code == 404
    assert (await rules_client.get(f"/rules/versions/{existing}/diff", params={"against": "latest"})).status_code == 422


async def test_changes_need_a_reason_or_a_note(rules_client):
    assert "note" in errors(await rules_client.post("/rules/versions", json={"document": document()}))
    blank = await rules_client.post("/rules/versions", json={"document": document(), "note": "  "})
    assert "note" in errors(blank)
    version = (await create(rules_client, document()))["version"]
    assert "reason" in errors(await rules_client.post(f"/rules/versions/{version}/activate", json={}))
    assert "reason" in errors(await rules_client.post("/rules/rollback", json={"reason": ""}))
    unknown_base = await rules_client.post(
        "/rules/versions", json={"document": document(), "note": "x", "based_on": 999_999}
    )
    assert errors(unknown_base) == {"based_on": "policy version 999999 not found"}


# --- simulation ------------------------------------------------------------------------------------------------


def order_body(order_id: str, sku: str, quantity: int = 1) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": f"C-{order_id}",
        "ship_to": {
            "name": "Pat", "line1": "500 Congress Ave", "city": "Austin", "region": "TX", "postal_code": "78701",
            "country": "US", "location": AUSTIN.model_dump(),
        },
        "lines": [{"line_id": "1", "sku": sku, "quantity": quantity, "unit_price_minor": 1999}],
    }  # fmt: skip


async def seeded(uow: UowFactory) -> SeededNetwork:
    """Two DCs with the same stock: one near Austin (Dallas), one far (Newark)."""
    return await build_network(
        uow, [NodeSpec("NEAR", DALLAS), NodeSpec("FAR", NEWARK)], {("NEAR", "SKU"): 10, ("FAR", "SKU"): 10}
    )


async def record_request(uow: UowFactory, order: Order) -> None:
    """A plan recorded with what it was asked for, as the sourcing activity records it."""
    request = {"order": order.model_dump(mode="json"), "destination": AUSTIN.model_dump(), "attempt": 1}
    async with uow() as u:
        await u.session.execute(
            insert(OrderPlan).values(
                plan_id=f"{order.order_id}:plan-1", order_id=order.order_id, attempt=1, policy_version="builtin",
                plan={}, request=request, created_at=datetime.now(UTC) + timedelta(days=365),
            )
        )  # fmt: skip
        await u.commit()


async def test_simulate_compares_the_active_policy_with_a_version(rules_client, rules_uow):
    network = await seeded(rules_uow)
    sku = network.sku("SKU")
    far_first = await create(rules_client, document("Far first", **prefer(network.node("FAR"))))
    tag = network.prefix
    recent = Order(
        order_id=f"R{tag}",
        customer_id="C-R",
        ship_to=Address(
            name="Pat", line1="1 Main", city="Austin", region="TX", postal_code="78701", country="US", location=AUSTIN
        ),
        lines=[OrderLine(line_id="1", sku=sku, quantity=2)],
        placed_at=datetime.now(UTC) - timedelta(days=1),
    )
    await record_request(rules_uow, recent)
    geocoded = order_body(f"G{tag}", sku)
    del geocoded["ship_to"]["location"]  # located from "Austin, TX" by the geocoder

    response = await rules_client.post(
        f"/rules/versions/{far_first['version']}/simulate",
        json={
            "orders": [
                order_body(f"S{tag}", sku),
                order_body(f"X{tag}", sku, quantity=50),  # more than any node has, under either policy
                order_body(f"U{tag}", f"NOPE-{tag}"),
                geocoded,
            ],
            "recent": 1,
        },
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["version_label"], result["active_version_label"]) == (far_first["version_label"], "builtin")
    by_id = {o["order_id"]: o for o in result["orders"]}
    assert [(o["order_id"], o["source"]) for o in result["orders"]] == [
        (f"S{tag}", "supplied"),
        (f"X{tag}", "supplied"),
        (f"G{tag}", "supplied"),
        (f"R{tag}", "recent"),
    ]
    assert result["skipped"] == [{"order_id": f"U{tag}", "source": "supplied", "reason": f"unknown SKU(s): NOPE-{tag}"}]

    moved = by_id[f"S{tag}"]
    assert moved["changed"] is True
    assert "nodes" in moved["differences"]
    assert moved["active"]["node_ids"] == [network.node("NEAR")]
    assert moved["candidate"]["node_ids"] == [network.node("FAR")]
    assert moved["candidate"]["distance_km"] > moved["active"]["distance_km"]
    assert by_id[f"R{tag}"]["candidate"]["node_ids"] == [network.node("FAR")]
    assert by_id[f"G{tag}"]["active"]["node_ids"] == [network.node("NEAR")]
    assert by_id[f"G{tag}"]["active"]["distance_km"] == pytest.approx(moved["active"]["distance_km"], abs=25)

    short = by_id[f"X{tag}"]
    assert short["changed"] is False
    assert not short["active"]["fulfillable"]
    assert not short["candidate"]["fulfillable"]
    assert short["active"]["reason"]

    summary = result["summary"]
    assert (summary["orders"], summary["changed"]) == (4, 3)
    assert summary["by_difference"]["nodes"] == 3
    for side in ("active", "candidate"):
        assert (summary[side]["fulfillable"], summary[side]["unfulfillable"], summary[side]["shipments"]) == (3, 1, 3)
    assert summary["candidate"]["distance_km"] > summary["active"]["distance_km"]


async def test_simulating_the_active_version_changes_nothing(empty_client):
    # On a database of its own: this test activates a version.
    response = await empty_client.post("/rules/versions", json={"document": document(), "note": "x"})
    version = response.json()["version"]
    assert (await activate(empty_client, version)).status_code == 200
    result = (await empty_client.post(f"/rules/versions/{version}/simulate", json={"recent": 5})).json()
    assert (result["active_version_label"], result["summary"]["orders"], result["orders"]) == ("v1", 0, [])
