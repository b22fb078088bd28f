"""Orders: placing one starts its workflow; reading one asks the workflow; a CSR's override is an update to it.

An override (hold, release a hold, approve, reject, cancel, reroute, change the service level or the address,
add a note) is a Temporal update with a validator: the workflow alone decides whether it is still possible, so a
refusal arrives before anything is written to the order's history, and its reason is returned verbatim (422).
The actor is the API key's name (with ``X-Actor`` after it as detail, see ``api.auth``); the role (default
``csr``), reason code and note come in the body and are kept on the order's timeline. Who may call which
override, and the tenant scoping of a channel's or integration's key, are ``api.auth``'s.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.auth import MEMO_TENANT, ActorDep, Principal, PrincipalDep
from api.auth import Role as AuthRole
from api.deps import CheckoutDep, SettingsDep, TemporalDep, UowDep
from api.errors import ApiError, validation_error
from api.schemas import (
    AddressBody,
    CancelBody,
    DecideReviewBody,
    HoldBody,
    NoteBody,
    OrderAccepted,
    OrderCreate,
    OrderPublic,
    OverrideBody,
    PickupBody,
    PickupDetails,
    ReleaseHoldBody,
    RerouteBody,
    ServiceLevelBody,
    WorkflowRef,
)
from domain.exceptions import PlaybookSettings
from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Order
from domain.policy import Method
from domain.quotes import QuoteExpired, QuoteInvalid
from infra.checkout import CheckoutService, QuoteMismatch
from infra.db.uow import UnitOfWork
from infra.settings import Settings
from workflows import order_workflow_id
from workflows.contracts import (
    SA_CHANNEL,
    SA_CUSTOMER_ID,
    SA_ORDER_STATUS,
    OrderStatusView,
    OrderWorkflowInput,
    Override,
    OverrideResult,
    Placement,
    QuotedOption,
    Role,
    UpdateName,
)
from workflows.order import OrderWorkflow

router = APIRouter(prefix="/orders", tags=["orders"])
log = structlog.get_logger(__name__)

REQUEST_FINGERPRINT = "request_sha256"
REQUEST_ID = "request_id"
# With wait=reserved: how long the caller waits for "accepted, stock held" before a 202.
PLACEMENT_WAIT = timedelta(seconds=20)
# A query needs a worker to answer; without one, say so quickly rather than hang the caller.
QUERY_TIMEOUT = timedelta(seconds=10)
# An update needs a worker too: one not accepted (or refused) within this is answered 503,
UPDATE_TIMEOUT = timedelta(seconds=10)
# and one accepted but still being carried out this long after is answered 202 (it will be done).
UPDATE_WAIT = timedelta(seconds=20)


def _ref(settings: Settings, description: WorkflowExecutionDescription) -> WorkflowRef:
    return WorkflowRef(
        workflow_id=description.id,
        run_id=description.run_id,
        status=description.status.name.lower() if description.status else None,
        ui_url=_ui_url(settings, description.id, description.run_id),
    )


def _ui_url(settings: Settings, workflow_id: str, run_id: str | None) -> str | None:
    if not settings.temporal_ui_url:
        return None
    base = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows"
    return f"{base}/{workflow_id}/{run_id}" if run_id else f"{base}/{workflow_id}"


async def _workflow_ref(
    settings: Settings, handle: WorkflowHandle[OrderWorkflow, object]
) -> tuple[WorkflowRef, Mapping[str, Any]]:
    description = await handle.describe()
    return _ref(settings, description), await description.memo()


_PLACE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the same order was sent before: the existing order (header Idempotent-Replayed)"},
    202: {"description": "with wait=reserved: the order is received, but its placement was not answered in time"},
    409: {"description": "an order with this id exists with different content"},
    422: {"description": "a malformed body (each error names its field), or a quote id that cannot be honoured"},
    503: {"description": "Temporal unreachable, or no worker took the order in time: retry the same request"},
}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderAccepted, responses=_PLACE_RESPONSES)
async def place_order(
    body: OrderCreate,
    response: Response,
    client: TemporalDep,
    settings: SettingsDep,
    checkout: CheckoutDep,
    principal: PrincipalDep,
    wait: Annotated[
        Literal["accepted", "reserved"] | None,
        Query(
            description="`accepted`: answer once the order's workflow has started. `reserved`: answer once the"
            " order is past planning, with `placement` saying whether it is accepted and its stock held (the"
            " default with a `quote_id`)."
        ),
    ] = None,
) -> OrderAccepted | JSONResponse:
    """Start the order's workflow. The same order sent again is answered with the existing one (200);
    a different order under an id already used is refused (409). With a `quote_id` from
    `POST /fulfillment-options`, the order executes the quoted option when it still can (its service level and
    pickup branch come from the quote) and records the change when it cannot."""
    now = datetime.now(UTC)
    workflow_id = order_workflow_id(body.order_id)
    structlog.contextvars.bind_contextvars(order_id=body.order_id, workflow_id=workflow_id)
    tenant = None if principal is None else principal.tenant
    # A tenant's order is told apart from the same body sent by another tenant (that one is a conflict, 409).
    fingerprint = (
        body.fingerprint() if tenant is None else hashlib.sha256(f"{tenant}\n{body.fingerprint()}".encode()).hexdigest()
    )
    order = body.to_domain(received_at=now)
    quote: QuotedOption | None = None
    if body.quote_id is not None:
        try:
            order, quote = _apply_quote(body, order, checkout, now)
        except ApiError:
            # A retry of an order already placed with this quote is answered with that order, expired or not.
            replayed = await _replay(client, settings, body.order_id, fingerprint, response)
            if replayed is None:
                raise
            return replayed
    start = _StartOptions(settings, order, fingerprint, tenant)
    workflow_input = OrderWorkflowInput(
        order=order,
        settings=PlaybookSettings(change_window=timedelta(seconds=settings.order_change_window_s)),
        quote=quote,
    )
    if (wait or ("reserved" if quote else "accepted")) == "reserved":
        return await _place_and_wait(client, settings, workflow_input, start, response)
    try:
        handle = await client.start_workflow(
            OrderWorkflow.run,
            workflow_input,
            id=workflow_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            **start.kwargs(),
        )
    except WorkflowAlreadyStartedError:
        replayed = await _replay(client, settings, body.order_id, fingerprint, response)
        assert replayed is not None  # it was just found to exist
        return replayed
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


class _StartOptions:
    """How an order's workflow is started, the same with or without waiting for its placement."""

    def __init__(self, settings: Settings, order: Order, fingerprint: str, tenant: str | None = None) -> None:
        self.settings = settings
        self.tenant = tenant
        self.order = order
        self.fingerprint = fingerprint
        # Tells this request's start from an earlier one's (update-with-start does not say which it was).
        self.request_id = str(uuid.uuid4())

    def kwargs(self) -> dict[str, Any]:
        order = self.order
        return {
            # An order id is used once, ever: not even a finished order may be started again.
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE,
            # The tenant whose key placed the order: api.auth answers 404 to any other tenant's key.
            "memo": {REQUEST_FINGERPRINT: self.fingerprint, REQUEST_ID: self.request_id}
            | ({} if self.tenant is None else {MEMO_TENANT: self.tenant}),
            "search_attributes": TypedSearchAttributes(
                [
                    SearchAttributePair(SA_CUSTOMER_ID, order.customer_id),
                    SearchAttributePair(SA_CHANNEL, str(order.channel)),
                    SearchAttributePair(SA_ORDER_STATUS, str(OrderStage.RECEIVED)),
                ]
            ),
            "static_summary": f"order {order.order_id}: {len(order.lines)} line(s), {order.service_level}"
            + (f", pickup at {order.pickup_node_id}" if order.pickup_node_id else ""),
        }


