"""The fulfilment-provider port: what a WMS, 3PL, store or dropship vendor implements to receive releases,
stop them, and (through its carrier) act on parcels already gone.

Wire protocol (JSON over HTTPS, every write carries an ``Idempotency-Key`` header):

- ``POST /wms/releases`` with a ``ReleaseRequest`` body. The provider answers ``201`` with a ``ReleaseAck``
  the first time and ``200`` with the same ack for a repeat of the key; ``409`` or ``422`` mean it refuses
  the shipment (a business rejection), anything else is retried by the orchestrator.
- ``POST /wms/shipments/{shipment_id}/cancel`` with a ``CancelRequest`` body. Keyed by our shipment id (not the
  provider's release id), so a shipment whose release was sent but never acknowledged can be stopped too.
  ``200`` with a ``CancelAck`` (``cancelled: true``; ``stage`` is how far the shipment got, None if it never
  arrived, in which case the provider refuses a late release of it). ``409`` with a ``CancelAck`` of
  ``cancelled: false`` means too late: the shipment has left (``stage`` says how far it got). A repeat of
  the key answers the first outcome with ``replayed: true``. Anything else is retried.
- ``GET /wms/shipments/{shipment_id}``: how far the provider has got with a shipment, ``200`` with a
  ``ShipmentStatus`` (``stage`` ``released`` while it is received but not yet acknowledged); ``404`` means the
  provider never received it (an answer, not an error). Asked when a node's acknowledgement is overdue, in case
  its webhooks, not its work, went missing.
- ``POST /carrier/trackings`` with a ``TrackingRegistration`` body, once a parcel has a tracking number: the
  carrier is to send that parcel's events (in transit, delayed, lost, delivered) to our webhook. ``201`` with a
  ``TrackingRegistered`` the first time, ``200`` with the same answer for a repeat of the key; ``409`` or
  ``422`` refuse it (the parcel is then followed by polling), anything else is retried.
- ``POST /carrier/follow-ups`` with a ``FollowUpRequest`` body (intercept a parcel, ask for a return, trace a
  parcel): ``201`` with a ``FollowUpAck`` the first time, ``200`` with the same ack for a repeat of the key.
- ``GET /carrier/tracking/{tracking_number}``: the carrier's latest stage for a parcel, ``200`` with a
  ``TrackingStatus``; ``404`` means the carrier does not know the parcel (an answer, not an error). Used as a
  fallback when a parcel's webhooks have stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from domain.lifecycle import ShipmentStage
from domain.orders import Address
from workflows.contracts import FollowUpKind


class ReleaseLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    quantity: int


class ReleaseRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    shipment_id: str
    node_id: str
    service_level: str
    ship_to: Address
    lines: list[ReleaseLine]
    # "delivery" (picked, packed, shipped to ``ship_to``) or "pickup" (held at the node for the customer).
    method: str = "delivery"


class ReleaseAck(BaseModel):
    model_config = ConfigDict(frozen=True)

    release_id: str
    shipment_id: str
    accepted_at: datetime
    replayed: bool = False


class CancelRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    node_id: str
    # The provider's reference when the release was acknowledged; informative (the path names the shipment).
    release_id: str | None = None
    reason: str = ""


class CancelAck(BaseModel):
    """``cancelled`` False means too late: the shipment has left, ``stage`` says how far it got."""

    model_config = ConfigDict(frozen=True)

    shipment_id: str
    cancelled: bool
    stage: ShipmentStage | None = None
    release_id: str | None = None
    replayed: bool = False


class FollowUpRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    shipment_id: str
    kind: FollowUpKind
    reason: str = ""
    tracking_number: str | None = None


class FollowUpAck(BaseModel):
    model_config = ConfigDict(frozen=True)

    reference: str
    replayed: bool = False


class TrackingStatus(BaseModel):
    """The carrier's answer to a tracking poll: the latest stage it has for the parcel, and when."""

    model_config = ConfigDict(frozen=True)

    tracking_number: str
    shipment_id: str
    stage: ShipmentStage
    occurred_at: datetime


