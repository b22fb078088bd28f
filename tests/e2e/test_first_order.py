"""A first real order end to end: HTTP in, workflow, Postgres, WMS release over HTTP, signed webhooks back."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from infra.temporal import DATA_CONVERTER
from integrations.webhooks import SIGNATURE_HEADER, sign
from tests.e2e.conftest import WEBHOOK_SECRET, Stack, order_body, order_stage
from tests.support import SeededNetwork, eventually

pytestmark = [pytest.mark.db, pytest.mark.e2e]


async def test_order_placed_over_http_is_delivered(
    http: httpx.AsyncClient, simulator_http: httpx.AsyncClient, network: SeededNetwork
) -> None:
    body = order_body(network)
    created = await http.post("/orders", json=body)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/orders/{body['order_id']}"

    await eventually(lambda: order_stage(http, body["order_id"]), lambda s: s == "completed", timeout_s=60)
    order = (await http.get(f"/orders/{body['order_id']}")).json()
    assert order["workflow"]["status"] == "completed"
    [shipment] = order["shipments"]
    # Austin is the nearest node to an Austin address: the geocoder found the city, the engine ranked it.
    assert shipment["node_id"] == network.node("AUSTIN")
    assert shipment["stage"] == "delivered"
    assert shipment["tracking_number"]
    events = [e["event"] for e in order["timeline"]]
    for expected in ("shipment picked", "shipment packed", "shipment shipped", "shipment delivered"):
        assert expected in events

    stats = (await simulator_http.get("/wms/releases")).json()
    mine = [r for r in stats["releases"] if r["order_id"] == body["order_id"]]
    assert [(r["shipment_id"], r["attempts"]) for r in mine] == [(shipment["shipment_id"], 1)]
    # The tracking number is registered with the carrier while the parcel is on its way, once; a parcel delivered
    # before the order's next turn needs no registration. Either way the timeline and the carrier agree.
    registrations = (await simulator_http.get("/carrier/trackings")).json()["registrations"]
    mine = [r for r in registrations if r["order_id"] == body["order_id"]]
    registered = [e for e in order["timeline"] if e["event"] == "tracking registered"]
    assert [(r["tracking_number"], r["attempts"]) for r in mine] == [(shipment["tracking_number"], 1)] * len(registered)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["lines"][0].update(quantity=0), "lines.0.quantity"),
        (lambda b: b.pop("ship_to"), "ship_to"),
        (lambda b: b["ship_to"].update(country="usa"), "ship_to.country"),
        (lambda b: b.update(order_id="bad id with spaces"), "order_id"),
        (lambda b: b.update(lines=[]), "lines"),
        (lambda b: b.update(colour="red"), "colour"),
        (lambda b: b["lines"].append(dict(b["lines"][0])), "lines"),
    ],
    ids=["zero-quantity", "missing-address", "bad-country", "bad-order-id", "no-lines", "unknown-field", "dup-line"],
)
async def test_malformed_order_is_refused_naming_the_field(
    http: httpx.AsyncClient, network: SeededNetwork, mutate: Any, field: str
) -> None:
    body = order_body(network)
    mutate(body)
    response = await http.post("/orders", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert field in [e["field"] for e in payload["errors"]], payload
    assert field in payload["message"]
    if "order_id" in body and field != "order_id":
        assert (await http.get(f"/orders/{body['order_id']}")).status_code == 404, "nothing may be started"


async def test_duplicate_order_never_starts_a_second_workflow(
    http: httpx.AsyncClient, stack: Stack, network: SeededNetwork
) -> None:
    body = order_body(network)
    first = await http.post("/orders", json=body)
    again = await http.post("/orders", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["workflow"]["run_id"] == first.json()["workflow"]["run_id"]

    changed = order_body(network, order_id=body["order_id"], quantity=2)
    conflict = await http.post("/orders", json=changed)
    assert conflict.status_code == 409
    assert conflict.json()["workflow"]["run_id"] == first.json()["workflow"]["run_id"]

    client = await Client.connect(stack.temporal_address, data_converter=DATA_CONVERTER)
    runs = [w async for w in client.list_workflows(f"WorkflowId = 'order:{body['order_id']}'")]
    assert len(runs) == 1


async def test_unknown_order_is_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/orders/NOPE-404")
    assert response.status_code == 404
    assert "NOPE-404" in response.json()["message"]


async def test_unsigned_webhook_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post("/webhooks/wms", content=b'{"event_id": "x"}')
    assert response.status_code == 401
    assert "Orch-Signature" in response.json()["message"]


async def test_webhook_for_a_stage_only_we_decide_is_refused_naming_the_field(http: httpx.AsyncClient) -> None:
    body = json.dumps(
        {
            "event_id": "evt-planned",
            "order_id": "A-1",
            "shipment_id": "A-1:p1:X",
            "stage": "planned",
            "occurred_at": "2026-11-22T10:00:00Z",
        }
    ).encode()
    signature = sign(WEBHOOK_SECRET, int(time.time()), body)
    response = await http.post("/webhooks/wms", content=body, headers={SIGNATURE_HEADER: signature})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["stage"]


async def test_simulator_behaviour_patch_changes_only_what_is_given(simulator_http: httpx.AsyncClient) -> None:
    await simulator_http.put("/control/behaviour", json={"step_delay_s": 0.7})
    changed = (await simulator_http.patch("/control/behaviour", json={"hold_events": True})).json()
    assert (changed["step_delay_s"], changed["hold_events"]) == (0.7, True)
    await simulator_http.put("/control/behaviour", json={"step_delay_s": 0.2})
