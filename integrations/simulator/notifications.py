"""The simulated notification service: the provider side of ``integrations.notify``.

It delivers nothing; it records each message once per idempotency key, so tests can read what the customer
and the CSR queue were told, and prove a retried send reached nobody twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Response, status
from pydantic import BaseModel

from integrations.notify import NotificationAck, NotificationRequest
from integrations.simulator.faults import FaultInjector
from workflows.contracts import Audience

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)]


@dataclass
class NotificationRecord:
    key: str
    request: NotificationRequest
    ack: NotificationAck
    sent_at: datetime
    attempts: int = 1


class NotificationStats(BaseModel):
    requests: int
    effective_notifications: int
    notifications: list[dict[str, object]]


class Outbox:
    def __init__(self, faults: FaultInjector) -> None:
        self._faults = faults
        self.sent: dict[str, NotificationRecord] = {}
        self.requests = 0

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/notifications", response_model=NotificationAck, status_code=status.HTTP_201_CREATED)
        async def send(
            request: NotificationRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> NotificationAck:
            await self._faults.gate("notifications", idempotency_key)
            self.requests += 1
            existing = self.sent.get(idempotency_key)
            if existing is not None:
                if existing.request != request:
                    raise HTTPException(422, "idempotency key reused with a different notification")
                existing.attempts += 1
                response.status_code = status.HTTP_200_OK
                return existing.ack.model_copy(update={"replayed": True})
            notification_id = "NOTE-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
            ack = NotificationAck(notification_id=notification_id)
            self.sent[idempotency_key] = NotificationRecord(idempotency_key, request, ack, datetime.now(UTC))
            return ack

        @router.get("/notifications", response_model=NotificationStats)
        async def stats(order_id: str | None = None, audience: Audience | None = None) -> NotificationStats:
            """What was sent, oldest first; ``requests`` counts every call, repeats included."""
            chosen = [
                n
                for n in self.sent.values()
                if (order_id is None or n.request.order_id == order_id)
                and (audience is None or n.request.audience == audience)
            ]
            return NotificationStats(
                requests=self.requests,
                effective_notifications=len(self.sent),
                notifications=[
                    {
                        "notification_id": n.ack.notification_id,
                        "idempotency_key": n.key,
                        "order_id": n.request.order_id,
                        "audience": n.request.audience,
                        "kind": n.request.kind,
                        "message": n.request.message,
                        "sent_at": n.sent_at.isoformat(),
                        "attempts": n.attempts,
                    }
                    for n in chosen
                ],
            )

        return router