def _apply_quote(
    body: OrderCreate, order: Order, checkout: CheckoutService, now: datetime
) -> tuple[Order, QuotedOption]:
    """The order as the quote has it (service level, pickup branch), and what the workflow must keep; a 422
    naming ``quote_id`` when the quote cannot be honoured."""
    assert body.quote_id is not None
    try:
        payload = checkout.verify(body.quote_id, order, now)
    except QuoteExpired as err:
        raise ApiError(
            422,
            f"quote_id: {err.message}",
            field="quote_id",
            type="quote_expired",
            expired_at=err.expired_at.isoformat(),
        ) from None
    except QuoteInvalid as err:
        kind = "quote_mismatch" if isinstance(err, QuoteMismatch) else "quote_invalid"
        raise ApiError(422, f"quote_id: {err.message}", field="quote_id", type=kind) from None
    variant = payload.variant
    given = body.model_fields_set
    if "service_level" in given and variant.method is Method.DELIVERY and body.service_level != variant.service_level:
        raise ApiError(
            422,
            f"service_level: the quote is for {variant.service_level} delivery,"
            f" the order asks for {body.service_level}",
            field="service_level",
            type="quote_mismatch",
        )
    if body.pickup_node_id is not None and body.pickup_node_id != variant.pickup_node_id:
        where = f"pickup at {variant.pickup_node_id}" if variant.pickup_node_id else "delivery"
        raise ApiError(
            422,
            f"pickup_node_id: the quote is for {where}, the order names {body.pickup_node_id}",
            field="pickup_node_id",
            type="quote_mismatch",
        )
    chosen = order.model_copy(update={"service_level": variant.service_level, "pickup_node_id": variant.pickup_node_id})
    quote = QuotedOption.of(payload)
    return chosen, quote


