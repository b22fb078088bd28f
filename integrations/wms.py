"""The fulfilment-provider port: what a WMS, 3PL, store or dropship vendor implements to receive releases.

Wire protocol (JSON over HTTPS):
``POST /wms/releases`` with header ``Idempotency-Key`` and a ``ReleaseRequest`` body. The provider answers
``201`` with a ``ReleaseAck`` the first time and ``200`` with the same ack for a repeat of the key; ``409`` or
``422`` mean it refuses the shipment (a business rejection), anything else is retried by the orchestrator.
"""

from __future__ import annotations

from datetime import datetime

import httpx
from pydantic import BaseModel, ConfigDict

from domain.orders import Address


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


class ReleaseAck(BaseModel):
    model_config = ConfigDict(frozen=True)

    release_id: str
    shipment_id: str
    accepted_at: datetime
    replayed: bool = False


class ProviderRejected(Exception):
    """The provider understood the request and refused it: retrying will not help."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(f"provider refused the release ({status_code}): {reason}")
        self.status_code = status_code
        self.reason = reason


class WmsClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def release(self, request: ReleaseRequest, *, idempotency_key: str) -> ReleaseAck:
        response = await self._http.post(
            "/wms/releases",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": idempotency_key},
        )
        if response.status_code in (409, 422):
            raise ProviderRejected(response.status_code, response.text[:500])
        response.raise_for_status()
        return ReleaseAck.model_validate(response.json())
