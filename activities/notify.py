"""Messages to the customer and to the CSR queue, sent once in effect (the key makes a retry a no-op)."""

from __future__ import annotations

import structlog
from temporalio import activity

from integrations.notify import NotificationRequest, Notifier
from workflows.contracts import ActivityName, NotifyInput, NotifyResult

log = structlog.get_logger(__name__)


class NotifyActivities:
    def __init__(self, notifier: Notifier) -> None:
        self._notifier = notifier

    @activity.defn(name=ActivityName.NOTIFY)
    async def notify(self, input: NotifyInput) -> NotifyResult:
        request = NotificationRequest(
            order_id=input.order_id, audience=input.audience, kind=input.kind, message=input.message
        )
        ack = await self._notifier.send(request, idempotency_key=input.idempotency_key)
        log.info("notification sent", audience=input.audience, kind=input.kind, replayed=ack.replayed)
        return NotifyResult(delivered=ack.delivered)