async def _place_and_wait(
    client: Client,
    settings: Settings,
    workflow_input: OrderWorkflowInput,
    start: _StartOptions,
    response: Response,
) -> OrderAccepted | JSONResponse:
    """Start the order and ask, in the same call, whether it is accepted and its stock held (update-with-start):
    the caller learns it within the request. Sent again, the same request reaches the same order and the same
    answer (the update id comes from the request's content)."""
    order_id = workflow_input.order.order_id
    workflow_id = order_workflow_id(order_id)
    operation = WithStartWorkflowOperation(
        OrderWorkflow.run,
        workflow_input,
        id=workflow_id,
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        **start.kwargs(),
    )
    try:
        async with asyncio.timeout(PLACEMENT_WAIT.total_seconds()):
            update: WorkflowUpdateHandle[Placement] = await client.start_update_with_start_workflow(
                UpdateName.PLACEMENT,
                start_workflow_operation=operation,
                id=f"placement:{start.fingerprint[:32]}",
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=Placement,
                rpc_timeout=UPDATE_TIMEOUT,
            )
            placement = await update.result(rpc_timeout=PLACEMENT_WAIT)
    except WorkflowAlreadyStartedError:
        # The order exists and has finished: REJECT_DUPLICATE refused to start it again.
        replayed = await _replay(client, settings, order_id, start.fingerprint, response)
        assert replayed is not None
        return replayed
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        handle = client.get_workflow_handle(workflow_id)
        try:
            await handle.describe()
        except RPCError:
            raise ApiError(503, "the order could not be started in time: retry the same request") from None
        log.warning("order started, placement not answered in time")
        return JSONResponse(
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/orders/{order_id}"},
            content={
                "message": f"order {order_id} received; whether its stock is held is not known yet:"
                f" GET /orders/{order_id}",
                "order_id": order_id,
                "stage": OrderStage.RECEIVED.value,
            },
        )
    handle = await operation.workflow_handle()
    description = await handle.describe()
    ref, memo = _ref(settings, description), await description.memo()
    if memo.get(REQUEST_FINGERPRINT) != start.fingerprint:
        raise ApiError(
            409, f"order {order_id} already exists with different content", order_id=order_id, workflow=ref.model_dump()
        )
    stage = placement.stage
    if memo.get(REQUEST_ID) == start.request_id:
        response.headers["Location"] = f"/orders/{order_id}"
        log.info("order placed", stage=placement.stage, reserved=placement.reserved)
    else:
        # An earlier request placed it: its placement is answered again (the update id is the request's), and
        # the stage is the order's own now, from the search attribute the workflow keeps (no worker needed).
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
        current = description.typed_search_attributes.get(SA_ORDER_STATUS)
        stage = OrderStage(current) if current in set(OrderStage) else stage
    return OrderAccepted(order_id=order_id, stage=stage, workflow=ref, placement=placement)


