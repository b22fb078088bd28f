"""Releasing shipments to fulfilment providers, exactly once in effect."""

from __future__ import annotations

import structlog
from temporalio import activity

from activities import business_failures
from domain.errors import NodeRejected
from integrations.wms import ProviderRejected, ReleaseLine, ReleaseRequest, WmsClient
from workflows.contracts import ActivityName, ReleaseShipmentInput, ReleaseShipmentResult

log = structlog.get_logger(__name__)


class FulfilmentActivities:
    def __init__(self, wms: WmsClient) -> None:
        self._wms = wms

    @activity.defn(name=ActivityName.RELEASE_SHIPMENT)
    async def release_shipment(self, input: ReleaseShipmentInput) -> ReleaseShipmentResult:
        shipment = input.shipment
        request = ReleaseRequest(
            order_id=input.order_id,
            shipment_id=shipment.shipment_id,
            node_id=shipment.node_id,
            service_level=input.service_level,
            ship_to=input.ship_to,
            lines=[ReleaseLine(line_id=a.line_id, sku=a.sku, quantity=a.quantity) for a in shipment.allocations],
        )
        log.info("releasing shipment", shipment_id=shipment.shipment_id, node_id=shipment.node_id)
        async with business_failures():
            try:
                # The key comes from the order, so a retry or a reset sends the same key and the provider
                # recognises the repeat; connection errors and 5xx propagate and are retried by Temporal.
                ack = await self._wms.release(request, idempotency_key=input.idempotency_key)
            except ProviderRejected as err:
                raise NodeRejected(f"{shipment.node_id} refused {shipment.shipment_id}: {err.reason}") from err
        return ReleaseShipmentResult(
            provider_reference=ack.release_id, accepted_at=ack.accepted_at, replayed=ack.replayed
        )
