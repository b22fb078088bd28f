"""Releases and cancels go to the endpoint of the shipment's node: a node that names its own endpoint is served
there, a node that names none by the default (``wms_url``). Two in-process simulators stand for the default WMS
and a 3PL, each behind its own httpx ASGI transport; their release lists show who received what."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Response
from temporalio.testing import ActivityEnvironment

from activities.fulfilment import FulfilmentActivities
from domain.network import NodeSpec
from domain.orders import Address
from domain.sourcing import Allocation, PlannedShipment
from infra.db.uow import UowFactory
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from integrations.wms import WmsClient
from workflows.contracts import CancelReleaseInput, ReleaseShipmentInput

pytestmark = pytest.mark.db

THREE_PL = "http://3pl.test/"
ADDRESS = Address(name="Ada", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US")


@dataclass
class Sims:
    default: httpx.AsyncClient
    three_pl: httpx.AsyncClient
    wms: WmsClient


@pytest_asyncio.fixture
async def sims() -> AsyncIterator[Sims]:
    receiver = FastAPI()

    @receiver.post("/webhooks/wms")
    async def accept() -> Response:
        return Response(status_code=202)

    default_app = create_simulator_app(SimulatorConfig("http://api/webhooks/wms", "secret", Behaviour(step_delay_s=0)))
    three_pl_app = create_simulator_app(SimulatorConfig("http://api/webhooks/wms", "secret", Behaviour(step_delay_s=0)))
    async with (
        default_app.router.lifespan_context(default_app),
        three_pl_app.router.lifespan_context(three_pl_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://api") as api,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=default_app), base_url="http://sim") as default,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=three_pl_app), base_url=THREE_PL) as three_pl,
    ):
        default_app.state.http = api
        three_pl_app.state.http = api
        for sim in (default, three_pl):
            await sim.patch("/control/behaviour", json={"hold_events": True})
        yield Sims(default, three_pl, WmsClient(default, endpoints={THREE_PL: three_pl}.__getitem__))


def node(node_id: str, kind: str, **changes: Any) -> NodeSpec:
    return NodeSpec.model_validate(
        {
            "node_id": node_id,
            "name": f"{node_id} node",
            "kind": kind,
            "location": {"lat": 30.27, "lon": -97.74},
            "address": {"city": "Austin", "region": "TX", "country": "US"},
            "timezone": "America/Chicago",
            "capabilities": ["ship"],
            **changes,
        }
    )


def release(order_id: str, node_id: str) -> ReleaseShipmentInput:
    shipment = PlannedShipment(
        shipment_id=f"{order_id}:p1:{node_id}",
        node_id=node_id,
        allocations=[Allocation(line_id="1", sku="DRILL", node_id=node_id, quantity=1)],
    )
    return ReleaseShipmentInput(
        idempotency_key=f"{order_id}:release:p1:{node_id}",
        order_id=order_id,
        shipment=shipment,
        ship_to=ADDRESS,
        service_level="standard",
    )


async def released(sim: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """The releases a simulator holds, by shipment id."""
    return {r["shipment_id"]: r for r in (await sim.get("/wms/releases")).json()["releases"]}


async def test_release_and_cancel_go_to_the_nodes_endpoint_or_the_default(uow_factory: UowFactory, sims: Sims) -> None:
    suffix = uuid.uuid4().hex[:8].upper()
    own, plain = f"TPL-{suffix}", f"DC-{suffix}"
    async with uow_factory() as uow:
        await uow.network.upsert_node(node(own, "3pl", endpoint=THREE_PL))
        await uow.network.upsert_node(node(plain, "dc"))
        await uow.commit()
    activities = FulfilmentActivities(sims.wms, uow_factory)
    env = ActivityEnvironment()
    order_id = f"A-{suffix}"

    to_own = await env.run(activities.release_shipment, release(order_id, own))
    to_plain = await env.run(activities.release_shipment, release(order_id, plain))
    at_3pl, at_default = await released(sims.three_pl), await released(sims.default)
    assert set(at_3pl) == {f"{order_id}:p1:{own}"}
    assert f"{order_id}:p1:{plain}" in at_default
    assert f"{order_id}:p1:{own}" not in at_default
    # Same protocol and same keys wherever the call goes.
    assert at_3pl[f"{order_id}:p1:{own}"]["idempotency_key"] == f"{order_id}:release:p1:{own}"
    assert at_3pl[f"{order_id}:p1:{own}"]["release_id"] == to_own.provider_reference
    assert at_default[f"{order_id}:p1:{plain}"]["idempotency_key"] == f"{order_id}:release:p1:{plain}"

    # Each cancel reaches the provider that holds the release, and stops it there.
    for node_id, reference in ((own, to_own.provider_reference), (plain, to_plain.provider_reference)):
        cancelled = await env.run(
            activities.cancel_release,
            CancelReleaseInput(
                idempotency_key=f"{order_id}:p1:{node_id}:cancel",
                order_id=order_id,
                shipment_id=f"{order_id}:p1:{node_id}",
                node_id=node_id,
                provider_reference=reference,
                reason="customer_request",
            ),
        )
        assert cancelled.cancelled, (node_id, cancelled)
    assert (await released(sims.three_pl))[f"{order_id}:p1:{own}"]["cancelled"] is True
    assert (await released(sims.default))[f"{order_id}:p1:{plain}"]["cancelled"] is True


async def test_a_node_not_in_the_network_goes_to_the_default(uow_factory: UowFactory, sims: Sims) -> None:
    order_id = f"A-{uuid.uuid4().hex[:8].upper()}"
    activities = FulfilmentActivities(sims.wms, uow_factory)
    await ActivityEnvironment().run(activities.release_shipment, release(order_id, "NOWHERE"))
    assert f"{order_id}:p1:NOWHERE" in await released(sims.default)
    assert await released(sims.three_pl) == {}