async def _replay(
    client: Client, settings: Settings, order_id: str, fingerprint: str, response: Response
) -> OrderAccepted | None:
    """The existing order when this request placed it before (200), None when there is no such order, and 409
    when the id is taken by an order with other content."""
    existing = client.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
    try:
        ref, memo = await _workflow_ref(settings, existing)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    if memo.get(REQUEST_FINGERPRINT) != fingerprint:
        raise ApiError(
            409, f"order {order_id} already exists with different content", order_id=order_id, workflow=ref.model_dump()
        )
    response.status_code = status.HTTP_200_OK
    response.headers["Idempotent-Replayed"] = "true"
    stage = (await existing.query(OrderWorkflow.status, rpc_timeout=QUERY_TIMEOUT)).stage
    log.info("duplicate order request answered with the existing order")
    return OrderAccepted(order_id=order_id, stage=stage, workflow=ref)


_GET_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no order with this id"},
    503: {"description": "no worker answered the order's query in time, or Temporal unreachable: retry"},
}


@router.get("/{order_id}", response_model=OrderPublic, responses=_GET_RESPONSES)
async def get_order(order_id: str, client: TemporalDep, settings: SettingsDep, uow: UowDep) -> OrderPublic:
    """The live picture of an order, answered by its workflow: per line where it comes from, each shipment's
    stage, the promise against the original one (and every change, with why), and for a pickup where and from
    when to collect."""
    handle = client.get_workflow_handle_for(OrderWorkflow.run, order_workflow_id(order_id))
    try:
        ref, _ = await _workflow_ref(settings, handle)
        view = await handle.query(OrderWorkflow.status, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, f"order {order_id} not found") from None
        raise
    pickup = None if view.pickup_node_id is None else await _pickup(uow, view)
    return OrderPublic(**view.model_dump(), workflow=ref, pickup=pickup)


async def _pickup(uow: UnitOfWork, view: OrderStatusView) -> PickupDetails:
    """Where to collect a pickup order: the branch's name and address, from when, and whether it is waiting."""
    assert view.pickup_node_id is not None
    async with uow:
        record = await uow.network.get_node(view.pickup_node_id)
    live = [v for v in view.shipments if v.live and v.method is Method.PICKUP]
    readies = [v.ready_by for v in live]
    return PickupDetails(
        node_id=view.pickup_node_id,
        name=None if record is None else record.spec.name,
        address=None if record is None else record.spec.address.model_dump(mode="json"),
        ready_by=None if not readies or None in readies else max(r for r in readies if r is not None),
        ready=bool(live) and all(v.stage is ShipmentStage.READY_FOR_PICKUP for v in live),
    )


# --- CSR overrides ------------------------------------------------------------------------------------------

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=100,
        description="the same key sent again for the same order and override is applied once (a retry after a 503)",
    ),
]

_OVERRIDE_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "accepted, still being carried out (a cancel at the node, a re-plan): it will be done"},
    404: {"description": "no order with this id"},
    409: {"description": "the order has finished (completed, cancelled, failed or rejected): `stage` says which"},
    422: {"description": "a malformed body (each error names its field), or the workflow refused: its reason"},
    503: {"description": "not accepted in time (no worker), or Temporal unreachable: retry with the same key"},
}


async def _require_open(settings: Settings, handle: WorkflowHandle[Any, Any], order_id: str) -> None:
    """404 for an order that does not exist; 409, with its stage, for one that has finished: its workflow has
    closed, or its stage is final (completed, cancelled, failed, rejected) while the workflow winds down."""
    try:
        description = await handle.describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ApiError(404, f"order {order_id} not found") from None
        raise
    # The workflow writes its stage to this search attribute on every change, so no worker is needed here.
    stage = description.typed_search_attributes.get(SA_ORDER_STATUS)
    finished = stage is not None and stage in set(OrderStage) and OrderStage(stage).is_terminal
    running = description.status == WorkflowExecutionStatus.RUNNING
    if running and not finished:
        return
    if finished:
        message = f"order {order_id} has finished ({stage}): it can no longer be changed"
    else:
        workflow_status = description.status.name.lower() if description.status else "closed"
        message = f"order {order_id} is no longer running (workflow {workflow_status}, last stage {stage or 'unknown'})"
    raise ApiError(
        409, message, order_id=order_id, stage=stage, workflow=_ref(settings, description).model_dump(mode="json")
    )


