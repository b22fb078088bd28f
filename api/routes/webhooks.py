"""Inbound webhooks from warehouses and carriers: verified, deduplicated, turned into workflow signals."""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Header, Query, Request, Response, status
from pydantic import ValidationError
from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SettingsDep, TemporalDep, UowDep
from api.errors import ApiError, validation_error
from api.schemas import UnmatchedEvent, UnmatchedEvents, WebhookAccepted
from integrations.webhooks import SIGNATURE_HEADER, ShipmentWebhookEvent, SignatureError, verify
from workflows import order_workflow_id
from workflows.contracts import OrderStatusView, ShipmentEventReceived, ShipmentIssueReported, SignalName
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 64 * 1024


_EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "this event id was accepted before: nothing changes (outcome `duplicate`)",
        "model": WebhookAccepted,
    },
    401: {"description": "missing or malformed signature, a timestamp outside the tolerance, or a wrong signature"},
    413: {"description": "a body larger than 64 KiB"},
    422: {"description": "a signed body that is not a valid event: each error names its field"},
}


@router.post("/wms", status_code=status.HTTP_202_ACCEPTED, response_model=WebhookAccepted, responses=_EVENT_RESPONSES)
async def wms_event(
    request: Request,
    response: Response,
    client: TemporalDep,
    settings: SettingsDep,
    uow: UowDep,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> WebhookAccepted:
    """A shipment event: a stage reached (signal ``shipment_event_received``) or an issue (signal
    ``shipment_issue_reported``). Accepted once per event id; a repeat is answered 200 and changes nothing."""
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise ApiError(413, f"body larger than {MAX_BODY_BYTES} bytes")
    secrets = [settings.webhook_secret.get_secret_value()]
    if settings.webhook_secret_previous:
        secrets.append(settings.webhook_secret_previous.get_secret_value())
    try:
        verify(signature, body, secrets, now=int(time.time()), tolerance_s=settings.webhook_tolerance_s)
    except SignatureError as err:
        log.warning("webhook refused", reason=str(err), client=request.client.host if request.client else None)
        raise ApiError(401, f"webhook refused: {err}") from None
    try:
        event = ShipmentWebhookEvent.model_validate_json(body)
    except ValidationError as err:
        log.warning("webhook event invalid", errors=err.error_count())
        raise validation_error(err.errors(), "event") from None
    structlog.contextvars.bind_contextvars(order_id=event.order_id, event_id=event.event_id)

    async with uow:
        if await uow.events.seen(event.event_id):
            response.status_code = status.HTTP_200_OK
            return WebhookAccepted(event_id=event.event_id, outcome="duplicate")
        handle: WorkflowHandle[OrderWorkflow, OrderStatusView] = client.get_workflow_handle_for(
            OrderWorkflow.run, order_workflow_id(event.order_id)
        )
        outcome = "applied"
        try:
            # The workflow also drops an event id it has seen, so a race between two deliveries is harmless.
            if event.issue is not None:
                await handle.signal(SignalName.SHIPMENT_ISSUE_REPORTED, _issue_signal(event))
            else:
                await handle.signal(OrderWorkflow.shipment_event_received, _stage_signal(event))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            outcome = await _why_not_found(handle)
            log.warning("webhook event kept but not applied", outcome=outcome)
        await uow.events.record(
            event_id=event.event_id,
            source="wms",
            order_id=event.order_id,
            outcome=outcome,
            payload=event.model_dump(mode="json"),
        )
        await uow.commit()
    return WebhookAccepted(event_id=event.event_id, outcome=outcome)


Unmatched = Literal["unknown_order", "order_closed"]


@router.get("/unmatched", response_model=UnmatchedEvents)
async def unmatched_events(
    uow: UowDep,
    outcome: Annotated[
        list[Unmatched] | None, Query(description="repeat for both; `unknown_order` if left out")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> UnmatchedEvents:
    """Events accepted but applied to no order, newest first: by default those naming an order this system does
    not know (a typo at the sender, or an order placed elsewhere), which someone must look into; with
    ``outcome=order_closed``, those that came after their order had finished."""
    async with uow:
        rows = await uow.events.unmatched(outcomes=outcome or ["unknown_order"], limit=limit)
        items = [
            UnmatchedEvent(
                event_id=row.event_id,
                source=row.source,
                order_id=row.order_id,
                outcome=row.outcome,
                received_at=row.received_at,
                payload=row.payload,
            )
            for row in rows
        ]
    return UnmatchedEvents(items=items)


def _stage_signal(event: ShipmentWebhookEvent) -> ShipmentEventReceived:
    assert event.stage is not None  # the event's validator lets through exactly one of stage and issue
    return ShipmentEventReceived(
        event_id=event.event_id,
        shipment_id=event.shipment_id,
        stage=event.stage,
        occurred_at=event.occurred_at,
        tracking_number=event.tracking_number,
    )


def _issue_signal(event: ShipmentWebhookEvent) -> ShipmentIssueReported:
    assert event.issue is not None
    return ShipmentIssueReported(
        event_id=event.event_id,
        shipment_id=event.shipment_id,
        issue=event.issue,
        occurred_at=event.occurred_at,
        detail=event.detail,
        short_lines=event.short_lines,
        new_estimate=event.new_estimate,
    )


async def _why_not_found(handle: WorkflowHandle[Any, Any]) -> str:
    """A signal is refused both for an order never placed and for one already finished: tell them apart."""
    try:
        await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return "unknown_order"
        raise
    return "order_closed"