class ShipmentStatus(BaseModel):
    """The provider's answer to a status call: the stage it has reached with the shipment, and since when."""

    model_config = ConfigDict(frozen=True)

    shipment_id: str
    release_id: str
    stage: ShipmentStage
    occurred_at: datetime
    tracking_number: str | None = None


class TrackingRegistration(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    shipment_id: str
    tracking_number: str


class TrackingRegistered(BaseModel):
    model_config = ConfigDict(frozen=True)

    # The carrier's reference for the subscription to this parcel's events.
    reference: str
    replayed: bool = False


class ProviderRejected(Exception):
    """The provider understood the request and refused it: retrying will not help."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(f"refused ({status_code}): {reason}")
        self.status_code = status_code
        self.reason = reason


# An HTTP client whose base URL is the given endpoint (one per endpoint, reused; see ``partner_clients``).
EndpointClients = Callable[[str], httpx.AsyncClient]


class WmsClient:
    """The fulfilment-provider client. Every provider kind (WMS, 3PL, store, dropship vendor) speaks the protocol
    above; only the base URL differs. Releases and cancels go to the node's ``endpoint`` when the caller passes
    one, else to the default client's base URL (``Settings.wms_url``)."""

    def __init__(self, http: httpx.AsyncClient, *, endpoints: EndpointClients | None = None) -> None:
        self._http = http
        self._endpoints = endpoints

    def _at(self, endpoint: str | None) -> httpx.AsyncClient:
        if endpoint is None:
            return self._http
        if self._endpoints is None:
            raise RuntimeError(f"no client for the endpoint {endpoint}: this WmsClient knows only its default")
        return self._endpoints(endpoint)

    async def release(
        self, request: ReleaseRequest, *, idempotency_key: str, endpoint: str | None = None
    ) -> ReleaseAck:
        response = await self._at(endpoint).post(
            "/wms/releases",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        if response.status_code in (409, 422):
            raise ProviderRejected(response.status_code, response.text[:500])
        response.raise_for_status()
        return ReleaseAck.model_validate(response.json())

    async def cancel(
        self, shipment_id: str, request: CancelRequest, *, idempotency_key: str, endpoint: str | None = None
    ) -> CancelAck:
        """Stop a released shipment. Too late is an answer (``cancelled`` False), not an exception."""
        response = await self._at(endpoint).post(
            f"/wms/shipments/{quote(shipment_id, safe='')}/cancel",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        if response.status_code != 409:
            response.raise_for_status()
        return CancelAck.model_validate(response.json())

    async def status(self, shipment_id: str, *, endpoint: str | None = None) -> ShipmentStatus | None:
        """How far the node's provider has got with the shipment; None when it never received it (404)."""
        response = await self._at(endpoint).get(f"/wms/shipments/{quote(shipment_id, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return ShipmentStatus.model_validate(response.json())

    async def register_tracking(self, request: TrackingRegistration, *, idempotency_key: str) -> TrackingRegistered:
        """Subscribe to a parcel's carrier events; a repeat of the key answers the first registration. ``409`` or
        ``422`` (the carrier does not take this tracking number) raise ``ProviderRejected``: retrying won't help."""
        response = await self._http.post(
            "/carrier/trackings",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        if response.status_code in (409, 422):
            raise ProviderRejected(response.status_code, response.text[:500])
        response.raise_for_status()
        return TrackingRegistered.model_validate(response.json())

    async def request_follow_up(self, request: FollowUpRequest, *, idempotency_key: str) -> FollowUpAck:
        response = await self._http.post(
            "/carrier/follow-ups",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        response.raise_for_status()
        return FollowUpAck.model_validate(response.json())

    async def track(self, tracking_number: str) -> TrackingStatus | None:
        """Where the carrier says the parcel is; None when it does not know the tracking number (404)."""
        response = await self._http.get(f"/carrier/tracking/{quote(tracking_number, safe='')}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return TrackingStatus.model_validate(response.json())
