"""Orders: placing one starts its workflow; reading one asks the workflow."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from fastapi import APIRouter, Response, status
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import SettingsDep, TemporalDep
from api.errors import ApiError
from api.schemas import OrderAccepted, OrderCreate, OrderPublic, WorkflowRef
from domain.lifecycle import OrderStage
from infra.settings import Settings
from workflows import order_workflow_id
from workflows.contracts import SA_CHANNEL, SA_CUSTOMER_ID, SA_ORDER_STATUS, OrderWorkflowInput
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/orders", tags=["orders"])
log = structlog.get_logger(__name__)

REQUEST_FINGERPRINT = "request_sha256"
# A query needs a worker to answer; without one, say so quickly rather than hang the caller.
QUERY_TIMEOUT = timedelta(seconds=10)


def _ui_url(settings: Settings, workflow_id: str, run_id: str | None) -> str | None:
    if not settings.temporal_ui_url:
        return None
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows"
    return f"{base}/{workflow_id}/{run_id}" if run_id else f"{base}/{workflow_id}"


async def _workflow_ref(
    settings: Settings, handle: WorkflowHandle[OrderWorkflow, object]
) -> tuple[WorkflowRef, Mapping[str, Any]]:
    description = await handle.describe()
    memo = await description.memo()
    status_name = description.status.name.lower() if description.status else None
    ref = WorkflowRef(
        workflow_id=handle.id,
        run_id=description.run_id,
        status=status_name,
        ui_url=_ui_url(settings, handle.id, description.run_id),
    )
    return ref, memo


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderAccepted)
async def place_order(
    body: OrderCreate, response: Response, client: TemporalDep, settings: SettingsDep
) -> OrderAccepted:
    """Start the order's workflow. The same order sent again is answered with the existing one (200);
    a different order under an id already used is refused (409)."""
    workflow_id = order_workflow_id(body.order_id)
    order = body.to_domain(received_at=datetime.now(UTC))
    fingerprint = body.fingerprint()
    structlog.contextvars.bind_contextvars(order_id=body.order_id, workflow_id=workflow_id)
    try:
        handle = await client.start_workflow(
            OrderWorkflow.run,
            OrderWorkflowInput(order=order),
            id=workflow_id,
            task_queue=settings.task_queue,
            # An order id is used once, ever: not even a finished order may be started again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            memo={REQUEST_FINGERPRINT: fingerprint},
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(SA_CUSTOMER_ID, order.customer_id),
                    SearchAttributePair(SA_CHANNEL, str(order.channel)),
                    SearchAttributePair(SA_ORDER_STATUS, str(OrderStage.RECEIVED)),
                ]
            ),
            static_summary=f"order {order.order_id}: {len(order.lines)} line(s), {order.service_level}",
        )
    except WorkflowAlreadyStartedError:
        existing = client.get_workflow_handle_for(OrderWorkflow.run, workflow_id)
        ref, memo = await _workflow_ref(settings, existing)
        if memo.get(REQUEST_FINGERPRINT) != fingerprint:
            raise ApiError(
                409,
                f"order {body.order_id} already exists with different content",
                order_id=body.order_id,
                workflow=ref.model_dump(),
            ) from None
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
        stage = (await existing.query(OrderWorkflow.status, rpc_timeout=QUERY_TIMEOUT)).stage
        log.info("duplicate order request answered with the existing order")
        return OrderAccepted(order_id=body.order_id, stage=stage, workflow=ref)
    log.info("order accepted", run_id=handle.result_run_id)
    response.headers["Location"] = f"/orders/{body.order_id}"
    return OrderAccepted(
        order_id=body.order_id,
        stage=OrderStage.RECEIVED,
        workflow=WorkflowRef(
            workflow_id=workflow_id,
            run_id=handle.result_run_id,
            status=WorkflowExecutionStatus.RUNNING.name.lower(),
            ui_url=_ui_url(settings, workflow_id, handle.result_run_id),
        ),
    )


@router.get("/{order_id}", response_model=OrderPublic)
async def get_order(order_id: str, client: TemporalDep, settings: SettingsDep) -> OrderPublic:
    """The live picture of an order, answered by its workflow."""
    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
    try:
        ref, _ = await _workflow_ref(settings, handle)
        view = await handle.query(OrderWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, f"order {order_id} not found") from None
        raise
    return OrderPublic(**view.model_dump(), workflow=ref)
