"""The notification port: messages to the customer and to the CSR queue.

Wire protocol (JSON over HTTPS): ``POST /notifications`` with header ``Idempotency-Key`` and a
``NotificationRequest`` body answers ``201`` with a ``NotificationAck`` the first time and ``200`` with the
same ack (``replayed: true``) for a repeat of the key, so a retried send reaches nobody twice. ``422`` means
the key was reused for a different message; that and any other error status raise ``httpx`` errors, which
the orchestrator retries.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict

from workflows.contracts import Audience


class NotificationRequest(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    audience: Audience
    # What happened, as a code the templates and the CSR queue key on ("order_delayed", "pickup_reminder" ...).
    kind: str
    message: str


class NotificationAck(BaseModel):
    model_config = ConfigDict(frozen=True)

    notification_id: str
    delivered: bool = True
    replayed: bool = False


class Notifier:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def send(self, request: NotificationRequest, *, idempotency_key: str) -> NotificationAck:
        response = await self._http.post(
            "/notifications", json=request.model_dump(mode="json"), headers={"Idempotency-Key": idempotency_key}
        )
        response.raise_for_status()
        return NotificationAck.model_validate(response.json())
