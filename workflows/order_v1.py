"""The first version of the order lifecycle, kept so that orders started before it changed finish as they began.

``OrderWorkflow`` runs this for any run that did not record the ``lifecycle-v2`` patch marker (see
``workflows/order.py``). Do not change what it does: histories in ``tests/replay/histories/`` that start
without the marker replay through it. Delete it (and deprecate the patch) once no such order is open.

Original description: one durable workflow per order, from receipt to delivery.

The workflow decides nothing itself: it asks ``domain`` (through activities that read the data decisions
need), records what was decided, and waits. Every side effect carries an idempotency key built from the
order id, the step and the plan attempt, never from the run id, so a retry, a worker crash or a reset from
the Temporal UI changes nothing that has already happened.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.errors import ErrorType
    from domain.lifecycle import OrderStage, ShipmentStage, advances, has_left_node
    from domain.orders import Order
    from domain.sourcing import Plan
    from workflows.contracts import (
        SA_EXCEPTION_CODE,
        SA_NODES,
        SA_ORDER_STATUS,
        ActivityName,
        OrderStatusView,
        OrderWorkflowInput,
        PlanOrderInput,
        ReleaseShipmentInput,
        ReleaseShipmentResult,
        ReserveStockInput,
        ReserveStockResult,
        SettleStockInput,
        SettleStockResult,
        ShipmentEventReceived,
        ShipmentView,
        TimelineEntry,
        ValidateOrderInput,
        ValidateOrderResult,
    )
    from workflows.keys import release_key, reservation_key

# Behaviour changes, named so that histories recorded before them still replay (see docs/operations.md).
PATCH_HOLD_EARLY_EVENTS = "hold-early-shipment-events"

# How many times a plan may be lost to a race for the last units before the order fails.
MAX_PLAN_ATTEMPTS = 3

# Local activities: short, database- or CPU-only steps. Transient failures (a DB restart) retry without
# limit at a capped interval; business failures are non-retryable by type.
LOCAL_TIMEOUT = timedelta(seconds=15)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
# Releasing to a warehouse crosses the network to a system we do not run: a long tail of retries is the
# normal case (an outage of hours must not lose the order), each attempt short.
RELEASE_TIMEOUT = timedelta(seconds=30)
RELEASE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))

R = TypeVar("R")


async def _local_step(name: str, arg: object, result_type: type[R]) -> R:
    """Run a short database- or CPU-only step as a local activity: no round trip through the server."""
    result = await workflow.execute_local_activity(
        name, arg, result_type=result_type, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=LOCAL_RETRY
    )
    assert isinstance(result, result_type)
    return result


# What an activity can fail with. A regular activity's failure arrives as ActivityError wrapping the
# activity's ApplicationError; a local activity's (temporalio 1.35) arrives as the ApplicationError itself.
ActivityFailure = (ActivityError, ApplicationError)


def _reason(err: ActivityError | ApplicationError) -> ApplicationError | None:
    """The typed failure an activity raised, however the SDK delivered it."""
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


def _failure_type(err: ActivityError | ApplicationError) -> str | None:
    reason = _reason(err)
    return reason.type if reason else None


def _failure_message(err: ActivityError | ApplicationError) -> str:
    reason = _reason(err)
    return reason.message if reason else str(err)


class LegacyOrderFlow:
    """Not a workflow definition of its own: ``OrderWorkflow`` delegates its run, signal and query to it."""

    def __init__(self, input: OrderWorkflowInput) -> None:
        self._order: Order = input.order
        self._stage = OrderStage.RECEIVED
        self._plan: Plan | None = None
        self._shipments: dict[str, ShipmentView] = {}
        self._seen_events: set[str] = set()
        # Events for shipments not planned yet: a reset reapplies the old run's signals before the new run
        # has planned, and a fast warehouse can report before the release call returns.
        self._early_events: list[ShipmentEventReceived] = []
        self._to_consume: list[str] = []
        self._timeline: list[TimelineEntry] = []
        self._failure: str | None = None

    # --- the lifecycle ----------------------------------------------------------------------------------

    async def run(self, input: OrderWorkflowInput) -> OrderStatusView:
        order = self._order
        self._note("system", "order received", f"{len(order.lines)} line(s), {order.service_level}")

        try:
            validation = await _local_step(
                ActivityName.VALIDATE_ORDER, ValidateOrderInput(order=order), ValidateOrderResult
            )
        except ActivityFailure as err:
            if _failure_type(err) == ErrorType.ORDER_INVALID:
                self._failure = _failure_message(err)
                self._set_stage(OrderStage.REJECTED, "validation", self._failure)
                workflow.upsert_search_attributes([SA_EXCEPTION_CODE.value_set(ErrorType.ORDER_INVALID)])
                return self.status()
            raise
        self._set_stage(OrderStage.VALIDATED, "validation", "; ".join(validation.warnings))

        plan = await self._plan_and_reserve(validation)
        await self._release(plan)

        while not self._all_delivered():
            await workflow.wait_condition(lambda: bool(self._to_consume) or self._all_delivered())
            await self._consume_shipped(plan)
        await self._consume_shipped(plan)

        await workflow.wait_condition(workflow.all_handlers_finished)
        self._set_stage(OrderStage.COMPLETED, "system", "every shipment delivered")
        return self.status()

    async def _plan_and_reserve(self, validation: ValidateOrderResult) -> Plan:
        order = self._order
        for attempt in range(1, MAX_PLAN_ATTEMPTS + 1):
            try:
                plan = await _local_step(
                    ActivityName.PLAN_ORDER,
                    PlanOrderInput(order=order, destination=validation.destination, attempt=attempt),
                    Plan,
                )
            except ActivityFailure as err:
                if _failure_type(err) == ErrorType.OUT_OF_STOCK:
                    self._fail(_failure_type(err) or "", "sourcing", _failure_message(err))
                raise
            self._adopt_plan(plan)
            try:
                reserved = await _local_step(
                    ActivityName.RESERVE_STOCK,
                    ReserveStockInput(
                        reservation_key=reservation_key(order.order_id, attempt),
                        order_id=order.order_id,
                        allocations=plan.allocations,
                        customer_id=order.customer_id,
                    ),
                    ReserveStockResult,
                )
            except ActivityFailure as err:
                if _failure_type(err) not in (ErrorType.OUT_OF_STOCK, ErrorType.RESERVATION_RELEASED):
                    raise
                # Another order took the units between planning and reserving, or this attempt's hold was
                # released before (a reset after compensation): plan again, as a new attempt, on fresh stock.
                self._note("inventory", "reservation not held; planning again", _failure_message(err))
                continue
            self._set_stage(
                OrderStage.RESERVED, "inventory", f"{reserved.reserved_units} unit(s) held under {plan.plan_id}"
            )
            return plan
        self._fail(ErrorType.OUT_OF_STOCK, "sourcing", f"stock kept moving: no plan held after {MAX_PLAN_ATTEMPTS}")
        raise AssertionError("unreachable")

    def _adopt_plan(self, plan: Plan) -> None:
        self._plan = plan
        self._shipments = {
            s.shipment_id: ShipmentView(
                shipment_id=s.shipment_id, node_id=s.node_id, stage=ShipmentStage.PLANNED, allocations=s.allocations
            )
            for s in plan.shipments
        }
        workflow.upsert_search_attributes([SA_NODES.value_set(sorted(set(plan.node_ids)))])
        self._set_stage(OrderStage.PLANNED, "sourcing", plan.explanation.decision)
        early, self._early_events = self._early_events, []
        for event in early:
            self._apply_event(event)

    async def _release(self, plan: Plan) -> None:
        order = self._order

        async def release_one(shipment_id: str) -> None:
            shipment = next(s for s in plan.shipments if s.shipment_id == shipment_id)
            try:
                result = await workflow.execute_activity(
                    ActivityName.RELEASE_SHIPMENT,
                    ReleaseShipmentInput(
                        idempotency_key=release_key(order.order_id, plan.attempt, shipment.node_id),
                        order_id=order.order_id,
                        shipment=shipment,
                        ship_to=order.ship_to,
                        # The policy's shipping-method rules may have changed it (an upgrade for a VIP tier).
                        service_level=shipment.service_level or order.service_level,
                    ),
                    result_type=ReleaseShipmentResult,
                    summary=f"release {shipment.shipment_id} to {shipment.node_id}",
                    start_to_close_timeout=RELEASE_TIMEOUT,
                    retry_policy=RELEASE_RETRY,
                )
            except ActivityFailure as err:
                if _failure_type(err) == ErrorType.NODE_REJECTED:
                    await self._release_reservation(plan)
                    self._fail(ErrorType.NODE_REJECTED, shipment.node_id, _failure_message(err))
                raise
            current = self._shipments[shipment_id]
            update: dict[str, object] = {"provider_reference": result.provider_reference}
            if advances(current.stage, ShipmentStage.RELEASED):
                update["stage"] = ShipmentStage.RELEASED
            self._shipments[shipment_id] = current.model_copy(update=update)
            self._note(shipment.node_id, "shipment released", f"{shipment_id} as {result.provider_reference}")

        await asyncio.gather(*(release_one(s.shipment_id) for s in plan.shipments))
        if self._stage is OrderStage.RESERVED:
            self._set_stage(OrderStage.RELEASED, "fulfilment", f"{len(plan.shipments)} shipment(s) released")
        self._enter_fulfilment("fulfilment", "events arrived before the release completed")

    async def _consume_shipped(self, plan: Plan) -> None:
        while self._to_consume:
            shipment_id = self._to_consume[0]
            # Stock is reserved where it is taken from: the shipping node, and any node that transfers into it.
            view = self._shipments[shipment_id]
            for node_id in sorted({view.node_id, *(a.node_id for a in view.allocations)}):
                await _local_step(
                    ActivityName.CONSUME_STOCK,
                    SettleStockInput(
                        reservation_key=reservation_key(self._order.order_id, plan.attempt), node_id=node_id
                    ),
                    SettleStockResult,
                )
            self._to_consume.pop(0)

    async def _release_reservation(self, plan: Plan) -> None:
        await _local_step(
            ActivityName.RELEASE_STOCK,
            SettleStockInput(reservation_key=reservation_key(self._order.order_id, plan.attempt)),
            SettleStockResult,
        )
        self._note("inventory", "reservation released", plan.plan_id)

    # --- messages ---------------------------------------------------------------------------------------

    def shipment_event_received(self, event: ShipmentEventReceived) -> None:
        """Apply a warehouse/carrier fact. Duplicates are dropped; stale ones are recorded, never applied."""
        if event.event_id in self._seen_events:
            return
        self._seen_events.add(event.event_id)
        if event.shipment_id not in self._shipments and workflow.patched(PATCH_HOLD_EARLY_EVENTS):
            self._early_events.append(event)
            self._note(event.source, "event held until its shipment is planned", f"{event.stage} {event.shipment_id}")
            return
        self._apply_event(event)

    def _apply_event(self, event: ShipmentEventReceived) -> None:
        current = self._shipments.get(event.shipment_id)
        if current is None:
            self._note(event.source, "event for unknown shipment ignored", f"{event.stage} {event.shipment_id}")
            return
        if not advances(current.stage, event.stage):
            self._note(event.source, "stale event ignored", f"{event.stage} after {current.stage}")
            return
        update: dict[str, object] = {"stage": event.stage}
        if event.tracking_number:
            update["tracking_number"] = event.tracking_number
        self._shipments[event.shipment_id] = current.model_copy(update=update)
        self._note(event.source, f"shipment {event.stage}", event.shipment_id)
        if has_left_node(event.stage) and not has_left_node(current.stage):
            self._to_consume.append(event.shipment_id)
        self._enter_fulfilment(event.source, f"first event: {event.stage}")

    def status(self) -> OrderStatusView:
        order = self._order
        return OrderStatusView(
            order_id=order.order_id,
            stage=self._stage,
            customer_id=order.customer_id,
            channel=order.channel,
            service_level=order.service_level,
            lines=len(order.lines),
            shipments=list(self._shipments.values()),
            plan=self._plan,
            failure=self._failure,
            timeline=list(self._timeline),
        )

    # --- bookkeeping ------------------------------------------------------------------------------------

    def _all_delivered(self) -> bool:
        return bool(self._shipments) and all(s.stage is ShipmentStage.DELIVERED for s in self._shipments.values())

    def _enter_fulfilment(self, actor: str, detail: str) -> None:
        """The order is in fulfilment once it is reserved and any shipment has moved past its release."""
        progressed = any(advances(ShipmentStage.RELEASED, s.stage) for s in self._shipments.values())
        if progressed and self._stage in (OrderStage.RESERVED, OrderStage.RELEASED):
            self._set_stage(OrderStage.IN_FULFILMENT, actor, detail)

    def _note(self, actor: str, event: str, detail: str = "") -> None:
        self._timeline.append(TimelineEntry(at=workflow.now(), actor=actor, event=event, detail=detail))

    def _set_stage(self, stage: OrderStage, actor: str, detail: str = "") -> None:
        self._stage = stage
        self._note(actor, f"order {stage}", detail)
        workflow.upsert_search_attributes([SA_ORDER_STATUS.value_set(stage)])
        workflow.logger.info("order %s is %s", self._order.order_id, stage)

    def _fail(self, code: str, actor: str, reason: str) -> None:
        """End the order on purpose: the workflow fails with a typed, business-readable reason."""
        self._failure = reason
        self._set_stage(OrderStage.FAILED, actor, reason)
        workflow.upsert_search_attributes([SA_EXCEPTION_CODE.value_set(code)])
        raise ApplicationError(reason, type=code, non_retryable=True)
