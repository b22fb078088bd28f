"""Subscriptions and dead letters over the API: happy paths, 404s, 409 for a replay of what is not dead, 422
naming the field. On a database of its own: an active subscription would collect every other test's events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from infra.db.tables import OutboxDelivery
from infra.db.uow import UowFactory
from infra.settings import Settings
from tests.activities.outbox_support import publish
from tests.private_db import private_database, unit_of_work_factory
from tests.support import IMMEDIATE, api_key_headers

pytestmark = pytest.mark.db

SECRET = "subscriber-secret-0123456789"


@dataclass
class Api:
    http: httpx.AsyncClient
    uow: UowFactory


@pytest_asyncio.fixture
async def api(postgres_server_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[Api]:
    with private_database(postgres_server_url, "subscriptions") as url:
        app = create_app(Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": url}), temporal=temporal_env.client)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://api", headers=await api_key_headers(app)
            ) as http,
            unit_of_work_factory(url) as uow,
        ):
            yield Api(http, uow)


async def test_subscribe_list_and_deactivate(api: Api) -> None:
    created = await api.http.post(
        "/subscriptions",
        json={"url": "https://oms.example/events", "secret": SECRET, "event_types": ["order.completed", "order.*"]},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["active"] is True
    assert body["event_types"] == ["order.completed", "order.*"]
    assert "secret" not in body
    sub = body["subscription_id"]

    listed = (await api.http.get("/subscriptions")).json()
    assert [s["subscription_id"] for s in listed] == [sub]

    gone = await api.http.delete(f"/subscriptions/{sub}")
    assert gone.status_code == 200
    assert gone.json()["active"] is False
    assert (await api.http.get("/subscriptions")).json()[0]["active"] is False
    # Deactivated: later events are not queued for it.
    result = await publish(api.uow, "API-1", [1])
    assert result.deliveries == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"secret": SECRET}, "url"),
        ({"url": "ftp://oms.example", "secret": SECRET}, "url"),
        ({"url": "https://oms.example", "secret": "short"}, "secret"),
        ({"url": "https://oms.example", "secret": SECRET, "event_types": ["order.shipped_to_mars"]}, "event_types.0"),
        (
            {"url": "https://oms.example", "secret": SECRET, "event_types": ["order.completed", "parcel.*"]},
            "event_types.1",
        ),
        ({"url": "https://oms.example", "secret": SECRET, "colour": "blue"}, "colour"),
    ],
)
async def test_bad_subscriptions_are_refused_naming_the_field(api: Api, body: dict[str, object], field: str) -> None:
    response = await api.http.post("/subscriptions", json=body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]
    assert (await api.http.get("/subscriptions")).json() == []


async def test_unknown_subscriptions_are_404(api: Api) -> None:
    assert (await api.http.delete("/subscriptions/sub_nope")).status_code == 404
    assert (await api.http.get("/subscriptions/sub_nope/dead-letters")).status_code == 404
    assert (await api.http.post("/subscriptions/sub_nope/dead-letters/X:status:1/replay")).status_code == 404
    assert (await api.http.get(f"/subscriptions/{'x' * 65}/dead-letters")).status_code == 422


async def test_dead_letters_are_listed_and_replayed(api: Api) -> None:
    sub = (await api.http.post("/subscriptions", json={"url": "http://oms.invalid/e", "secret": SECRET})).json()[
        "subscription_id"
    ]
    await publish(api.uow, "API-2", [1, 2])
    async with api.uow() as u:  # as the dispatcher leaves a delivery that failed every attempt
        await u.session.execute(
            update(OutboxDelivery)
            .where(OutboxDelivery.event_id == "API-2:status:1")
            .values(state="dead", attempts=12, last_error="HTTP 500: boom")
        )
        await u.commit()

    dead = (await api.http.get(f"/subscriptions/{sub}/dead-letters")).json()
    assert [(d["event_id"], d["state"], d["attempts"], d["last_error"]) for d in dead] == [
        ("API-2:status:1", "dead", 12, "HTTP 500: boom")
    ]
    not_dead = await api.http.post(f"/subscriptions/{sub}/dead-letters/API-2:status:2/replay")
    assert not_dead.status_code == 409
    assert not_dead.json()["state"] == "pending"
    assert (await api.http.post(f"/subscriptions/{sub}/dead-letters/API-2:status:9/replay")).status_code == 404

    replayed = await api.http.post(f"/subscriptions/{sub}/dead-letters/API-2:status:1/replay")
    assert replayed.status_code == 200
    assert (replayed.json()["state"], replayed.json()["attempts"]) == ("pending", 0)
    assert (await api.http.get(f"/subscriptions/{sub}/dead-letters")).json() == []

    events = (await api.http.get("/orders/API-2/events")).json()
    assert [(e["seq"], e["type"]) for e in events] == [(1, "order.received"), (2, "order.validated")]
    assert (await api.http.get("/orders/NO-SUCH-ORDER/events")).json() == []
