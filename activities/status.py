"""Status sync: the order's status and the events announcing it, written together (the transactional outbox).

One unit of work per call: the ``order_status`` projection moves forward, each change becomes an
``outbox_event`` (id ``<order_id>:status:<seq>``) and one ``outbox_delivery`` per matching subscription, and it
all commits at once. The dispatcher (``infra.dispatcher``) delivers from there. Publishing the same seqs again
(a retry, a replay, a reset) writes nothing new.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity

from infra.db.outbox import status_event_type
from infra.db.uow import UowFactory
from workflows.contracts import ActivityName, PublishStatusInput, PublishStatusResult, StatusEvent
from workflows.keys import status_event_id

log = structlog.get_logger(__name__)


def status_envelope(input: PublishStatusInput, event: StatusEvent) -> dict[str, Any]:
    """The outgoing event, as subscribers receive it (documented in docs/integrations.md)."""
    return {
        "event_id": status_event_id(input.order_id, event.seq),
        "type": status_event_type(event.stage),
        "order_id": input.order_id,
        "seq": event.seq,
        "occurred_at": event.at.isoformat(),
        "data": {
            "stage": str(event.stage),
            "previous_stage": None if event.previous_stage is None else str(event.previous_stage),
            "customer_id": input.customer_id,
            "channel": input.channel,
            "actor": event.actor,
            "detail": event.detail,
            "exception_code": event.exception_code,
        },
    }


class StatusActivities:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow

    @activity.defn(name=ActivityName.PUBLISH_STATUS)
    async def publish_status(self, input: PublishStatusInput) -> PublishStatusResult:
        published: list[str] = []
        replayed: list[str] = []
        deliveries = 0
        async with self._uow() as uow:
            for event in sorted(input.events, key=lambda e: e.seq):
                event_id = status_event_id(input.order_id, event.seq)
                recorded = await uow.outbox.record_status(
                    event_id=event_id,
                    order_id=input.order_id,
                    seq=event.seq,
                    stage=str(event.stage),
                    customer_id=input.customer_id,
                    channel=input.channel,
                    at=event.at,
                    payload=status_envelope(input, event),
                )
                (published if recorded.inserted else replayed).append(event_id)
                deliveries += recorded.deliveries
            await uow.commit()
        log.info("order status published", published=len(published), replayed=len(replayed), deliveries=deliveries)
        return PublishStatusResult(published=published, replayed=replayed, deliveries=deliveries)