def _payload(body: OverrideBody, actor: str) -> Override:
    try:
        return body.to_payload(actor)
    except ValidationError as err:
        # Only the actor can fail here (the body was validated already): name the header it came from.
        errors = [
            {**e, "loc": ("header", "X-Actor") if e["loc"] == ("actor",) else ("body", *e["loc"])} for e in err.errors()
        ]
        raise validation_error(errors) from None


async def _override(
    client: Client,
    settings: Settings,
    order_id: str,
    update: str,
    body: OverrideBody,
    actor: str,
    idempotency_key: str | None,
    principal: Principal | None,
) -> OverrideResult | JSONResponse:
    """Send one override to the order's workflow and return what it did.

    Two steps: the update is accepted or refused (its validator runs, quickly), then carried out. Some overrides
    wait for the order's loop (a cancel at the node, a re-plan): if that takes longer than ``UPDATE_WAIT``, the
    caller gets 202, since an accepted update is durable and will be carried out. Not even accepted within
    ``UPDATE_TIMEOUT`` (no worker): 503; it may still be applied later, which is what Idempotency-Key is for.
    The update is sent without a describe first: a closed or unknown workflow answers NOT_FOUND, and only a
    failure is looked into.
    """
    if principal is not None and principal.role is AuthRole.CHANNEL:
        # A customer-facing channel acts for the customer, whatever role its body claims: the order's rules for
        # customers apply, and its timeline says who it was.
        body = body.model_copy(update={"role": Role.CUSTOMER})
    payload = _payload(body, actor)
    workflow_id = order_workflow_id(order_id)
    structlog.contextvars.bind_contextvars(order_id=order_id, workflow_id=workflow_id)
    handle = client.get_workflow_handle(workflow_id)
    accepted: WorkflowUpdateHandle[OverrideResult] | None = None
    try:
        async with asyncio.timeout(UPDATE_TIMEOUT.total_seconds()):
            accepted = await handle.start_update(
                update,
                payload,
                id=f"{update}:{idempotency_key}" if idempotency_key else None,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=OverrideResult,
                rpc_timeout=UPDATE_TIMEOUT,
            )
        async with asyncio.timeout(UPDATE_WAIT.total_seconds()):
            result = await accepted.result(rpc_timeout=UPDATE_TIMEOUT)
    except WorkflowUpdateFailedError as err:
        await _require_open(settings, handle, order_id)
        log.info("override refused", update=update, actor=actor, reason=str(err.cause))
        raise  # api.errors maps it: 422 with the workflow's reason
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            await _require_open(settings, handle, order_id)
        raise
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        if accepted is None:
            log.warning("override not accepted in time", update=update)
            raise ApiError(
                503,
                "the order's workflow did not take the override in time: retry later with the same Idempotency-Key",
            ) from None
        log.info("override accepted, still in progress", update=update, update_id=accepted.id)
        return JSONResponse(
            status_code=status.HTTP_202_ACCEPTED,
            content={
                "message": f"{update} accepted and still in progress: GET /orders/{order_id} shows its effect",
                "order_id": order_id,
                "update_id": accepted.id,
            },
        )
    log.info("override applied", update=update, actor=actor, role=payload.role, reason_code=payload.reason_code)
    return result


