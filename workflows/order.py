"""``OrderWorkflow``: one durable workflow per order, from receipt to delivery, collection or cancellation.

The workflow decides nothing itself. Validation, sourcing and the exception playbooks are pure functions in
``domain``; activities do the side effects; the workflow keeps the order's state (``OrderState``), waits,
and executes what was decided, journaling each step in the timeline. One loop owns every side effect:
signals only record facts, and updates that need activities (cancel, reroute, change of address or
service) queue a command for the loop and wait for its answer, so nothing runs twice or in parallel with
itself.

Every side effect carries an idempotency key built from the order id, the step and the plan attempt
(``workflows.keys``), never from the run id, so a retry, a worker crash or a reset from the Temporal UI
changes nothing that has already happened.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import exceptions as playbook
    from domain.errors import ErrorType
    from domain.exceptions import Action, ExceptionCode, Undo
    from domain.lifecycle import FINISHED_STAGES, OrderStage, ShipmentStage, advances, has_left_node
    from domain.options import PlanVariant, Shape, plan_fingerprint
    from domain.orders import Order
    from domain.policy import Method
    from domain.sourcing import Plan, PlannedShipment
    from workflows.contracts import (
        SA_EXCEPTION_CODE,
        SA_HOLD_REASON,
        SA_NODES,
        SA_ORDER_STATUS,
        ActivityName,
        AddNote,
        Audience,
        AuthorizePaymentInput,
        BackorderState,
        CancelOrder,
        CancelReleaseInput,
        CancelReleaseResult,
        CapturePaymentInput,
        ChangeAddress,
        ChangePickup,
        ChangeServiceLevel,
        CheckNodesInput,
        CheckNodesResult,
        DecideReview,
        FollowUpKind,
        Hold,
        HoldCode,
        HoldOrder,
        LineSource,
        LineSources,
        NodeAtpInput,
        NodeAtpResult,
        NotifyInput,
        NotifyResult,
        OrderState,
        OrderStatusView,
        OrderWorkflowInput,
        Override,
        OverrideResult,
        PaymentResult,
        Placement,
        PlanEffect,
        PlanOrderInput,
        PromiseChange,
        PublishStatusInput,
        PublishStatusResult,
        QueryName,
        QuotedOption,
        QuoteOutcome,
        RefundPaymentInput,
        RegisterTrackingInput,
        RegisterTrackingResult,
        ReleaseHold,
        ReleaseShipmentInput,
        ReleaseShipmentResult,
        RequestFollowUpInput,
        RequestFollowUpResult,
        RerouteShipment,
        ReserveStockInput,
        ReserveStockResult,
        Role,
        ScreenOrderInput,
        ScreenOrderResult,
        SettleStockInput,
        SettleStockResult,
        ShipmentEventReceived,
        ShipmentIssueReported,
        ShipmentStatusInput,
        ShipmentStatusResult,
        ShipmentView,
        SignalName,
        StatusEvent,
        StockAvailable,
        TimelineEntry,
        TrackParcelInput,
        TrackParcelResult,
        UpdateName,
        ValidateOrderInput,
        ValidateOrderResult,
        VoidPaymentInput,
    )
    from workflows.keys import (
        cancel_key,
        follow_up_key,
        notify_key,
        payment_key,
        release_key,
        reservation_key,
        tracking_key,
    )
    from workflows.order_v1 import LegacyOrderFlow

# Behaviour changes, named so that histories recorded before them still replay (see docs/operations.md).
# The lifecycle with validation holds, payments, playbooks and overrides. Runs without its marker were
# started by the first version and finish in ``workflows.order_v1``.
PATCH_LIFECYCLE_V2 = "lifecycle-v2"
# Status sync through the transactional outbox: each stage change is numbered and published (``publish_status``).
# Runs without the marker (recorded before it) publish nothing, and replay exactly as they ran.
PATCH_STATUS_OUTBOX = "status-outbox"
# A stalled parcel is first polled at the carrier (``track_parcel``); traced and escalated only if the carrier has
# nothing newer. Runs without the marker (recorded before it) trace and escalate at once, as they ran.
PATCH_CARRIER_POLL = "carrier-poll"
# An unacknowledged release is first asked about at its node's provider (``shipment_status``): its webhooks may
# have gone missing while the work went on. Runs without the marker escalate and re-plan at once, as they ran.
PATCH_PROVIDER_POLL = "provider-poll"
# Each parcel's tracking number is registered with the carrier (``register_tracking``) so its events come to us.
# Runs without the marker (recorded before it) registered nothing, and replay as they ran.
PATCH_CARRIER_REGISTER = "carrier-register"

# A plan can be lost to a race for the last units; this many tries in a row, then the order waits as a backorder.
RESERVE_TRIES = 3

# Retries and timeouts, per kind of call (docs/operations.md has the table).
# Local activities: short database- or CPU-only steps. Transient failures (a DB restart) retry without limit
# at a capped interval; business failures are non-retryable by type.
LOCAL_TIMEOUT = timedelta(seconds=15)
LOCAL_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
# Calls to systems we do not run (WMS, payment gateway, fraud screen, carrier): an outage of hours must not
# lose the order, so they retry without limit, each attempt short, backing off to five minutes.
PARTNER_TIMEOUT = timedelta(seconds=30)
PARTNER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
# A message is worth a few tries, not the order's progress: after ten the failure is journaled and dropped.
NOTIFY_TIMEOUT = timedelta(seconds=10)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=10
)

R = TypeVar("R")

# A pickup ready this much later (or earlier) than promised counts as a change of promise; less is drift.
READY_SLACK = timedelta(hours=1)
# A pickup shipment can still move to another branch until the branch has picked it.
_PICKUP_MOVABLE = (ShipmentStage.PLANNED, ShipmentStage.RELEASED, ShipmentStage.ACKNOWLEDGED)
# A parcel the carrier has and has not yet delivered: the one whose events we want.
_ON_THE_WAY = (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT)
# Stages an order is in before its placement has an answer (accepted or not, reserved or not).
_PLACING = (OrderStage.RECEIVED, OrderStage.VALIDATED, OrderStage.PLANNED)

# What an activity can fail with. A regular activity's failure arrives as ActivityError wrapping the
# activity's ApplicationError; a local activity's (temporalio 1.35) arrives as the ApplicationError itself.
ActivityFailure = (ActivityError, ApplicationError)


def _reason(err: ActivityError | ApplicationError) -> ApplicationError | None:
    cause = err.cause if isinstance(err, ActivityError) else err
    return cause if isinstance(cause, ApplicationError) else None


def _failure_type(err: ActivityError | ApplicationError) -> str | None:
    reason = _reason(err)
    return reason.type if reason else None


def _failure_message(err: ActivityError | ApplicationError) -> str:
    reason = _reason(err)
    return reason.message if reason else str(err)


async def _local(name: str, arg: object, result_type: type[R]) -> R:
    """A short database- or CPU-only step as a local activity: no round trip through the server."""
    result = await workflow.execute_local_activity(
        name, arg, result_type=result_type, start_to_close_timeout=LOCAL_TIMEOUT, retry_policy=LOCAL_RETRY
    )
    assert isinstance(result, result_type)
    return result


async def _partner(name: str, arg: object, result_type: type[R], summary: str) -> R:
    """A call to an outside system, with a summary the Temporal UI shows in business terms."""
    result = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=PARTNER_TIMEOUT,
        retry_policy=PARTNER_RETRY,
        summary=summary,
    )
    assert isinstance(result, result_type)
    return result


def _effect(shipments: list[ShipmentView]) -> PlanEffect:
    """Where these shipments come from, what they cost and charge, and when the last one is promised."""
    readies = [v.ready_by for v in shipments if v.method is Method.PICKUP]
    return PlanEffect(
        node_ids=[v.node_id for v in shipments],
        cost_minor=sum(v.cost_minor for v in shipments),
        promised_date=max((v.current_promise for v in shipments if v.current_promise), default=None),
        price_minor=sum(v.shipping_minor for v in shipments),
        ready_by=None if not readies or None in readies else max(r for r in readies if r is not None),
        shipments=len(shipments),
    )


def _quoted_effect(quote: QuotedOption) -> PlanEffect:
    """The promise the customer was shown at checkout. A pickup's is its ready-by instant (the quote does not
    carry the branch's local day, and the UTC date of the instant is not the day the customer was shown)."""
    return PlanEffect(
        node_ids=list(quote.node_ids),
        cost_minor=0,
        promised_date=quote.deliver_by,
        price_minor=quote.price_minor or 0,
        ready_by=quote.ready_by,
    )


def _money(minor: int, currency: str) -> str:
    """Minor units as the customer reads them (two decimals: the currencies in use have cents)."""
    return f"{minor / 100:.2f} {currency}"


def _promise_words(effect: PlanEffect, currency: str) -> str:
    when = effect.ready_by.strftime("%Y-%m-%d %H:%M UTC") if effect.ready_by else effect.promised_date
    where = ", ".join(effect.node_ids) or "as quoted"
    return f"{where}, {when or 'date unknown'}, shipping {_money(effect.price_minor, currency)}"


def _moved(before: PlanEffect, after: PlanEffect) -> bool:
    """The customer would notice: another day, price or number of shipments, or a pickup ready more than
    ``READY_SLACK`` later or earlier (a ready-by is an estimate that drifts by the minutes between quote and order)."""
    if (before.price_minor, before.shipments) != (after.price_minor, after.shipments):
        return True
    if before.ready_by is not None and after.ready_by is not None:
        # Pickups: the instant, within the slack (both sides have one).
        return abs(after.ready_by - before.ready_by) > READY_SLACK
    return (before.promised_date, before.ready_by) != (after.promised_date, after.ready_by)


class OverrideRefused(ApplicationError):
    """An override that passed validation but could not be carried out (the answer says why)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type=ErrorType.OVERRIDE_REFUSED, non_retryable=True)


def _invalid(message: str) -> ApplicationError:
    """A validator's refusal: the update is rejected before anything is written to history."""
    return ApplicationError(message, type=ErrorType.OVERRIDE_INVALID, non_retryable=True)


