"""Releasing shipments to fulfilment providers, stopping them, and following up parcels already gone; each
exactly once in effect (the workflow's idempotency key is sent to the provider as-is). Releases and cancels go
to the endpoint of the shipment's node, looked up here so the workflow's payloads stay as they are."""

from __future__ import annotations

import structlog
from temporalio import activity

from activities import business_failures
from domain.errors import NodeRejected
from infra.db.uow import UowFactory
from integrations.wms import (
    CancelRequest,
    FollowUpRequest,
    ProviderRejected,
    ReleaseLine,
    ReleaseRequest,
    TrackingRegistration,
    WmsClient,
)
from workflows.contracts import (
    ActivityName,
    CancelReleaseInput,
    CancelReleaseResult,
    RegisterTrackingInput,
    RegisterTrackingResult,
    ReleaseShipmentInput,
    ReleaseShipmentResult,
    RequestFollowUpInput,
    RequestFollowUpResult,
    ShipmentStatusInput,
    ShipmentStatusResult,
    TrackParcelInput,
    TrackParcelResult,
)

log = structlog.get_logger(__name__)


class FulfilmentActivities:
    def __init__(self, wms: WmsClient, uow: UowFactory) -> None:
        self._wms = wms
        self._uow = uow

    async def _endpoint(self, node_id: str) -> str | None:
        """The base URL of the node's provider; None: the default endpoint (also for a node not in the network,
        which sourcing never plans, so only a hand-made release can name one)."""
        async with self._uow() as uow:
            record = await uow.network.get_node(node_id)
        if record is None:
            log.warning("releasing for a node not in the network: default endpoint", node_id=node_id)
            return None
        return None if record.spec.endpoint is None else str(record.spec.endpoint)

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
            method=shipment.method,
        )
        endpoint = await self._endpoint(shipment.node_id)
        log.info("releasing shipment", shipment_id=shipment.shipment_id, node_id=shipment.node_id, endpoint=endpoint)
        async with business_failures():
            try:
                # The key comes from the order, so a retry or a reset sends the same key and the provider
                # recognises the repeat; connection errors and 5xx propagate and are retried by Temporal.
                ack = await self._wms.release(request, idempotency_key=input.idempotency_key, endpoint=endpoint)
            except ProviderRejected as err:
                raise NodeRejected(f"{shipment.node_id} refused {shipment.shipment_id}: {err.reason}") from err
        return ReleaseShipmentResult(
            provider_reference=ack.release_id, accepted_at=ack.accepted_at, replayed=ack.replayed
        )

    @activity.defn(name=ActivityName.CANCEL_RELEASE)
    async def cancel_release(self, input: CancelReleaseInput) -> CancelReleaseResult:
        """Too late (the shipment has left) is a result, ``cancelled`` False, not a failure."""
        request = CancelRequest(
            order_id=input.order_id,
            node_id=input.node_id,
            release_id=input.provider_reference,
            reason=input.reason,
        )
        endpoint = await self._endpoint(input.node_id)
        ack = await self._wms.cancel(
            input.shipment_id, request, idempotency_key=input.idempotency_key, endpoint=endpoint
        )
        log.info(
            "release cancelled" if ack.cancelled else "too late to cancel the release",
            shipment_id=input.shipment_id,
            node_id=input.node_id,
            stage=ack.stage,
            replayed=ack.replayed,
        )
        return CancelReleaseResult(cancelled=ack.cancelled, stage=ack.stage)

    @activity.defn(name=ActivityName.REQUEST_FOLLOW_UP)
    async def request_follow_up(self, input: RequestFollowUpInput) -> RequestFollowUpResult:
        request = FollowUpRequest(
            order_id=input.order_id,
            shipment_id=input.shipment_id,
            kind=input.kind,
            reason=input.reason,
            tracking_number=input.tracking_number,
        )
        ack = await self._wms.request_follow_up(request, idempotency_key=input.idempotency_key)
        log.info("follow-up requested", shipment_id=input.shipment_id, kind=input.kind, reference=ack.reference)
        return RequestFollowUpResult(reference=ack.reference)

    @activity.defn(name=ActivityName.TRACK_PARCEL)
    async def track_parcel(self, input: TrackParcelInput) -> TrackParcelResult:
        """The carrier's latest stage for a quiet parcel. Unknown to the carrier (or known under another shipment)
        is an empty result, not a failure: the workflow then traces and escalates as before."""
        status = await self._wms.track(input.tracking_number)
        if status is None or status.shipment_id != input.shipment_id:
            log.info(
                "carrier has no news of the parcel",
                shipment_id=input.shipment_id,
                tracking_number=input.tracking_number,
                carrier_shipment_id=None if status is None else status.shipment_id,
            )
            return TrackParcelResult()
        log.info("carrier polled", shipment_id=input.shipment_id, stage=status.stage)
        return TrackParcelResult(stage=status.stage, occurred_at=status.occurred_at)

    @activity.defn(name=ActivityName.SHIPMENT_STATUS)
    async def shipment_status(self, input: ShipmentStatusInput) -> ShipmentStatusResult:
        """The provider's own view of a shipment whose acknowledgement is overdue: its webhooks may have gone
        missing while the work went on. Never received (404) is an empty result: the workflow escalates."""
        endpoint = await self._endpoint(input.node_id)
        status = await self._wms.status(input.shipment_id, endpoint=endpoint)
        if status is None or status.shipment_id != input.shipment_id:
            log.info("provider does not know the shipment", shipment_id=input.shipment_id, node_id=input.node_id)
            return ShipmentStatusResult()
        log.info("provider polled", shipment_id=input.shipment_id, node_id=input.node_id, stage=status.stage)
        return ShipmentStatusResult(
            stage=status.stage, occurred_at=status.occurred_at, tracking_number=status.tracking_number
        )

    @activity.defn(name=ActivityName.REGISTER_TRACKING)
    async def register_tracking(self, input: RegisterTrackingInput) -> RegisterTrackingResult:
        request = TrackingRegistration(
            order_id=input.order_id, shipment_id=input.shipment_id, tracking_number=input.tracking_number
        )
        try:
            ack = await self._wms.register_tracking(request, idempotency_key=input.idempotency_key)
        except ProviderRejected as err:
            # An answer, not a failure: the parcel is followed by polling when its events stop.
            log.warning("carrier refused the tracking registration", shipment_id=input.shipment_id, reason=err.reason)
            return RegisterTrackingResult(refused=f"{err.status_code}: {err.reason}")
        log.info(
            "tracking registered",
            shipment_id=input.shipment_id,
            tracking_number=input.tracking_number,
            reference=ack.reference,
            replayed=ack.replayed,
        )
        return RegisterTrackingResult(reference=ack.reference)