@router.post("/{order_id}/hold", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def hold_order(
    order_id: str,
    body: HoldBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Put a CSR hold on the order: nothing new is planned or released to a node until the hold is lifted
    with `release-hold` (shipments already released go on; a hold left too long is escalated to the CSR
    queue). Allowed until the order has finished; refused while it is already on a CSR hold."""
    return await _override(client, settings, order_id, UpdateName.HOLD, body, actor, idempotency_key, principal)


@router.post("/{order_id}/release-hold", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def release_hold(
    order_id: str,
    body: ReleaseHoldBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Lift a hold (`hold`: `csr` or `payment`; omitted: every hold that is not a review) and let the order go
    on. Allowed until the order has finished, while such a hold is in force; a review hold is ended by
    `approve` or `reject` instead."""
    return await _override(client, settings, order_id, UpdateName.RELEASE_HOLD, body, actor, idempotency_key, principal)


@router.post("/{order_id}/approve", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def approve_order(
    order_id: str,
    body: DecideReviewBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Approve an order held for review (fraud score, credit limit): the review hold is lifted and the order
    goes on. Allowed only while the order waits for review (a `review` hold, stage `on_hold`)."""
    return await _override(client, settings, order_id, UpdateName.APPROVE, body, actor, idempotency_key, principal)


@router.post("/{order_id}/reject", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def reject_order(
    order_id: str,
    body: DecideReviewBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Reject an order held for review: its payment authorization is given back, the customer is told, and
    the order ends `rejected`. Allowed only while the order waits for review (a `review` hold)."""
    return await _override(client, settings, order_id, UpdateName.REJECT, body, actor, idempotency_key, principal)


@router.post("/{order_id}/cancel", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def cancel_order(
    order_id: str,
    body: CancelBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Cancel the whole order, or only `line_ids`: every unit not yet shipped is cancelled (a released
    shipment is cancelled at its node, its stock released, the payment given back for what is cancelled; what
    has shipped is not, and the answer says so). Cancelling the whole order ends it `cancelled`. Allowed until
    the order has finished; refused for lines the order does not have, for lines with nothing left to cancel,
    and while a cancellation is already under way."""
    return await _override(client, settings, order_id, UpdateName.CANCEL, body, actor, idempotency_key, principal)


@router.post("/{order_id}/reroute", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def reroute_shipment(
    order_id: str,
    body: RerouteBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Move one shipment's units to another node (`node_id`): the shipment is cancelled where it was (at the
    node, if released) and planned again at the chosen node only. The answer shows `before` and `after`
    (nodes, cost, promised date, stock at both nodes). Allowed until the shipment has shipped (or is ready for
    pickup); refused for an unknown or ended shipment, the node it already comes from, and a pickup shipment.
    Accepted but not carried out (422 of type `OverrideRefused`) when the node cannot hold the units: the
    shipment is then planned again by the usual rules."""
    return await _override(client, settings, order_id, UpdateName.REROUTE, body, actor, idempotency_key, principal)


@router.post("/{order_id}/service-level", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def change_service_level(
    order_id: str,
    body: ServiceLevelBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Change the service level (`standard`, `expedited`): the shipments not released yet are planned again
    under it (`before` and `after` in the answer). Allowed once the order is validated and until its first
    shipment is released; refused for a pickup order and for the level it already has."""
    return await _override(
        client, settings, order_id, UpdateName.CHANGE_SERVICE_LEVEL, body, actor, idempotency_key, principal
    )


@router.post("/{order_id}/address", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def change_address(
    order_id: str,
    body: AddressBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Change where the order is delivered (`ship_to`): the address is located again and the shipments not
    released yet are planned again for it (`before` and `after` in the answer). Allowed once the order is
    validated and until its first shipment is released."""
    return await _override(
        client, settings, order_id, UpdateName.CHANGE_ADDRESS, body, actor, idempotency_key, principal
    )


@router.post("/{order_id}/pickup", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def change_pickup(
    order_id: str,
    body: PickupBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Collect at another branch (`node_id`): a pickup order moves there (its shipment is cancelled at the old
    branch if released), and a delivery order, split or not, becomes one pickup there (via transfer when the
    policy allows). The answer carries `before` and `after` (nodes, ready-by, promise, price) and the price
    difference. Allowed once the order is validated: for a pickup until the branch has picked it, for a
    delivery until a shipment is released; refused for a branch that cannot take pickups."""
    return await _override(
        client, settings, order_id, UpdateName.CHANGE_PICKUP, body, actor, idempotency_key, principal
    )


@router.post("/{order_id}/notes", response_model=OverrideResult, responses=_OVERRIDE_RESPONSES)
async def add_note(
    order_id: str,
    body: NoteBody,
    client: TemporalDep,
    settings: SettingsDep,
    actor: ActorDep,
    principal: PrincipalDep,
    idempotency_key: IdempotencyKey = None,
) -> OverrideResult | JSONResponse:
    """Add a note to the order's timeline (with the actor, role and reason code); nothing else changes.
    Allowed until the order has finished."""
    return await _override(client, settings, order_id, UpdateName.ADD_NOTE, body, actor, idempotency_key, principal)