@dataclass
class _Command:
    """An update's work, queued for the loop; ``result`` or ``error`` is its answer."""

    id: str
    request: CancelOrder | RerouteShipment | ChangeServiceLevel | ChangeAddress | ChangePickup
    result: OverrideResult | None = None
    error: str | None = None


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, input: OrderWorkflowInput) -> None:
        self._settings = input.settings
        self._s: OrderState = input.resume or OrderState(order=input.order, quote=input.quote)
        self._legacy_flow = LegacyOrderFlow(input)
        self._legacy: bool | None = None
        self._outbox: bool | None = None
        self._issues: list[ShipmentIssueReported] = []
        self._commands: list[_Command] = []
        self._done: dict[str, _Command] = {}
        # Set by any message that may give the loop something to do; cleared when the loop looks.
        self._wake = False
        # Nodes to avoid in the very next plan only (paused or full right now, not for good).
        self._avoid: set[str] = set()

    def _is_legacy(self) -> bool:
        """Orders started before ``lifecycle-v2`` finish on the code they started with."""
        if self._legacy is None:
            self._legacy = not workflow.patched(PATCH_LIFECYCLE_V2)
        return self._legacy

    def _outbox_enabled(self) -> bool:
        """Stage changes go to the status outbox in runs that carry the ``status-outbox`` marker."""
        if self._outbox is None:
            self._outbox = not self._is_legacy() and workflow.patched(PATCH_STATUS_OUTBOX)
        return self._outbox

    # --- the lifecycle ----------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderStatusView:
        if self._is_legacy():
            return await self._legacy_flow.run(input)
        s = self._s
        outbox = self._outbox_enabled()
        if input.resume is None:
            order = s.order
            self._note("system", "order received", f"{len(order.lines)} line(s), {order.service_level}")
            if outbox:
                self._queue_status(OrderStage.RECEIVED, None, "system", "order received")
            if self._settings.change_window > timedelta(0):
                # The customer may change their mind this long after ordering: nothing is released before then.
                s.release_at = workflow.now() + self._settings.change_window
            if not await self._validate():
                return await self._finish()
        else:
            self._note("system", "continued as new", f"run {s.runs}, {len(s.timeline)} timeline entries carried")
            if outbox and s.status_seq == 0:
                # The run before did not publish (it predates the outbox): tell subscribers where the order is.
                self._queue_status(s.stage, None, "system", "status as of continue-as-new")
        await self._fulfil()
        return await self._finish()

    async def _finish(self) -> OrderStatusView:
        """Let every update and signal handler finish before the workflow completes: none is lost."""
        await self._publish_status()
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._commands)
        await self._publish_status()
        return self.status()

    # --- validation, fraud review, payment authorization -------------------------------------------------

    async def _validate(self) -> bool:
        """True when the order may be fulfilled; otherwise it ended (rejected or cancelled) here."""
        s = self._s
        try:
            validation = await _local(
                ActivityName.VALIDATE_ORDER, ValidateOrderInput(order=s.order), ValidateOrderResult
            )
        except ActivityFailure as err:
            if _failure_type(err) == ErrorType.ORDER_INVALID:
                await self._reject(ErrorType.ORDER_INVALID, "validation", _failure_message(err))
                return False
            raise
        s.destination = validation.destination
        for warning in validation.warnings:
            self._note("validation", "warning", warning)

        screen = await _partner(
            ActivityName.SCREEN_ORDER, ScreenOrderInput(order=s.order), ScreenOrderResult, "fraud screen"
        )
        self._note("fraud", "screened", f"score {screen.score:.2f} ({', '.join(screen.reasons) or 'no signals'})")
        if playbook.fraud_needs_review(screen.score, self._settings):
            reason = f"fraud score {screen.score:.2f} at or above {self._settings.fraud_review_threshold:.2f}"
            if not await self._review(reason):
                return False

        if s.cancel_requested is not None:
            await self._cancel_everything(s.cancel_requested)
            return False
        if not await self._authorize():
            return False
        if s.cancel_requested is not None:
            await self._cancel_everything(s.cancel_requested)
            return False
        self._set_stage(OrderStage.VALIDATED, "validation", "; ".join(validation.warnings))
        return True

    async def _authorize(self) -> bool:
        s = self._s
        order = s.order
        s.payment = s.payment.model_copy(update={"method": order.payment_method})
        try:
            auth = await _partner(
                ActivityName.AUTHORIZE_PAYMENT,
                AuthorizePaymentInput(
                    idempotency_key=payment_key(order.order_id, "authorize"),
                    order_id=order.order_id,
                    customer_id=order.customer_id,
                    method=order.payment_method,
                    amount_minor=order.total_minor,
                    currency=order.currency,
                ),
                PaymentResult,
                f"authorize {_money(order.total_minor, order.currency)} ({order.payment_method})",
            )
        except ActivityFailure as err:
            kind = _failure_type(err)
            if kind == ErrorType.PAYMENT_DECLINED:
                await self._reject(ErrorType.PAYMENT_DECLINED, "payment", _failure_message(err))
                return False
            if kind == ErrorType.CREDIT_LIMIT_EXCEEDED:
                if not await self._review(f"credit limit: {_failure_message(err)}"):
                    return False
                s.payment = s.payment.model_copy(update={"approved_without_authorization": True})
                self._note("payment", "invoiced on terms over the credit limit", "approved on review")
                return True
            raise
        s.payment = s.payment.model_copy(
            update={"authorization_id": auth.authorization_id, "authorized_minor": auth.amount_minor}
        )
        self._note(
            "payment", "payment authorized", f"{_money(auth.amount_minor, order.currency)} as {auth.authorization_id}"
        )
        return True

    async def _review(self, reason: str) -> bool:
        """Hold the order for a CSR to approve or reject. It waits as long as it takes, escalating each period."""
        s = self._s
        s.review_approved = None
        self._add_hold(HoldCode.REVIEW, reason, "system")
        self._set_stage(OrderStage.ON_HOLD, "review", reason)
        await self._publish_status()  # a review can take days: subscribers hear of the hold now
        await self._notify(Audience.CSR, "review_needed", f"order {s.order.order_id} needs review: {reason}")
        while s.review_approved is None and s.cancel_requested is None:
            hold = self._hold(HoldCode.REVIEW)
            due = self._escalation_due(hold) if hold else None
            timeout = max(timedelta(0), due - workflow.now()) if due else None
            try:
                await workflow.wait_condition(
                    lambda: s.review_approved is not None or s.cancel_requested is not None, timeout=timeout
                )
            except TimeoutError:
                await self._escalate_hold(HoldCode.REVIEW, ExceptionCode.REVIEW_OVERDUE)
        if s.cancel_requested is not None:
            await self._cancel_everything(s.cancel_requested)
            return False
        if not s.review_approved:
            await self._reject("ReviewRejected", "review", "rejected on review")
            return False
        return True

    async def _reject(self, code: str, actor: str, reason: str) -> None:
        s = self._s
        s.failure = reason
        await self._give_back_money("order rejected")
        self._set_stage(OrderStage.REJECTED, actor, reason)
        self._set_exception(code)
        await self._notify(Audience.CUSTOMER, "rejected", f"Your order {s.order.order_id} was not accepted: {reason}")

    # --- fulfilment: the one loop ------------------------------------------------------------------------

    async def _fulfil(self) -> None:
        s = self._s
        while True:
            self._wake = False
            await self._run_commands()
            if s.cancel_requested is not None and not s.stage.is_terminal:
                await self._cancel_everything(s.cancel_requested)
            if s.stage.is_terminal:
                return
            await self._settle_departed()
            await self._register_tracking()
            await self._handle_issues()
            await self._handle_due()
            if not self._blocking_hold():
                await self._plan_if_needed()
                await self._release_planned()
            self._refresh_stage()
            await self._publish_status()
            if self._wake or self._commands or self._issues:
                continue
            if await self._complete_if_done():
                return
            if self._history_is_long():
                await self._continue_as_new()
            await self._wait()

    async def _wait(self) -> None:
        """Sleep until a message gives the loop work, or until the next deadline."""
        due = self._next_deadline()
        timeout = None if due is None else max(timedelta(0), due - workflow.now())
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._wake or bool(self._commands or self._issues), timeout=timeout)

    def _next_deadline(self) -> datetime | None:
        s = self._s
        times: list[datetime | None] = []
        for view in self._live():
            times.extend(playbook.deadlines(view, self._settings))
        if s.backorder is not None:
            times += [s.backorder.deadline, s.backorder.next_check]
        times += [self._escalation_due(h) for h in s.holds if h.code is not HoldCode.REVIEW]
        if self._in_change_window():
            times.append(s.release_at)
        return playbook.earliest(times)

    def _in_change_window(self) -> bool:
        release_at = self._s.release_at
        return release_at is not None and workflow.now() < release_at

    async def _complete_if_done(self) -> bool:
        s = self._s
        if self._remainder() or s.backorder is not None:
            return False
        live = self._live()
        if any(v.stage not in FINISHED_STAGES or not v.stock_settled for v in live):
            return False
        if any(self._capture_due(v) for v in live) or self._hold(HoldCode.PAYMENT):
            return False
        await self._give_back_money("order complete: nothing more to capture")
        if live:
            self._set_stage(OrderStage.COMPLETED, "system", f"{len(live)} shipment(s) delivered or collected")
        else:
            self._set_stage(OrderStage.CANCELLED, "system", "every unit was cancelled")
        return True

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._settings.history_event_limit
        )

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._commands)
        if self._wake or self._issues:
            return  # a message arrived meanwhile: handle it first, continue as new on a later turn
        s = self._s
        s.runs += 1
        workflow.continue_as_new(OrderWorkflowInput(order=s.order, settings=self._settings, resume=s))

    # --- planning and reserving ---------------------------------------------------------------------------

    def _remainder(self) -> dict[str, int]:
        """Units of each line not cancelled and not in a live shipment: what still needs a plan."""
        s = self._s
        covered: dict[str, int] = {}
        for view in self._live():
            for a in view.allocations:
                covered[a.line_id] = covered.get(a.line_id, 0) + a.quantity
        left = {
            line.line_id: line.quantity - s.cancelled.get(line.line_id, 0) - covered.get(line.line_id, 0)
            for line in s.order.lines
        }
        return {line_id: qty for line_id, qty in left.items() if qty > 0}

    async def _plan_if_needed(self) -> None:
        s = self._s
        remainder = self._remainder()
        if not remainder:
            s.backorder = None
            return
        if s.backorder is not None:
            step = playbook.backorder_step(
                workflow.now(),
                deadline=s.backorder.deadline,
                next_check=s.backorder.next_check,
                stock_signalled=s.backorder.stock_signalled,
            )
            if step.expire:
                await self._expire_backorder(remainder)
                return
            if not step.replan:
                return
            s.backorder = s.backorder.model_copy(
                update={"stock_signalled": False, "next_check": workflow.now() + self._settings.backorder_recheck}
            )
        await self._plan(remainder)

    async def _plan(self, quantities: dict[str, int], only_nodes: list[str] | None = None) -> Plan | None:
        """Decide and reserve a plan for these units; None (and a backorder) when nothing can be held.

        A plan attempt number is used only once a plan is recorded under it, so waiting out a backorder does
        not use up attempts; every plan recorded does, towards ``max_plan_attempts``.
        """
        s = self._s
        order = self._order_for(quantities)
        for _ in range(RESERVE_TRIES):
            if s.attempt >= self._settings.max_plan_attempts:
                await self._fail(
                    ExceptionCode.PLAN_ATTEMPTS_EXHAUSTED, "sourcing", f"{s.attempt} plans made, none could be kept"
                )
            attempt = s.attempt + 1
            try:
                plan = await _local(
                    ActivityName.PLAN_ORDER,
                    PlanOrderInput(
                        order=order,
                        destination=s.destination,
                        attempt=attempt,
                        excluded_nodes=sorted(set(s.excluded_nodes) | self._avoid),
                        only_nodes=only_nodes,
                        variant=self._variant(),
                        quote=s.quote if s.quote_outcome is None and only_nodes is None else None,
                        not_before=s.release_at if self._in_change_window() else None,
                    ),
                    Plan,
                )
            except ActivityFailure as err:
                if _failure_type(err) != ErrorType.OUT_OF_STOCK:
                    raise
                if only_nodes is not None:
                    raise OverrideRefused(_failure_message(err)) from None
                self._quote_not_kept(f"nothing can be supplied now ({_failure_message(err)}): backordered")
                self._enter_backorder(_failure_message(err))
                return None
            s.attempt = attempt
            self._avoid.clear()
            try:
                reserved = await _local(
                    ActivityName.RESERVE_STOCK,
                    ReserveStockInput(
                        reservation_key=reservation_key(s.order.order_id, attempt),
                        order_id=s.order.order_id,
                        allocations=plan.allocations,
                        customer_id=s.order.customer_id,
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
            self._adopt(plan)
            self._judge_quote(plan)
            self._set_stage(
                OrderStage.RESERVED, "inventory", f"{reserved.reserved_units} unit(s) held under {plan.plan_id}"
            )
            if plan.backorders:
                short = ", ".join(f"{b.quantity} x {b.sku}" for b in plan.backorders)
                self._enter_backorder(f"shipping what is available; waiting for {short}")
            else:
                s.backorder = None
            return plan
        self._enter_backorder(f"stock kept moving: no plan held after {RESERVE_TRIES} tries")
        return None

    def _variant(self) -> PlanVariant | None:
        """The customer's chosen method, for an order placed with a quote: as the order now stands (a change
        of branch or service follows the customer), in the shape of the chosen option (one shipment, no
        transfer...). None for other orders: they plan under the policy as it is."""
        s = self._s
        if s.quote is None:
            return None
        order = s.order
        method = Method.PICKUP if order.is_pickup else Method.DELIVERY
        same_method = method is s.quote.variant.method
        return PlanVariant(
            method=method,
            service_level=order.service_level,
            pickup_node_id=order.pickup_node_id,
            shape=s.quote.variant.shape if same_method else Shape.AS_POLICY,
        )

    def _judge_quote(self, plan: Plan) -> None:
        """After the first plan of an order placed with a quote: did it keep the quoted option, and did the
        promise move? Either way the customer and the CSR see it."""
        s = self._s
        quote = s.quote
        if quote is None or s.quote_outcome is not None:
            return
        kept = plan_fingerprint(plan) == quote.plan_fingerprint
        detail = plan.explanation.quote or ("kept the quoted option" if kept else "the quoted option was not kept")
        if not kept:
            self._quote_not_kept(detail)
            return
        s.quote_outcome = QuoteOutcome(option_id=quote.option_id, kept=True, detail=detail)
        self._note("sourcing", "quote kept", f"{quote.option_id}: {detail}")
        after = _effect(self._live())
        before = _quoted_effect(quote).model_copy(update={"node_ids": after.node_ids, "shipments": after.shipments})
        if _moved(before, after):
            self._promise_changed("sourcing", "same nodes as quoted, but the promise moved since the quote", before)

    def _quote_not_kept(self, detail: str) -> None:
        s = self._s
        quote = s.quote
        if quote is None or s.quote_outcome is not None:
            return
        s.quote_outcome = QuoteOutcome(option_id=quote.option_id, kept=False, detail=detail)
        self._note("sourcing", "quote not kept", f"{quote.option_id}: {detail}")
        self._promise_changed("sourcing", detail, _quoted_effect(quote))

    def _promise_changed(self, actor: str, reason: str, before: PlanEffect) -> PlanEffect:
        """Record that the promise moved from ``before`` to what the live shipments promise now."""
        after = _effect(self._live())
        if not _moved(before, after) and before.node_ids == after.node_ids:
            return after
        s = self._s
        s.promise_changes.append(
            PromiseChange(at=workflow.now(), actor=actor, reason=reason, before=before, after=after)
        )
        currency = s.order.currency
        words = f"{_promise_words(before, currency)} -> {_promise_words(after, currency)}"
        self._note(actor, "promise changed", f"{words}: {reason}")
        return after

    def _order_for(self, quantities: dict[str, int]) -> Order:
        """The order as the sourcing engine should see it: only these units of these lines."""
        order = self._s.order
        lines = [line.model_copy(update={"quantity": quantities[line.line_id]}) for line in order.lines
                 if quantities.get(line.line_id, 0) > 0]  # fmt: skip
        return order.model_copy(update={"lines": lines})

    def _adopt(self, plan: Plan) -> None:
        s = self._s
        s.plan = plan
        first = not s.shipments
        for ps in plan.shipments:
            s.shipments.append(
                ShipmentView(
                    shipment_id=ps.shipment_id,
                    node_id=ps.node_id,
                    stage=ShipmentStage.PLANNED,
                    allocations=ps.allocations,
                    attempt=plan.attempt,
                    method=ps.method,
                    service_level=ps.service_level,
                    cost_minor=ps.cost_minor,
                    shipping_minor=ps.shipping_minor,
                    ready_by=ps.ready_by,
                    promised_date=ps.promised_date,
                    current_promise=ps.promised_date,
                )
            )
        workflow.upsert_search_attributes([SA_NODES.value_set(sorted({v.node_id for v in self._live()}))])
        if first:
            self._set_stage(OrderStage.PLANNED, "sourcing", plan.explanation.decision)
        else:
            self._note("sourcing", f"re-planned as {plan.plan_id}", plan.explanation.decision)
        early, s.early_events = s.early_events, []
        for event in early:
            self._apply_event(event)
        # Held events may have moved a shipment on (shipped: settle and capture it).
        self._wake = self._wake or bool(early)

    def _enter_backorder(self, reason: str) -> None:
        s = self._s
        now = workflow.now()
        if s.backorder is None:
            s.backorder = BackorderState(
                since=now,
                deadline=now + self._settings.backorder_wait,
                next_check=now + self._settings.backorder_recheck,
            )
            self._set_exception(ExceptionCode.BACKORDERED)
            self._note("sourcing", "backordered", f"{reason}; waiting until {s.backorder.deadline:%Y-%m-%d %H:%M} UTC")
        else:
            self._note("sourcing", "still backordered", reason)

    async def _expire_backorder(self, remainder: dict[str, int]) -> None:
        s = self._s
        for line_id, qty in remainder.items():
            s.cancelled[line_id] = s.cancelled.get(line_id, 0) + qty
        s.backorder = None
        units = sum(remainder.values())
        amount = self._amount(remainder)
        self._note("sourcing", "backorder expired", f"{units} unit(s) cancelled after {self._settings.backorder_wait}")
        await self._void(amount, "backorder expired")
        await self._notify(
            Audience.CUSTOMER, "backorder_cancelled",
            f"{units} unit(s) of your order could not be sourced in time and were cancelled; you were not charged.",
        )  # fmt: skip

    # --- releasing ----------------------------------------------------------------------------------------

    async def _release_planned(self) -> None:
        s = self._s
        planned = [v for v in self._live() if v.stage is ShipmentStage.PLANNED]
        if not planned or self._in_change_window():
            return
        readiness = await _local(
            ActivityName.CHECK_NODES,
            CheckNodesInput(node_ids=sorted({v.node_id for v in planned}), day=workflow.now().date()),
            CheckNodesResult,
        )
        not_ready = {n.node_id: n.reason or "not ready" for n in readiness.nodes if not n.ready}
        actions: list[Action] = []
        for view in planned:
            if view.node_id in not_ready:
                self._avoid.add(view.node_id)
                actions += playbook.node_unavailable(view, not_ready[view.node_id])
        ready = [v for v in planned if v.node_id not in not_ready]
        outcomes = await asyncio.gather(*(self._release_one(v) for v in ready))
        for view, rejection in zip(ready, outcomes, strict=True):
            if rejection is not None:
                actions += playbook.on_issue(
                    self._view(view.shipment_id), playbook.ShipmentIssue.REJECTED, detail=rejection,
                    new_estimate=None, reships_done=s.reships, settings=self._settings,
                )  # fmt: skip
        await self._execute(actions)

    async def _release_one(self, view: ShipmentView) -> str | None:
        """Release one shipment; the node's refusal comes back as its reason (the playbook decides)."""
        s = self._s
        shipment = next(
            (ps for ps in s.plan.shipments if ps.shipment_id == view.shipment_id), None
        ) if s.plan else None  # fmt: skip
        if shipment is None:
            shipment = self._planned_shipment(view)
        try:
            result = await _partner(
                ActivityName.RELEASE_SHIPMENT,
                ReleaseShipmentInput(
                    idempotency_key=release_key(s.order.order_id, view.attempt, view.node_id),
                    order_id=s.order.order_id,
                    shipment=shipment,
                    ship_to=s.order.ship_to,
                    # The policy's shipping-method rules may have changed it (an upgrade for a VIP tier).
                    service_level=view.service_level or s.order.service_level,
                ),
                ReleaseShipmentResult,
                f"release {view.shipment_id} to {view.node_id}",
            )
        except ActivityFailure as err:
            if _failure_type(err) == ErrorType.NODE_REJECTED:
                return _failure_message(err)
            raise
        current = self._view(view.shipment_id)
        update: dict[str, object] = {"provider_reference": result.provider_reference, "released_at": workflow.now()}
        if advances(current.stage, ShipmentStage.RELEASED):
            update["stage"] = ShipmentStage.RELEASED
        self._put(current.model_copy(update=update))
        self._note(view.node_id, "shipment released", f"{view.shipment_id} as {result.provider_reference}")
        return None

    def _planned_shipment(self, view: ShipmentView) -> PlannedShipment:
        """The plan's record of a shipment decided by an earlier plan (re-plans replace ``s.plan``)."""
        return PlannedShipment(
            shipment_id=view.shipment_id,
            node_id=view.node_id,
            allocations=view.allocations,
            method=view.method,
            service_level=view.service_level,
            cost_minor=view.cost_minor,
            ready_by=view.ready_by,
        )

    # --- after release: stock and money ---------------------------------------------------------------------

    async def _settle_departed(self) -> None:
        """Units that left a node are consumed in the ledger; the shipment's amount is captured."""
        for view in list(self._live()):
            if has_left_node(view.stage) and not view.stock_settled:
                await self._settle_stock(view, ActivityName.CONSUME_STOCK)
                self._put(self._view(view.shipment_id).model_copy(update={"stock_settled": True}))
            view = self._view(view.shipment_id)
            if self._capture_due(view) and not self._hold(HoldCode.PAYMENT):
                await self._capture(view)

    async def _settle_stock(self, view: ShipmentView, step: str) -> None:
        """Consume or release the shipment's reservation where its stock is held: its node, and any node that
        transfers into it."""
        key = reservation_key(self._s.order.order_id, view.attempt)
        for node_id in sorted({view.node_id, *(a.node_id for a in view.allocations)}):
            await _local(step, SettleStockInput(reservation_key=key, node_id=node_id), SettleStockResult)

    def _capture_due(self, view: ShipmentView) -> bool:
        p = self._s.payment
        return (
            has_left_node(view.stage)
            and view.stage is not ShipmentStage.LOST
            and view.captured_minor == 0
            and p.authorization_id is not None
            and self._amount_of(view) > 0
            # A re-ship replaces units already paid for: nothing is left to capture for it.
            and p.open_minor > 0
        )

    async def _capture(self, view: ShipmentView) -> None:
        s = self._s
        amount = min(self._amount_of(view), s.payment.open_minor)
        if amount <= 0:
            return
        assert s.payment.authorization_id is not None
        try:
            await _partner(
                ActivityName.CAPTURE_PAYMENT,
                CapturePaymentInput(
                    idempotency_key=payment_key(s.order.order_id, f"capture:{view.shipment_id}"),
                    authorization_id=s.payment.authorization_id,
                    amount_minor=amount,
                ),
                PaymentResult,
                f"capture {amount} for {view.shipment_id}",
            )
        except ActivityFailure as err:
            if _failure_type(err) != ErrorType.CAPTURE_FAILED:
                raise
            reason = f"capture of {amount} for {view.shipment_id} failed: {_failure_message(err)}"
            self._add_hold(HoldCode.PAYMENT, reason, "payment")
            await self._execute([playbook.Escalate(ExceptionCode.CAPTURE_FAILED, reason, view.shipment_id)])
            return
        s.payment = s.payment.model_copy(update={"captured_minor": s.payment.captured_minor + amount})
        self._put(self._view(view.shipment_id).model_copy(update={"captured_minor": amount}))
        self._note("payment", "payment captured", f"{_money(amount, s.order.currency)} for {view.shipment_id}")

    async def _void(self, amount: int, reason: str) -> None:
        s = self._s
        amount = min(amount, s.payment.open_minor)
        if amount <= 0 or s.payment.authorization_id is None:
            return
        n = s.payment.voids + 1
        await _partner(
            ActivityName.VOID_PAYMENT,
            VoidPaymentInput(
                idempotency_key=payment_key(s.order.order_id, f"void:{n}:{amount}"),
                authorization_id=s.payment.authorization_id,
                amount_minor=amount,
            ),
            PaymentResult,
            f"void {amount}: {reason}",
        )
        s.payment = s.payment.model_copy(update={"voided_minor": s.payment.voided_minor + amount, "voids": n})
        self._note("payment", "authorization released", f"{_money(amount, s.order.currency)}: {reason}")

    async def _refund(self, view: ShipmentView, reason: str) -> None:
        """Pay back what the customer paid for these units: captured with this shipment, or with the one it
        replaced (a re-ship is not charged again)."""
        s = self._s
        amount = min(self._amount_of(view), s.payment.captured_minor - s.payment.refunded_minor)
        if amount <= 0 or s.payment.authorization_id is None:
            return
        await _partner(
            ActivityName.REFUND_PAYMENT,
            RefundPaymentInput(
                idempotency_key=payment_key(s.order.order_id, f"refund:{view.shipment_id}"),
                authorization_id=s.payment.authorization_id,
                amount_minor=amount,
                reason=reason,
            ),
            PaymentResult,
            f"refund {amount} for {view.shipment_id}",
        )
        s.payment = s.payment.model_copy(update={"refunded_minor": s.payment.refunded_minor + amount})
        self._note("payment", "refunded", f"{_money(amount, s.order.currency)} for {view.shipment_id}: {reason}")

    async def _give_back_money(self, reason: str) -> None:
        await self._void(self._s.payment.open_minor, reason)

    # --- exceptions: issues, timers, playbook actions -----------------------------------------------------

    async def _handle_issues(self) -> None:
        s = self._s
        while self._issues:
            issue = self._issues.pop(0)
            view = self._find(issue.shipment_id)
            if view is None:
                self._note(issue.source, "issue for unknown shipment ignored", f"{issue.issue} {issue.shipment_id}")
                continue
            self._note(issue.source, f"shipment {issue.issue}", f"{issue.shipment_id}: {issue.detail}".rstrip(": "))
            await self._execute(
                playbook.on_issue(
                    view, issue.issue, detail=issue.detail, new_estimate=issue.new_estimate,
                    reships_done=s.reships, settings=self._settings,
                )
            )  # fmt: skip

    async def _handle_due(self) -> None:
        now = workflow.now()
        actions: list[Action] = []
        for view in self._live():
            # Before a playbook acts on a partner's silence, the partner is asked. ``patched`` is asked only when
            # such a deadline is due, so runs that never fall silent carry no marker.
            polled: bool | None = None
            if playbook.tracking_stalled(view, now, self._settings) and workflow.patched(PATCH_CARRIER_POLL):
                polled = await self._poll_carrier(view)
            elif playbook.ack_overdue(view, now, self._settings) and workflow.patched(PATCH_PROVIDER_POLL):
                polled = await self._poll_provider(view)
            if polled:
                continue
            if polled is not None:
                # Nothing new: the playbook goes on with the view as it is now (an event may have arrived while
                # the partner answered, and re-armed the clock).
                view = self._view(view.shipment_id)
            actions += playbook.due(view, now, self._settings)
        await self._execute(actions)
        for hold in list(self._s.holds):
            due = self._escalation_due(hold)
            if hold.code is not HoldCode.REVIEW and due is not None and now >= due:
                code = ExceptionCode.CAPTURE_FAILED if hold.code is HoldCode.PAYMENT else ExceptionCode.HOLD_OVERDUE
                await self._escalate_hold(hold.code, code)

    async def _execute(self, actions: list[Action]) -> None:
        """Carry out what a playbook decided, in its order, journaling each step."""
        s = self._s
        for action in actions:
            match action:
                case playbook.Ignore(reason=reason):
                    self._note("playbook", "nothing to do", reason)
                case playbook.Escalate(code=code, reason=reason, shipment_id=sid):
                    self._set_exception(code)
                    self._note("playbook", f"escalated: {code}", reason)
                    await self._notify(Audience.CSR, f"escalation:{code}", f"order {s.order.order_id}: {reason}", sid)
                case playbook.NotifyCustomer(kind=kind, message=message, shipment_id=sid):
                    await self._notify(Audience.CUSTOMER, kind, message, sid)
                    if kind == "pickup_reminder" and sid is not None:
                        self._put(self._view(sid).model_copy(update={"reminded": True}))
                case playbook.Repromise(shipment_id=sid, new_date=new_date, reason=reason):
                    view = self._view(sid)
                    self._put(view.model_copy(update={"current_promise": new_date}))
                    self._note("playbook", "re-promised", f"{sid}: {view.current_promise} -> {new_date} ({reason})")
                case playbook.Trace(shipment_id=sid, reason=reason):
                    view = self._view(sid)
                    await self._follow_up(view, FollowUpKind.TRACE, reason)
                    self._put(self._view(sid).model_copy(update={"escalated": True}))
                case playbook.Replan(shipment_id=sid, reason=reason, exclude_node=node):
                    if node is not None and node not in s.excluded_nodes:
                        s.excluded_nodes.append(node)
                    await self._end_shipment(self._view(sid), reason)
                case playbook.Reship(shipment_id=sid, reason=reason):
                    s.reships += 1
                    self._wake = True
                    self._put(self._view(sid).model_copy(update={"stage": ShipmentStage.LOST, "end_reason": reason}))
                    self._note("playbook", "re-shipping", f"{sid}: {reason}")
                case playbook.CancelShipment(shipment_id=sid, reason=reason):
                    view = self._view(sid)
                    if view.stage in (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT):
                        # Lost with no re-ship left: the units are gone; cancel them and refund what was paid.
                        self._put(view.model_copy(update={"stage": ShipmentStage.LOST, "end_reason": reason}))
                        await self._refund(view, reason)
                    elif not await self._end_shipment(view, reason):
                        continue
                    for a in view.allocations:
                        s.cancelled[a.line_id] = s.cancelled.get(a.line_id, 0) + a.quantity
                    await self._void(self._amount_of(view) - view.captured_minor, reason)

    async def _end_shipment(self, view: ShipmentView, reason: str) -> bool:
        """Undo one shipment as far as it can be undone. True when it ended (its units need a new plan or a
        cancellation); False when it had already left, and a follow-up was asked for instead."""
        s = self._s
        undo = playbook.undo_for(view.stage)
        if undo is Undo.NOTHING:
            return True
        if undo is Undo.CANCEL_AT_NODE:
            outcome = await _partner(
                ActivityName.CANCEL_RELEASE,
                CancelReleaseInput(
                    idempotency_key=cancel_key(view.shipment_id),
                    order_id=s.order.order_id,
                    shipment_id=view.shipment_id,
                    node_id=view.node_id,
                    provider_reference=view.provider_reference,
                    reason=reason,
                ),
                CancelReleaseResult,
                f"cancel {view.shipment_id} at {view.node_id}",
            )
            if not outcome.cancelled:
                # Too late: it left the node. Record how far it got, and ask for it back instead.
                # Without a stage in the answer: a pickup is waiting at the counter, a delivery has shipped.
                fallback = ShipmentStage.READY_FOR_PICKUP if view.method is Method.PICKUP else ShipmentStage.SHIPPED
                stage = outcome.stage or fallback
                if advances(view.stage, stage):
                    view = view.model_copy(update={"stage": stage})
                    self._put(view)
                self._note(view.node_id, f"cancel refused: {view.stage}", view.shipment_id)
                undo = playbook.undo_for(view.stage)
                if undo is Undo.CANCEL_AT_NODE:
                    return False
            else:
                self._note(view.node_id, "release cancelled", f"{view.shipment_id}: {reason}")
        if undo in (Undo.INTERCEPT, Undo.RETURN):
            kind = FollowUpKind.INTERCEPT if undo is Undo.INTERCEPT else FollowUpKind.RETURN
            await self._follow_up(view, kind, reason)
            return False
        await self._settle_stock(view, ActivityName.RELEASE_STOCK)
        self._put(
            self._view(view.shipment_id).model_copy(update={"stage": ShipmentStage.CANCELLED, "end_reason": reason})
        )
        self._note("inventory", "shipment ended; stock given back", f"{view.shipment_id}: {reason}")
        # Its units need a new plan or a cancellation: the loop goes round again.
        self._wake = True
        workflow.upsert_search_attributes([SA_NODES.value_set(sorted({v.node_id for v in self._live()}))])
        return True

    async def _follow_up(self, view: ShipmentView, kind: FollowUpKind, reason: str) -> None:
        s = self._s
        result = await _partner(
            ActivityName.REQUEST_FOLLOW_UP,
            RequestFollowUpInput(
                idempotency_key=follow_up_key(view.shipment_id, kind),
                order_id=s.order.order_id,
                shipment_id=view.shipment_id,
                kind=kind,
                reason=reason,
                tracking_number=view.tracking_number,
            ),
            RequestFollowUpResult,
            f"{kind} request for {view.shipment_id}",
        )
        self._note("carrier", f"{kind} requested", f"{view.shipment_id} as {result.reference}: {reason}")

    async def _poll_carrier(self, view: ShipmentView) -> bool:
        """Ask the carrier where a stalled parcel is. True when it reported a later stage, applied like a received
        event (the stall clock starts again); False when there is nothing new, or no tracking number to ask with."""
        s = self._s
        if view.tracking_number is None:
            self._note("carrier", "no tracking number to poll", view.shipment_id)
            return False
        result = await _partner(
            ActivityName.TRACK_PARCEL,
            TrackParcelInput(
                order_id=s.order.order_id, shipment_id=view.shipment_id, tracking_number=view.tracking_number
            ),
            TrackParcelResult,
            f"track {view.shipment_id} ({view.tracking_number})",
        )
        return self._polled(
            view, "carrier", "carrier-poll", result.stage, result.occurred_at, unknown="unknown to the carrier"
        )

    async def _poll_provider(self, view: ShipmentView) -> bool:
        """Ask the node's provider how far an unacknowledged shipment has got. True when it reported a later
        stage, applied like a received event; False when it has not acknowledged it (or never received it)."""
        result = await _partner(
            ActivityName.SHIPMENT_STATUS,
            ShipmentStatusInput(order_id=self._s.order.order_id, shipment_id=view.shipment_id, node_id=view.node_id),
            ShipmentStatusResult,
            f"status of {view.shipment_id} at {view.node_id}",
        )
        return self._polled(
            view,
            view.node_id,
            "provider-poll",
            result.stage,
            result.occurred_at,
            unknown="never received by the node",
            tracking_number=result.tracking_number,
        )

    def _polled(
        self,
        view: ShipmentView,
        actor: str,
        source: str,
        reported: ShipmentStage | None,
        occurred_at: datetime | None,
        *,
        unknown: str,
        tracking_number: str | None = None,
    ) -> bool:
        """Apply what a poll reported when it is news; journal it when it is not."""
        s = self._s
        stage = playbook.polled_progress(self._view(view.shipment_id), reported)
        if stage is None:
            self._note(actor, "poll: nothing new", f"{view.shipment_id}: {reported or unknown}")
            return False
        # The id comes from business identity (never a run id); a webhook of the same fact, arriving later, is stale.
        event = ShipmentEventReceived(
            event_id=f"poll:{view.shipment_id}:{stage}",
            shipment_id=view.shipment_id,
            stage=stage,
            occurred_at=occurred_at or workflow.now(),
            source=source,
            tracking_number=tracking_number,
        )
        if event.event_id not in s.seen_events:
            s.seen_events.append(event.event_id)
        self._apply_event(event)
        self._wake = True
        return True

    async def _register_tracking(self) -> None:
        """Ask the carrier to send us the events of each parcel on its way, once per tracking number. A refusal
        is journaled: the parcel is then followed by polling when its events stop (``tracking_stall``)."""
        s = self._s
        for view in self._live():
            number = view.tracking_number
            if number is None or view.tracking_registered == number or view.stage not in _ON_THE_WAY:
                continue
            if not workflow.patched(PATCH_CARRIER_REGISTER):
                return
            result = await _partner(
                ActivityName.REGISTER_TRACKING,
                RegisterTrackingInput(
                    idempotency_key=tracking_key(view.shipment_id, number),
                    order_id=s.order.order_id,
                    shipment_id=view.shipment_id,
                    tracking_number=number,
                ),
                RegisterTrackingResult,
                f"register tracking {number} for {view.shipment_id}",
            )
            registered = {"tracking_registered": number, "tracking_reference": result.reference}
            self._put(self._view(view.shipment_id).model_copy(update=registered))
            if result.reference is None:
                why = f"{view.shipment_id} ({number}): {result.refused}"
                self._note("carrier", "tracking registration refused", why)
            else:
                self._note("carrier", "tracking registered", f"{view.shipment_id}: {number} as {result.reference}")

    async def _notify(self, audience: Audience, kind: str, message: str, scope: str | None = None) -> None:
        """Tell the customer or the CSR queue. A message that cannot be sent is journaled, never fatal."""
        s = self._s
        s.notices += 1
        key = notify_key(s.order.order_id, kind, scope or str(s.notices))
        try:
            result = await workflow.execute_activity(
                ActivityName.NOTIFY,
                NotifyInput(
                    idempotency_key=key, order_id=s.order.order_id, audience=audience, kind=kind, message=message
                ),
                result_type=NotifyResult,
                start_to_close_timeout=NOTIFY_TIMEOUT,
                retry_policy=NOTIFY_RETRY,
                summary=f"notify {audience}: {kind}",
            )
        except ActivityFailure as err:
            self._note("notify", f"{audience} not notified", f"{kind}: {_failure_message(err)}")
            return
        if result.delivered:
            self._note("notify", f"{audience} notified", kind)

    # --- cancellation and failure -------------------------------------------------------------------------

    async def _cancel_everything(self, request: CancelOrder) -> None:
        """Undo in reverse what was done: releases, reservations, money; follow-ups for what already left."""
        s = self._s
        follow_ups = 0
        for shipment_id, _ in playbook.undo_order(self._live()):
            if not await self._end_shipment(self._view(shipment_id), f"order cancelled ({request.reason_code})"):
                follow_ups += 1
        for line in s.order.lines:
            left = line.quantity - self._departed_units(line.line_id)
            s.cancelled[line.line_id] = max(s.cancelled.get(line.line_id, 0), left)
        s.backorder = None
        await self._give_back_money(f"order cancelled ({request.reason_code})")
        detail = f"by {request.actor} ({request.role}, {request.reason_code})"
        if follow_ups:
            detail += f"; {follow_ups} shipment(s) had left: intercept or return requested, refund on return"
        self._set_stage(OrderStage.CANCELLED, request.actor, detail)
        await self._notify(Audience.CUSTOMER, "cancelled", f"Your order {s.order.order_id} has been cancelled.")

    async def _fail(self, code: str, actor: str, reason: str) -> None:
        """End the order on purpose, after undoing what can be undone: the workflow fails with a typed reason."""
        s = self._s
        for shipment_id, _ in playbook.undo_order(self._live()):
            await self._end_shipment(self._view(shipment_id), reason)
        await self._give_back_money(reason)
        s.failure = reason
        self._set_stage(OrderStage.FAILED, actor, reason)
        self._set_exception(code)
        await self._publish_status()
        await self._notify(Audience.CSR, f"failed:{code}", f"order {s.order.order_id} failed: {reason}")
        raise ApplicationError(reason, type=code, non_retryable=True)

    # --- commands queued by updates ---------------------------------------------------------------------------

    async def _run_commands(self) -> None:
        while self._commands:
            command = self._commands[0]
            try:
                command.result = await self._run_command(command.request)
            except OverrideRefused as refused:
                command.error = refused.message
            self._commands.pop(0)
            self._done[command.id] = command

    async def _run_command(
        self, request: CancelOrder | RerouteShipment | ChangeServiceLevel | ChangeAddress | ChangePickup
    ) -> OverrideResult:
        s = self._s
        match request:
            case CancelOrder(line_ids=None):
                s.cancel_requested = request
                await self._cancel_everything(request)
                return self._answer("order cancelled")
            case CancelOrder(line_ids=line_ids):
                assert line_ids is not None
                return await self._cancel_lines(request, line_ids)
            case RerouteShipment():
                return await self._reroute(request)
            case ChangeServiceLevel(service_level=level):
                s.order = s.order.model_copy(update={"service_level": level})
                return await self._replan_unreleased(request, f"service level now {level}")
            case ChangeAddress(ship_to=address):
                changed = s.order.model_copy(update={"ship_to": address})
                try:
                    validation = await _local(
                        ActivityName.VALIDATE_ORDER, ValidateOrderInput(order=changed), ValidateOrderResult
                    )
                except ActivityFailure as err:
                    if _failure_type(err) == ErrorType.ORDER_INVALID:
                        raise OverrideRefused(f"the new address is not valid: {_failure_message(err)}") from None
                    raise
                s.order = changed
                if changed.is_pickup:
                    # Collected at the branch: the address is for the invoice, and no plan depends on it.
                    self._journal(request, "billing address changed", f"{address.city}, {address.country}")
                    return self._answer(f"billing address now {address.city}, {address.country}")
                s.destination = validation.destination
                return await self._replan_unreleased(request, f"ship to {address.city}, {address.country}")
            case ChangePickup(node_id=node_id):
                return await self._change_pickup(request, node_id)
        raise AssertionError(f"unknown command {request!r}")

    async def _cancel_lines(self, request: CancelOrder, line_ids: list[str]) -> OverrideResult:
        s = self._s
        wanted = set(line_ids)
        for view in self._live():
            if any(a.line_id in wanted for a in view.allocations) and not has_left_node(view.stage):
                await self._end_shipment(view, f"lines {', '.join(sorted(wanted))} cancelled ({request.reason_code})")
        cancelled_units: dict[str, int] = {}
        for line_id in sorted(wanted):
            line = s.order.line(line_id)
            in_flight = sum(a.quantity for v in self._live() for a in v.allocations if a.line_id == line_id)
            newly = line.quantity - s.cancelled.get(line_id, 0) - in_flight
            if newly > 0:
                s.cancelled[line_id] = s.cancelled.get(line_id, 0) + newly
                cancelled_units[line_id] = newly
        await self._void(self._amount(cancelled_units), f"lines cancelled ({request.reason_code})")
        self._journal(request, "lines cancelled", ", ".join(f"{k}: {v}" for k, v in cancelled_units.items()))
        self._wake = True
        shipped = {lid: self._departed_units(lid) for lid in wanted if self._departed_units(lid)}
        message = f"{sum(cancelled_units.values())} unit(s) cancelled"
        if shipped:
            message += f"; already shipped, not cancelled: {shipped} (a return is needed)"
        return self._answer(message)

    async def _reroute(self, request: RerouteShipment) -> OverrideResult:
        s = self._s
        view = self._view(request.shipment_id)
        quantities: dict[str, int] = {}
        for a in view.allocations:
            quantities[a.line_id] = quantities.get(a.line_id, 0) + a.quantity
        skus = sorted({a.sku for a in view.allocations})
        atp = await _local(
            ActivityName.NODE_ATP,
            NodeAtpInput(node_ids=[view.node_id, request.node_id], skus=skus, customer_id=s.order.customer_id),
            NodeAtpResult,
        )
        before = PlanEffect(
            node_ids=[view.node_id], cost_minor=view.cost_minor, promised_date=view.current_promise, atp=atp.atp
        )
        reason = f"rerouted to {request.node_id} by {request.actor} ({request.reason_code})"
        if not await self._end_shipment(view, reason):
            raise OverrideRefused(f"{view.shipment_id} has already left {view.node_id}: it cannot be rerouted")
        plan = await self._plan(quantities, only_nodes=[request.node_id])
        if plan is None:
            raise OverrideRefused(f"{request.node_id} could not hold the units; the shipment is being planned again")
        self._journal(request, "shipment rerouted", f"{view.shipment_id} -> {', '.join(plan.node_ids)}")
        after_atp = await _local(
            ActivityName.NODE_ATP,
            NodeAtpInput(node_ids=[view.node_id, request.node_id], skus=skus, customer_id=s.order.customer_id),
            NodeAtpResult,
        )
        after = PlanEffect(
            node_ids=plan.node_ids, cost_minor=plan.cost_minor, promised_date=plan.promised_date(), atp=after_atp.atp
        )
        self._wake = True
        return self._answer(f"{view.shipment_id} moved to {request.node_id}", before=before, after=after)

    async def _replan_unreleased(self, request: Override, what: str) -> OverrideResult:
        """Drop the shipments not released yet and plan their units again under the changed order."""
        return await self._replan(request, what, lambda v: v.stage is ShipmentStage.PLANNED)

    async def _replan(self, request: Override, what: str, affected: Callable[[ShipmentView], bool]) -> OverrideResult:
        """End the affected shipments (cancelling at the node what was released) and plan their units again
        under the changed order; the answer and the order's promise history carry before and after."""
        before = _effect(self._live())
        for view in self._live():
            if affected(view):
                await self._end_shipment(view, what)
        self._journal(request, "order changed", what)
        if not self._blocking_hold():
            await self._plan_if_needed()
        after = self._promise_changed(request.actor, f"{what} ({request.role}, {request.reason_code})", before)
        self._wake = True
        return self._answer(what, before=before, after=after)

    async def _change_pickup(self, request: ChangePickup, node_id: str) -> OverrideResult:
        """Collect at ``node_id``: the branch is validated as a pickup point first (it becomes the destination)."""
        s = self._s
        changed = s.order.model_copy(update={"pickup_node_id": node_id})
        try:
            validation = await _local(
                ActivityName.VALIDATE_ORDER, ValidateOrderInput(order=changed), ValidateOrderResult
            )
        except ActivityFailure as err:
            if _failure_type(err) == ErrorType.ORDER_INVALID:
                raise OverrideRefused(f"{node_id} cannot take this pickup: {_failure_message(err)}") from None
            raise
        was_pickup = s.order.is_pickup
        s.order = changed
        s.destination = validation.destination
        what = f"collect at {node_id}" + ("" if was_pickup else " instead of delivery")
        # The validator allowed it: every live shipment can still be moved.
        return await self._replan(request, what, lambda _: True)

    def _answer(self, message: str, **effects: PlanEffect) -> OverrideResult:
        before, after = effects.get("before"), effects.get("after")
        difference = None if before is None or after is None else after.price_minor - before.price_minor
        return OverrideResult(message=message, stage=self._s.stage, price_difference_minor=difference, **effects)

    async def _queue(
        self, request: CancelOrder | RerouteShipment | ChangeServiceLevel | ChangeAddress | ChangePickup
    ) -> OverrideResult:
        info = workflow.current_update_info()
        command_id = info.id if info else str(workflow.uuid4())
        self._commands.append(_Command(id=command_id, request=request))
        self._wake = True
        await workflow.wait_condition(lambda: command_id in self._done)
        command = self._done.pop(command_id)
        if command.error is not None:
            raise OverrideRefused(command.error)
        assert command.result is not None
        return command.result

    # --- messages: signals ----------------------------------------------------------------------------------

    @workflow.signal(name=SignalName.SHIPMENT_EVENT_RECEIVED)
    def shipment_event_received(self, event: ShipmentEventReceived) -> None:
        """Apply a warehouse/carrier fact. Duplicates are dropped; stale ones are recorded, never applied."""
        if self._is_legacy():
            self._legacy_flow.shipment_event_received(event)
            return
        s = self._s
        if event.event_id in s.seen_events:
            return
        s.seen_events.append(event.event_id)
        if self._find(event.shipment_id) is None:
            # A reset reapplies the old run's signals before the new run has planned, and a fast warehouse can
            # report before the release call returns: keep the event until its shipment exists.
            s.early_events.append(event)
            self._note(event.source, "event held until its shipment is planned", f"{event.stage} {event.shipment_id}")
            return
        self._apply_event(event)
        self._wake = True

    def _apply_event(self, event: ShipmentEventReceived) -> None:
        current = self._find(event.shipment_id)
        if current is None:
            self._note(event.source, "event for unknown shipment ignored", f"{event.stage} {event.shipment_id}")
            return
        if not advances(current.stage, event.stage):
            kept = ""
            if event.tracking_number and not current.tracking_number:
                # A late "shipped" is the event that carries the tracking number: keep that, not its stage.
                self._put(current.model_copy(update={"tracking_number": event.tracking_number}))
                kept = f"; tracking number {event.tracking_number} kept"
            self._note(event.source, "stale event ignored", f"{event.stage} after {current.stage}{kept}")
            return
        update: dict[str, object] = {"stage": event.stage, "last_event_at": workflow.now(), "escalated": False}
        if event.tracking_number:
            update["tracking_number"] = event.tracking_number
        if event.stage is ShipmentStage.READY_FOR_PICKUP:
            update["ready_at"] = workflow.now()
        self._put(current.model_copy(update=update))
        self._note(event.source, f"shipment {event.stage}", event.shipment_id)

    @workflow.signal(name=SignalName.SHIPMENT_ISSUE_REPORTED)
    def shipment_issue_reported(self, issue: ShipmentIssueReported) -> None:
        """A problem with a shipment (short pick, rejection, delay, loss): the loop runs its playbook."""
        if self._is_legacy():
            return
        s = self._s
        if issue.event_id in s.seen_events:
            return
        s.seen_events.append(issue.event_id)
        self._issues.append(issue)

    @workflow.signal(name=SignalName.STOCK_AVAILABLE)
    def stock_available(self, signal: StockAvailable) -> None:
        """Stock arrived: a backorder waiting for one of these SKUs tries again now."""
        s = self._s
        if self._is_legacy() or s.backorder is None:
            return
        wanted = {s.order.line(line_id).sku for line_id in self._remainder()}
        if wanted & set(signal.skus):
            s.backorder = s.backorder.model_copy(update={"stock_signalled": True})
            self._wake = True

    # --- messages: updates (CSR overrides) ---------------------------------------------------------------
    # Each validator runs before anything is written to history: an invalid override leaves no trace.

    @workflow.update(name=UpdateName.HOLD)
    def hold(self, request: HoldOrder) -> OverrideResult:
        self._add_hold(HoldCode.CSR, f"{request.reason_code}: {request.note}".rstrip(": "), request.actor)
        self._journal(request, "order held")
        return self._answer("order held: nothing new is planned or released until the hold is lifted")

    @hold.validator
    def _validate_hold(self, request: HoldOrder) -> None:
        self._require_open()
        if self._hold(HoldCode.CSR):
            raise _invalid("the order is already on a CSR hold")

    @workflow.update(name=UpdateName.RELEASE_HOLD)
    def release_hold(self, request: ReleaseHold) -> OverrideResult:
        lifted = [h for h in self._s.holds if h.code is not HoldCode.REVIEW and request.hold in (None, h.code)]
        self._s.holds = [h for h in self._s.holds if h not in lifted]
        self._refresh_hold_attribute()
        self._journal(request, "hold lifted", ", ".join(h.code for h in lifted))
        self._wake = True
        return self._answer(f"lifted: {', '.join(h.code for h in lifted)}")

    @release_hold.validator
    def _validate_release_hold(self, request: ReleaseHold) -> None:
        self._require_open()
        if request.hold == HoldCode.REVIEW:
            raise _invalid("a review hold is ended by approve or reject, not by release-hold")
        if not any(h.code is not HoldCode.REVIEW and request.hold in (None, h.code) for h in self._s.holds):
            raise _invalid(f"no {request.hold or 'CSR or payment'} hold to lift")

    @workflow.update(name=UpdateName.APPROVE)
    def approve(self, request: DecideReview) -> OverrideResult:
        return self._decide(request, approved=True)

    @approve.validator
    def _validate_approve(self, request: DecideReview) -> None:
        self._require_review()

    @workflow.update(name=UpdateName.REJECT)
    def reject(self, request: DecideReview) -> OverrideResult:
        return self._decide(request, approved=False)

    @reject.validator
    def _validate_reject(self, request: DecideReview) -> None:
        self._require_review()

    def _decide(self, request: DecideReview, *, approved: bool) -> OverrideResult:
        s = self._s
        s.review_approved = approved
        s.holds = [h for h in s.holds if h.code is not HoldCode.REVIEW]
        self._refresh_hold_attribute()
        self._journal(request, "review approved" if approved else "review rejected")
        return self._answer(
            "approved: the order continues" if approved else "rejected: the order will not be fulfilled"
        )

    @workflow.update(name=UpdateName.CANCEL)
    async def cancel(self, request: CancelOrder) -> OverrideResult:
        s = self._s
        if s.stage in (OrderStage.RECEIVED, OrderStage.ON_HOLD, OrderStage.VALIDATED) and not s.shipments:
            # Before anything was planned: the validation steps see the request and undo what they did.
            if request.line_ids is None or set(request.line_ids) >= {line.line_id for line in s.order.lines}:
                self._journal(request, "cancellation requested")
                s.cancel_requested = request.model_copy(update={"line_ids": None})
                await workflow.wait_condition(lambda: s.stage.is_terminal)
                return self._answer("order cancelled")
            for line_id in request.line_ids:
                s.cancelled[line_id] = s.order.line(line_id).quantity
            self._journal(request, "lines cancelled before planning", ", ".join(request.line_ids))
            return self._answer(f"lines {', '.join(request.line_ids)} cancelled")
        self._journal(request, "cancellation requested", ", ".join(request.line_ids or ["whole order"]))
        return await self._queue(request)

    @cancel.validator
    def _validate_cancel(self, request: CancelOrder) -> None:
        s = self._s
        self._require_open()
        if s.cancel_requested is not None:
            raise _invalid("the order is already being cancelled")
        if request.line_ids is not None:
            known = {line.line_id for line in s.order.lines}
            unknown = sorted(set(request.line_ids) - known)
            if unknown:
                raise _invalid(f"unknown line_ids: {', '.join(unknown)}")
            if all(self._cancellable_units(lid) == 0 for lid in request.line_ids):
                raise _invalid("nothing left to cancel on those lines: every unit has shipped or was cancelled")
        if request.role is Role.CUSTOMER:
            # A customer's change of mind ends where the node's work begins; customer service can go further.
            wanted = None if request.line_ids is None else set(request.line_ids)
            started = [
                v.shipment_id
                for v in self._live()
                if not self._customer_may_change(v)
                and (wanted is None or any(a.line_id in wanted for a in v.allocations))
            ]
            if started:
                raise _invalid(f"{', '.join(started)} already released: a cancellation now needs customer service")

    @workflow.update(name=UpdateName.REROUTE)
    async def reroute(self, request: RerouteShipment) -> OverrideResult:
        self._journal(request, "reroute requested", f"{request.shipment_id} -> {request.node_id}")
        return await self._queue(request)

    @reroute.validator
    def _validate_reroute(self, request: RerouteShipment) -> None:
        self._require_open()
        view = self._find(request.shipment_id)
        if view is None:
            raise _invalid(f"unknown shipment_id {request.shipment_id!r}")
        if not view.live:
            raise _invalid(f"shipment {request.shipment_id} has ended ({view.stage})")
        if has_left_node(view.stage) or view.stage is ShipmentStage.READY_FOR_PICKUP:
            raise _invalid(f"shipment {request.shipment_id} is already {view.stage} at {view.node_id}")
        if view.node_id == request.node_id:
            raise _invalid(f"shipment {request.shipment_id} already comes from {request.node_id}")
        if self._s.order.is_pickup and view.method is Method.PICKUP:
            raise _invalid("a pickup shipment is collected at the customer's branch: change the branch instead")

    @workflow.update(name=UpdateName.CHANGE_SERVICE_LEVEL)
    async def change_service_level(self, request: ChangeServiceLevel) -> OverrideResult:
        return await self._queue(request)

    @change_service_level.validator
    def _validate_change_service_level(self, request: ChangeServiceLevel) -> None:
        self._require_open()
        if self._s.order.is_pickup:
            raise _invalid("a pickup order has no shipping service level")
        if request.service_level == self._s.order.service_level:
            raise _invalid(f"the order is already {request.service_level}")
        self._require_unreleased("the service level")

    @workflow.update(name=UpdateName.CHANGE_ADDRESS)
    async def change_address(self, request: ChangeAddress) -> OverrideResult:
        return await self._queue(request)

    @change_address.validator
    def _validate_change_address(self, request: ChangeAddress) -> None:
        self._require_open()
        if not self._s.order.is_pickup:
            self._require_unreleased("the address")

    @workflow.update(name=UpdateName.CHANGE_PICKUP)
    async def change_pickup(self, request: ChangePickup) -> OverrideResult:
        return await self._queue(request)

    @change_pickup.validator
    def _validate_change_pickup(self, request: ChangePickup) -> None:
        s = self._s
        self._require_open()
        if s.order.pickup_node_id == request.node_id:
            raise _invalid(f"the order is already collected at {request.node_id}")
        if s.stage in (OrderStage.RECEIVED, OrderStage.ON_HOLD):
            raise _invalid("the order is still being validated; change the branch once it is validated")
        if s.cancel_requested is not None:
            raise _invalid("the order is being cancelled")
        too_late = [v.shipment_id for v in self._live() if not self._customer_may_change(v)]
        if too_late:
            raise _invalid(f"the branch can no longer change: {', '.join(too_late)} already under way")

    @workflow.update(name=UpdateName.PLACEMENT)
    async def placement(self) -> Placement:
        """Wait until the order is past planning, then say whether it is accepted and its stock held: what a
        checkout asks with the order's start (update-with-start), instead of polling."""
        await workflow.wait_condition(lambda: self._legacy is not None and self._placed())
        return self._placement()

    @placement.validator
    def _validate_placement(self) -> None:
        if self._legacy:
            raise _invalid("this order runs the first lifecycle version, which does not answer placement")

    @workflow.update(name=UpdateName.ADD_NOTE)
    def add_note(self, request: AddNote) -> OverrideResult:
        self._journal(request, "note")
        return self._answer("note added")

    @add_note.validator
    def _validate_add_note(self, request: AddNote) -> None:
        if self._legacy:
            raise _invalid("this order runs the first lifecycle version, which takes no overrides")
        if not request.note.strip():
            raise _invalid("note: empty")

    @staticmethod
    def _customer_may_change(view: ShipmentView) -> bool:
        """A pickup may move until the branch has picked it; a delivery only until it is released."""
        return view.stage in (_PICKUP_MOVABLE if view.method is Method.PICKUP else (ShipmentStage.PLANNED,))

    def _require_open(self) -> None:
        s = self._s
        if self._legacy:
            raise _invalid("this order runs the first lifecycle version, which takes no overrides")
        if s.stage.is_terminal:
            raise _invalid(f"the order is {s.stage}: it can no longer change")

    def _require_review(self) -> None:
        self._require_open()
        if self._hold(HoldCode.REVIEW) is None:
            raise _invalid(f"the order is not waiting for review (it is {self._s.stage})")

    def _require_unreleased(self, what: str) -> None:
        s = self._s
        if s.stage in (OrderStage.RECEIVED, OrderStage.ON_HOLD):
            raise _invalid(f"the order is still being validated; change {what} once it is validated")
        released = [v.shipment_id for v in self._live() if v.stage is not ShipmentStage.PLANNED]
        if released:
            raise _invalid(f"{what} can no longer change: {', '.join(released)} already released")
        if s.cancel_requested is not None:
            raise _invalid("the order is being cancelled")

    # --- placement and status -------------------------------------------------------------------------------

    def _placed(self) -> bool:
        s = self._s
        return bool(self._legacy) or s.stage not in _PLACING or s.backorder is not None

    def _placement(self) -> Placement:
        s = self._s
        live = self._live()
        accepted = s.stage not in (OrderStage.REJECTED, OrderStage.FAILED, OrderStage.CANCELLED)
        backordered = sum(self._remainder().values()) if s.backorder is not None else 0
        reason = s.failure
        if reason is None and s.holds:
            reason = "; ".join(f"{h.code}: {h.reason}" for h in s.holds)
        if reason is None and backordered:
            reason = f"{backordered} unit(s) backordered until stock arrives"
        return Placement(
            order_id=s.order.order_id,
            stage=s.stage,
            accepted=accepted,
            reserved=accepted and bool(live),
            backordered_units=backordered,
            reason=reason,
            promise=_effect(live) if live else None,
            quote=s.quote_outcome,
            changes_until=s.release_at if self._in_change_window() else None,
        )

    def _line_sources(self) -> list[LineSources]:
        s = self._s
        remainder = self._remainder()
        result = []
        for line in s.order.lines:
            sources = [
                LineSource(
                    node_id=v.node_id,
                    shipment_id=v.shipment_id,
                    quantity=a.quantity,
                    stage=v.stage,
                    method=v.method,
                    promised_date=v.current_promise,
                    ready_by=v.ready_by if v.method is Method.PICKUP else None,
                )
                for v in self._live()
                for a in v.allocations
                if a.line_id == line.line_id
            ]
            result.append(
                LineSources(
                    line_id=line.line_id,
                    sku=line.sku,
                    quantity=line.quantity,
                    cancelled=s.cancelled.get(line.line_id, 0),
                    unplanned=remainder.get(line.line_id, 0),
                    sources=sources,
                )
            )
        return result

    # --- query --------------------------------------------------------------------------------------------

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> OrderStatusView:
        if self._legacy:
            return self._legacy_flow.status()
        s = self._s
        order = s.order
        live = self._live()
        current = _effect(live) if live else None
        return OrderStatusView(
            order_id=order.order_id,
            stage=s.stage,
            customer_id=order.customer_id,
            channel=order.channel,
            service_level=order.service_level,
            lines=len(order.lines),
            shipments=list(s.shipments),
            plan=s.plan,
            failure=s.failure,
            timeline=list(s.timeline),
            holds=list(s.holds),
            payment=s.payment,
            cancelled=dict(s.cancelled),
            backorder=s.backorder,
            exception_code=s.exception_code,
            pickup_node_id=order.pickup_node_id,
            line_sources=self._line_sources(),
            original_promise=s.promise_changes[0].before if s.promise_changes else current,
            current_promise=current,
            promise_changes=list(s.promise_changes),
            quote=s.quote_outcome,
            changes_until=s.release_at if self._in_change_window() else None,
        )

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _live(self) -> list[ShipmentView]:
        return [v for v in self._s.shipments if v.live]

    def _find(self, shipment_id: str) -> ShipmentView | None:
        return next((v for v in self._s.shipments if v.shipment_id == shipment_id), None)

    def _view(self, shipment_id: str) -> ShipmentView:
        view = self._find(shipment_id)
        assert view is not None, shipment_id
        return view

    def _put(self, view: ShipmentView) -> None:
        self._s.shipments = [view if v.shipment_id == view.shipment_id else v for v in self._s.shipments]

    def _departed_units(self, line_id: str) -> int:
        """Units of the line that physically left a node (shipped, collected, or lost on the way)."""
        return sum(
            a.quantity
            for v in self._s.shipments
            if has_left_node(v.stage)
            for a in v.allocations
            if a.line_id == line_id
        )

    def _cancellable_units(self, line_id: str) -> int:
        line = self._s.order.line(line_id)
        return max(0, line.quantity - self._s.cancelled.get(line_id, 0) - self._departed_units(line_id))

    def _amount(self, quantities: dict[str, int]) -> int:
        order = self._s.order
        return sum(order.line(line_id).unit_price_minor * qty for line_id, qty in quantities.items())

    def _amount_of(self, view: ShipmentView) -> int:
        order = self._s.order
        return sum(order.line(a.line_id).unit_price_minor * a.quantity for a in view.allocations)

    def _hold(self, code: HoldCode) -> Hold | None:
        return next((h for h in self._s.holds if h.code is code), None)

    def _blocking_hold(self) -> bool:
        """A CSR hold stops new plans and releases; a payment hold does too (no new goods out unpaid)."""
        return any(h.code in (HoldCode.CSR, HoldCode.PAYMENT) for h in self._s.holds)

    def _add_hold(self, code: HoldCode, reason: str, actor: str) -> None:
        s = self._s
        s.holds = [h for h in s.holds if h.code is not code] + [
            Hold(code=code, reason=reason, actor=actor, since=workflow.now())
        ]
        self._refresh_hold_attribute()
        self._note(actor, f"hold: {code}", reason)

    def _escalation_due(self, hold: Hold) -> datetime:
        return (hold.escalated_at or hold.since) + self._settings.escalate_after

    async def _escalate_hold(self, code: HoldCode, exception: ExceptionCode) -> None:
        s = self._s
        hold = self._hold(code)
        if hold is None:
            return
        s.holds = [h.model_copy(update={"escalated_at": workflow.now()}) if h is hold else h for h in s.holds]
        waited = workflow.now() - hold.since
        await self._execute([playbook.Escalate(exception, f"{code} hold waiting for {waited}: {hold.reason}")])

    def _refresh_hold_attribute(self) -> None:
        reason = self._s.holds[0].code if self._s.holds else ""
        workflow.upsert_search_attributes([SA_HOLD_REASON.value_set(reason)])

    def _refresh_stage(self) -> None:
        """The order's stage follows its live shipments once it has some."""
        s = self._s
        if s.stage.is_terminal or s.stage in (OrderStage.RECEIVED, OrderStage.ON_HOLD):
            return
        live = self._live()
        if not live:
            stage = OrderStage.BACKORDERED if s.backorder is not None else s.stage
        elif any(advances(ShipmentStage.RELEASED, v.stage) for v in live):
            stage = OrderStage.IN_FULFILMENT
        elif any(v.stage is ShipmentStage.RELEASED for v in live):
            stage = OrderStage.RELEASED
        else:
            stage = OrderStage.RESERVED
        if stage is not s.stage:
            self._set_stage(stage, "system")

    def _journal(self, request: Override, event: str, detail: str = "") -> None:
        """An override in the timeline: who, in which role, why. The loop then looks again (the override may
        have given it work, and the history grew)."""
        self._wake = True
        text = "; ".join(part for part in (detail, request.note) if part)
        self._s.timeline.append(
            TimelineEntry(
                at=workflow.now(), actor=request.actor, event=event, detail=text,
                role=request.role, reason_code=request.reason_code,
            )
        )  # fmt: skip

    def _note(self, actor: str, event: str, detail: str = "") -> None:
        self._s.timeline.append(TimelineEntry(at=workflow.now(), actor=actor, event=event, detail=detail))

    def _set_stage(self, stage: OrderStage, actor: str, detail: str = "") -> None:
        previous = self._s.stage
        self._s.stage = stage
        self._note(actor, f"order {stage}", detail)
        workflow.upsert_search_attributes([SA_ORDER_STATUS.value_set(stage)])
        workflow.logger.info("order %s is %s", self._s.order.order_id, stage)
        if self._outbox_enabled():
            self._queue_status(stage, previous, actor, detail)

    def _set_exception(self, code: str) -> None:
        s = self._s
        s.exception_code = code
        workflow.upsert_search_attributes([SA_EXCEPTION_CODE.value_set(code)])
        if s.pending_status and s.pending_status[-1].stage is s.stage:
            # The exception that came with the latest stage change travels in its event.
            s.pending_status[-1] = s.pending_status[-1].model_copy(update={"exception_code": code})

    # --- status sync (the transactional outbox) -------------------------------------------------------------

    def _queue_status(self, stage: OrderStage, previous: OrderStage | None, actor: str, detail: str) -> None:
        """Remember a stage change for the next ``publish_status``, numbered in the order it happened."""
        s = self._s
        s.status_seq += 1
        s.pending_status.append(
            StatusEvent(
                seq=s.status_seq, stage=stage, previous_stage=previous, at=workflow.now(), actor=actor,
                detail=detail, exception_code=s.exception_code,
            )
        )  # fmt: skip

    async def _publish_status(self) -> None:
        """Publish the stage changes not yet published, in one local activity: the status projection, the
        outgoing events and their deliveries commit together. Changes made meanwhile wait for the next call."""
        s = self._s
        if not s.pending_status:
            return
        events = list(s.pending_status)
        order = s.order
        await _local(
            ActivityName.PUBLISH_STATUS,
            PublishStatusInput(
                order_id=order.order_id, customer_id=order.customer_id, channel=str(order.channel), events=events
            ),
            PublishStatusResult,
        )
        s.pending_status = [e for e in s.pending_status if e.seq > events[-1].seq]
