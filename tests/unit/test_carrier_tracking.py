"""The simulated carrier's tracking endpoint (``GET /carrier/tracking/{tracking_number}``) through the real client
(``WmsClient.track``): it answers how far the parcel has got, whether or not the webhook saying so arrived."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio

from domain.lifecycle import ShipmentStage
from integrations.partners import Partners
from integrations.webhooks import ShipmentWebhookEvent
from tests.support import eventually
from tests.unit.test_simulator_partners import DELIVERY, Receiver, Sim, settle, simulator_posting_to


@pytest_asyncio.fixture
async def carrier() -> AsyncIterator[Sim]:
    receiver = Receiver()
    async with simulator_posting_to(receiver.app()) as http:
        yield Sim(http=http, partners=Partners.over(http), receiver=receiver)
        for gate in receiver.gates.values():
            gate.set()


async def tracking_number_of(sim: Sim, shipment_id: str) -> str:
    shipped = await eventually(
        lambda: _shipped(sim, shipment_id), lambda e: e is not None and e.tracking_number is not None, timeout_s=5
    )
    assert shipped is not None
    assert shipped.tracking_number is not None
    return shipped.tracking_number


async def _shipped(sim: Sim, shipment_id: str) -> ShipmentWebhookEvent | None:
    return next(
        (e for e in sim.receiver.events if e.shipment_id == shipment_id and e.stage is ShipmentStage.SHIPPED), None
    )


async def test_a_delivered_parcel_is_reported_delivered(carrier: Sim) -> None:
    request = await carrier.release()
    assert await carrier.events_of(request.shipment_id, 6) == DELIVERY
    number = await tracking_number_of(carrier, request.shipment_id)
    status = await carrier.partners.wms.track(number)
    assert status is not None
    assert (status.tracking_number, status.shipment_id, status.stage) == (
        number,
        request.shipment_id,
        ShipmentStage.DELIVERED,
    )


async def test_the_stage_reached_is_answered_while_its_webhook_is_held(carrier: Sim) -> None:
    # The in-transit webhook is held at the API's door: the carrier knows more than the orchestrator heard.
    carrier.receiver.gates[ShipmentStage.IN_TRANSIT] = asyncio.Event()
    request = await carrier.release()
    assert await carrier.events_of(request.shipment_id, 4) == DELIVERY[:4]
    number = await tracking_number_of(carrier, request.shipment_id)
    await settle()
    status = await carrier.partners.wms.track(number)
    assert status is not None
    assert status.stage is ShipmentStage.IN_TRANSIT
    assert carrier.receiver.of(request.shipment_id) == DELIVERY[:4]


async def test_an_unknown_or_not_yet_shipped_parcel_is_a_404(carrier: Sim) -> None:
    assert await carrier.partners.wms.track("SIM-NEVER-ISSUED") is None
    raw = await carrier.http.get("/carrier/tracking/SIM-NEVER-ISSUED")
    assert raw.status_code == 404

    # Held at "picked": the parcel has not reached the carrier, so its (future) tracking number is unknown.
    carrier.receiver.gates[ShipmentStage.PICKED] = asyncio.Event()
    request = await carrier.release()
    await settle()
    releases = (await carrier.http.get("/wms/releases")).json()["releases"]
    [record] = [r for r in releases if r["shipment_id"] == request.shipment_id]
    assert record["stage"] == ShipmentStage.PICKED
    number = f"SIM{str(record['release_id'])[-10:].upper()}"  # as ``Warehouse.tracking_number`` makes it
    assert await carrier.partners.wms.track(number) is None
