"""The simulated provider's status call (``GET /wms/shipments/{id}``) and the carrier's tracking registrations
(``POST /carrier/trackings``), through the real client (``WmsClient.status``, ``WmsClient.register_tracking``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from domain.lifecycle import ShipmentStage
from integrations.partners import Partners
from integrations.simulator.warehouse import tracking_number_for
from integrations.wms import ProviderRejected, TrackingRegistration
from tests.unit.test_simulator_partners import DELIVERY, Receiver, Sim, settle, simulator_posting_to


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Sim]:
    receiver = Receiver()
    async with simulator_posting_to(receiver.app()) as http:
        yield Sim(http=http, partners=Partners.over(http), receiver=receiver)
        for gate in receiver.gates.values():
            gate.set()


async def test_work_done_while_its_webhooks_are_stuck_is_answered(provider: Sim) -> None:
    # The picked webhook is held at the API's door: the node has picked, the orchestrator heard "acknowledged".
    provider.receiver.gates[ShipmentStage.PICKED] = asyncio.Event()
    request = await provider.release()
    await settle()
    status = await provider.partners.wms.status(request.shipment_id)
    assert status is not None
    assert (status.shipment_id, status.stage, status.tracking_number) == (request.shipment_id, "picked", None)
    assert status.release_id == (await provider.release_record(request.shipment_id))["release_id"]
    assert provider.receiver.of(request.shipment_id) == DELIVERY[:1]


async def test_a_release_received_but_not_acknowledged_is_released(provider: Sim) -> None:
    await provider.behave(hold_events=True)
    request = await provider.release()
    await settle()
    status = await provider.partners.wms.status(request.shipment_id)
    assert status is not None
    assert status.stage is ShipmentStage.RELEASED


async def test_a_delivered_shipment_carries_its_tracking_number(provider: Sim) -> None:
    request = await provider.release()
    assert await provider.events_of(request.shipment_id, 6) == DELIVERY
    status = await provider.partners.wms.status(request.shipment_id)
    assert status is not None
    assert status.stage is ShipmentStage.DELIVERED
    assert status.tracking_number == tracking_number_for(status.release_id)


async def test_a_shipment_never_received_is_none(provider: Sim) -> None:
    assert await provider.partners.wms.status("S-NEVER:p1:DC-1") is None
    assert (await provider.http.get("/wms/shipments/S-NEVER:p1:DC-1")).status_code == 404


async def test_a_tracking_number_is_registered_once_per_key(provider: Sim) -> None:
    request = await provider.release()
    assert (await provider.events_of(request.shipment_id, 4))[:4] == DELIVERY[:4]
    number = tracking_number_for((await provider.release_record(request.shipment_id))["release_id"])
    registration = TrackingRegistration(
        order_id=request.order_id, shipment_id=request.shipment_id, tracking_number=number
    )
    key = f"{request.shipment_id}:track:{number}"
    first = await provider.partners.wms.register_tracking(registration, idempotency_key=key)
    again = await provider.partners.wms.register_tracking(registration, idempotency_key=key)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.reference == first.reference
    stats = (await provider.http.get("/carrier/trackings")).json()
    mine = [r for r in stats["registrations"] if r["shipment_id"] == request.shipment_id]
    assert [(r["tracking_number"], r["attempts"], r["reference"]) for r in mine] == [(number, 2, first.reference)]


async def test_a_number_the_carrier_never_issued_is_refused(provider: Sim) -> None:
    registration = TrackingRegistration(order_id="S-X", shipment_id="S-X:p1:DC-1", tracking_number="NOT-OURS")
    with pytest.raises(ProviderRejected) as refused:
        await provider.partners.wms.register_tracking(registration, idempotency_key="S-X:p1:DC-1:track:NOT-OURS")
    assert refused.value.status_code == 422
    assert "NOT-OURS" in refused.value.reason
