"""Payloads that cross the workflow boundary: one input and one result type per call.

All are pydantic models carried by the pydantic data converter configured in ``infra.temporal``. Adding
an optional field is compatible with histories already recorded; renaming or removing one is not.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from temporalio.common import SearchAttributeKey

from domain.exceptions import PlaybookSettings, ShipmentIssue
from domain.lifecycle import OrderStage, ShipmentStage
from domain.options import PlanVariant
from domain.orders import Address, GeoPoint, NodeId, Order, PaymentMethod, ServiceLevel
from domain.policy import Method
from domain.quotes import QuotePayload
from domain.sourcing import Allocation, Plan, PlannedShipment

# Search attributes: business identifiers and states only, never personal data (they are stored unencrypted).
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_NODES = SearchAttributeKey.for_keyword_list("FulfilmentNodes")
SA_EXCEPTION_CODE = SearchAttributeKey.for_keyword("ExceptionCode")
SA_HOLD_REASON = SearchAttributeKey.for_keyword("HoldReason")

SEARCH_ATTRIBUTES = (SA_ORDER_STATUS, SA_CUSTOMER_ID, SA_CHANNEL, SA_NODES, SA_EXCEPTION_CODE, SA_HOLD_REASON)


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- workflow input and signals -------------------------------------------------------------------------


class QuotedOption(_Payload):
    """The checkout option an order was placed with, from a quote the API verified: what the order must keep
    (the plan behind ``plan_fingerprint``, looked for at ``node_ids``; else a plan under ``variant``, the
    customer's chosen method) and what the customer was shown, to record against what it gets."""

    option_id: str
    plan_fingerprint: str
    node_ids: list[str]
    variant: PlanVariant
    price_minor: int | None = None
    ready_by: datetime | None = None
    deliver_by: date | None = None
    quoted_at: datetime | None = None

    @classmethod
    def of(cls, quote: QuotePayload) -> QuotedOption:
        """From a quote already verified (signature, expiry, cart)."""
        return cls(
            option_id=quote.option_id,
            plan_fingerprint=quote.plan_fingerprint,
            node_ids=quote.node_ids,
            variant=quote.variant,
            price_minor=quote.price_minor,
            ready_by=quote.ready_by,
            deliver_by=quote.deliver_by,
            quoted_at=quote.issued_at,
        )


class OrderWorkflowInput(_Payload):
    order: Order
    settings: PlaybookSettings = Field(default_factory=PlaybookSettings)
    quote: QuotedOption | None = None
    # Set only by continue-as-new: everything the previous run knew.
    resume: OrderState | None = None


class ShipmentEventReceived(_Payload):
    """A warehouse or carrier fact about one shipment, delivered as a signal."""

    event_id: str
    shipment_id: str
    stage: ShipmentStage
    occurred_at: datetime
    source: str = "wms"
    tracking_number: str | None = None


class ShortLine(_Payload):
    line_id: str
    short_quantity: int = Field(gt=0)


class ShipmentIssueReported(_Payload):
    """A provider or carrier reports a problem with one shipment (a signal, deduplicated by event id)."""

    event_id: str
    shipment_id: str
    issue: ShipmentIssue
    occurred_at: datetime
    source: str = "wms"
    detail: str = ""
    short_lines: list[ShortLine] = Field(default_factory=list)
    # For a delay: the carrier's new delivery estimate.
    new_estimate: date | None = None


class StockAvailable(_Payload):
    """Stock of these SKUs arrived somewhere: a backordered order tries again now rather than at its next check."""

    skus: list[str]
    node_id: str | None = None


# --- CSR overrides (Temporal updates) -------------------------------------------------------------------


class Role(StrEnum):
    CSR = "csr"
    SUPERVISOR = "supervisor"
    CUSTOMER = "customer"
    SYSTEM = "system"


Text = Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
Code = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{1,47}$")]


class Override(_Payload):
    """Who asks, in which role, and why: every override carries this, and the timeline keeps it."""

    actor: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    role: Role = Role.CSR
    reason_code: Code
    note: str = Field(default="", max_length=1000)


class HoldOrder(Override):
    pass


class ReleaseHold(Override):
    # Which hold to lift (``csr``, ``payment``); None lifts every hold that is not a review.
    hold: HoldCode | None = None


class DecideReview(Override):
    pass


class CancelOrder(Override):
    # None cancels the whole order; otherwise these lines (every unit not yet shipped).
    line_ids: list[str] | None = Field(default=None, min_length=1)


class RerouteShipment(Override):
    shipment_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    node_id: NodeId


class ChangeServiceLevel(Override):
    service_level: ServiceLevel


class ChangeAddress(Override):
    ship_to: Address


class ChangePickup(Override):
    """Collect at this branch instead: a pickup order changes branch (until its shipment is picked), and a
    delivery order (split or not) becomes one pickup there (until a shipment is released)."""

    node_id: NodeId


class AddNote(Override):
    note: Text


class PlanEffect(_Payload):
    """One side of a change: where the units come from, at what cost, promised when, with how much left."""

    node_ids: list[str]
    cost_minor: int
    promised_date: date | None
    # ATP per node and SKU as the decision saw it (None: not known for that node).
    atp: dict[str, dict[str, int]] = Field(default_factory=dict)
    # What the customer pays to receive it (carrier rates; collecting is free), and when a pickup is ready.
    price_minor: int = 0
    ready_by: datetime | None = None
    shipments: int = 0


class OverrideResult(_Payload):
    accepted: bool = True
    message: str
    stage: OrderStage
    # A change's effect: before and after, and what the customer pays more (or less) to receive the order.
    before: PlanEffect | None = None
    after: PlanEffect | None = None
    price_difference_minor: int | None = None


class PromiseChange(_Payload):
    """The promise moved after it was made: the quote could not be kept, the customer or a CSR changed the
    order, or an exception re-planned it. Kept on the order, where the customer and the CSR see it."""

    at: datetime
    actor: str
    reason: str
    before: PlanEffect
    after: PlanEffect


class QuoteOutcome(_Payload):
    """Whether the order executes exactly the quoted option."""

    option_id: str
    kept: bool
    detail: str


class Placement(_Payload):
    """The answer to "is my order accepted, and is its stock held?", given once the order is past planning."""

    order_id: str
    stage: OrderStage
    # Not rejected, failed or cancelled.
    accepted: bool
    # Every unit planned is held at a node (backordered units aside).
    reserved: bool
    backordered_units: int = 0
    # Why not accepted or not reserved (rejection, hold, failure).
    reason: str | None = None
    promise: PlanEffect | None = None
    quote: QuoteOutcome | None = None
    # The order may still be changed until then (shipments are released at this instant).
    changes_until: datetime | None = None


# --- activities -----------------------------------------------------------------------------------------


class ValidateOrderInput(_Payload):
    order: Order


class ValidateOrderResult(_Payload):
    destination: GeoPoint | None
    warnings: list[str] = Field(default_factory=list)


class ScreenOrderInput(_Payload):
    order: Order


class ScreenOrderResult(_Payload):
    """The fraud screen's score (0 safe .. 1 certain fraud) and its reasons; the threshold is the order's."""

    score: float = Field(ge=0, le=1)
    reasons: list[str] = Field(default_factory=list)


class AuthorizePaymentInput(_Payload):
    """``idempotency_key`` is ``order_id:payment:authorize``. For ``terms`` the gateway checks the customer's
    credit limit instead of a card; going over it fails with ``CreditLimitExceeded``."""

    idempotency_key: str
    order_id: str
    customer_id: str
    method: PaymentMethod
    amount_minor: int = Field(ge=0)
    currency: str


class PaymentResult(_Payload):
    authorization_id: str
    amount_minor: int
    replayed: bool = False


class CapturePaymentInput(_Payload):
    """``idempotency_key`` is ``order_id:payment:capture:<shipment_id>``: one capture per shipment, ever."""

    idempotency_key: str
    authorization_id: str
    amount_minor: int = Field(ge=0)


class VoidPaymentInput(_Payload):
    """Give back the part of the authorization not captured. ``amount_minor`` None: all of what remains."""

    idempotency_key: str
    authorization_id: str
    amount_minor: int | None = None


class RefundPaymentInput(_Payload):
    idempotency_key: str
    authorization_id: str
    amount_minor: int = Field(gt=0)
    reason: str


class CancelReleaseInput(_Payload):
    """Ask the node to stop a released shipment. ``idempotency_key`` is ``<shipment_id>:cancel``."""

    idempotency_key: str
    order_id: str
    shipment_id: str
    node_id: str
    provider_reference: str | None
    reason: str


class CancelReleaseResult(_Payload):
    """``cancelled`` False means too late: the shipment has left (``stage`` says how far it got)."""

    cancelled: bool
    stage: ShipmentStage | None = None


class FollowUpKind(StrEnum):
    INTERCEPT = "intercept"
    RETURN = "return"
    TRACE = "trace"


class RequestFollowUpInput(_Payload):
    """What replaces an undo that is no longer possible: intercept a parcel, ask for a return, trace a parcel."""

    idempotency_key: str
    order_id: str
    shipment_id: str
    kind: FollowUpKind
    reason: str
    tracking_number: str | None = None


class RequestFollowUpResult(_Payload):
    reference: str


class TrackParcelInput(_Payload):
    """Ask the carrier where a parcel is now (a read: no idempotency key), when its events have stopped."""

    order_id: str
    shipment_id: str
    tracking_number: str


class TrackParcelResult(_Payload):
    """The carrier's latest stage for the parcel and when it happened; None: the carrier does not know it."""

    stage: ShipmentStage | None = None
    occurred_at: datetime | None = None


class ShipmentStatusInput(_Payload):
    """Ask the node's provider how far it has got with a shipment (a read: no idempotency key), when its
    acknowledgement is overdue."""

    order_id: str
    shipment_id: str
    node_id: str


class ShipmentStatusResult(_Payload):
    """The provider's stage for the shipment (``released``: received, not acknowledged); None: it never got it."""

    stage: ShipmentStage | None = None
    occurred_at: datetime | None = None
    tracking_number: str | None = None


class RegisterTrackingInput(_Payload):
    """Ask the carrier to send a parcel's events to us. ``idempotency_key`` makes a repeat a no-op."""

    idempotency_key: str
    order_id: str
    shipment_id: str
    tracking_number: str


class RegisterTrackingResult(_Payload):
    """The carrier's reference for the registration; None when it refused it (``refused`` says why)."""

    reference: str | None = None
    refused: str = ""


class Audience(StrEnum):
    CUSTOMER = "customer"
    CSR = "csr"


class NotifyInput(_Payload):
    """A message to the customer or the CSR queue. ``idempotency_key`` makes a retried send a no-op."""

    idempotency_key: str
    order_id: str
    audience: Audience
    kind: str
    message: str


class NotifyResult(_Payload):
    delivered: bool


class CheckNodesInput(_Payload):
    node_ids: list[str]
    day: date


class NodeReadiness(_Payload):
    node_id: str
    ready: bool
    # Why not: "paused", "closed", "capacity" (orders or units for the day used up), "unknown".
    reason: str | None = None


class CheckNodesResult(_Payload):
    nodes: list[NodeReadiness]


class NodeAtpInput(_Payload):
    node_ids: list[str]
    skus: list[str]
    customer_id: str | None = None


class NodeAtpResult(_Payload):
    atp: dict[str, dict[str, int]]


class PlanOrderInput(_Payload):
    """``order`` holds only the quantities still to plan (a re-plan passes the remainder). ``only_nodes``
    forces a CSR's choice of node (a reroute)."""

    order: Order
    destination: GeoPoint | None
    attempt: int
    excluded_nodes: list[str] = Field(default_factory=list)
    only_nodes: list[str] | None = None
    # The customer's chosen method at checkout: every plan for the order is asked under it.
    variant: PlanVariant | None = None
    # The first plan of an order placed with a quote: keep the quoted plan when it is still feasible.
    quote: QuotedOption | None = None
    # Nothing is released before this (the change window): promises count from it, not from now.
    not_before: datetime | None = None


class ReserveStockInput(_Payload):
    """``reservation_key`` is ``order_id:reserve:plan-N``: a retried or replayed call reserves nothing new.

    ``customer_id`` sets the allocation tier the stock is judged for (None: below every tier); ``expires_at``
    makes the hold lapse unless it is committed first (None: held until settled).
    """

    reservation_key: str
    order_id: str
    allocations: list[Allocation]
    customer_id: str | None = None
    expires_at: datetime | None = None


class ReserveStockResult(_Payload):
    reservation_key: str
    reserved_units: int
    replayed: bool


class SettleStockInput(_Payload):
    """Consume (stock has shipped) or release (plan abandoned) the reservation lines of some allocations."""

    reservation_key: str
    node_id: str | None = None


class SettleStockResult(_Payload):
    lines_changed: int


class ReleaseShipmentInput(_Payload):
    """``idempotency_key`` is ``order_id:release:p<attempt>:<node>``, sent to the provider as-is."""

    idempotency_key: str
    order_id: str
    shipment: PlannedShipment
    ship_to: Address
    service_level: str


class ReleaseShipmentResult(_Payload):
    provider_reference: str
    accepted_at: datetime
    replayed: bool


# --- query ----------------------------------------------------------------------------------------------


class TimelineEntry(_Payload):
    at: datetime
    actor: str
    event: str
    detail: str = ""
    # Set for an override: the actor's role and the reason code they gave.
    role: str | None = None
    reason_code: str | None = None


class ShipmentView(_Payload):
    shipment_id: str
    node_id: str
    stage: ShipmentStage
    allocations: list[Allocation]
    provider_reference: str | None = None
    tracking_number: str | None = None
    # The tracking number the carrier has been asked to send events for, and its reference for that.
    tracking_registered: str | None = None
    tracking_reference: str | None = None
    # The plan attempt that decided it (its reservation and release keys carry it).
    attempt: int = 1
    method: Method = Method.DELIVERY
    service_level: ServiceLevel | None = None
    cost_minor: int = 0
    # The carrier rate the customer pays for this parcel (0 to collect).
    shipping_minor: int = 0
    ready_by: datetime | None = None
    # The promise as first made, and as it stands after delays.
    promised_date: date | None = None
    current_promise: date | None = None
    released_at: datetime | None = None
    last_event_at: datetime | None = None
    ready_at: datetime | None = None
    reminded: bool = False
    captured_minor: int = 0
    # Stock consumed in the ledger once it left the node.
    stock_settled: bool = False
    # Why it ended (cancelled or lost), and what it was replaced by.
    end_reason: str | None = None
    escalated: bool = False

    @property
    def units(self) -> int:
        return sum(a.quantity for a in self.allocations)

    @property
    def live(self) -> bool:
        return self.stage not in (ShipmentStage.CANCELLED, ShipmentStage.LOST)


class HoldCode(StrEnum):
    REVIEW = "review"
    CSR = "csr"
    PAYMENT = "payment"


class Hold(_Payload):
    code: HoldCode
    reason: str
    actor: str
    since: datetime
    escalated_at: datetime | None = None


class PaymentState(_Payload):
    method: PaymentMethod = PaymentMethod.CARD
    authorization_id: str | None = None
    authorized_minor: int = 0
    captured_minor: int = 0
    refunded_minor: int = 0
    voided_minor: int = 0
    voids: int = 0
    # ``terms`` over the credit limit, approved by a CSR: invoiced without an authorization.
    approved_without_authorization: bool = False

    @property
    def open_minor(self) -> int:
        """Authorized and neither captured nor given back."""
        return max(0, self.authorized_minor - self.captured_minor - self.voided_minor)


class BackorderState(_Payload):
    since: datetime
    deadline: datetime
    next_check: datetime
    # Set by a stock signal: check now.
    stock_signalled: bool = False


class StatusEvent(_Payload):
    """A change of the order's stage, waiting to be published (``publish_status``): the status projection and
    the outgoing event are written together, numbered ``seq`` 1, 2, 3 ... per order, across runs."""

    seq: int = Field(ge=1)
    stage: OrderStage
    previous_stage: OrderStage | None = None
    at: datetime
    actor: str = "system"
    detail: str = ""
    exception_code: str | None = None


class PublishStatusInput(_Payload):
    """Status changes of one order, oldest first; publishing them again changes nothing (idempotent by seq)."""

    order_id: str
    customer_id: str
    channel: str
    events: list[StatusEvent]


class PublishStatusResult(_Payload):
    # Event ids written by this call, and those already there (a retry, a replay, a reset).
    published: list[str] = Field(default_factory=list)
    replayed: list[str] = Field(default_factory=list)
    # Deliveries queued, one per event and matching active subscription.
    deliveries: int = 0


class OrderState(BaseModel):
    """Everything the order workflow knows: its memory between events and what continue-as-new carries."""

    order: Order
    stage: OrderStage = OrderStage.RECEIVED
    attempt: int = 0
    shipments: list[ShipmentView] = Field(default_factory=list)
    plan: Plan | None = None
    destination: GeoPoint | None = None
    # Units cancelled per line (by the customer, a CSR, or an expired backorder).
    cancelled: dict[str, int] = Field(default_factory=dict)
    excluded_nodes: list[str] = Field(default_factory=list)
    holds: list[Hold] = Field(default_factory=list)
    payment: PaymentState = Field(default_factory=PaymentState)
    backorder: BackorderState | None = None
    reships: int = 0
    cancel_requested: CancelOrder | None = None
    seen_events: list[str] = Field(default_factory=list)
    early_events: list[ShipmentEventReceived] = Field(default_factory=list)
    failure: str | None = None
    exception_code: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    runs: int = 1
    notices: int = 0
    review_approved: bool | None = None
    # Placed with a checkout quote: the option, whether the order kept it, and every later move of the promise.
    quote: QuotedOption | None = None
    quote_outcome: QuoteOutcome | None = None
    promise_changes: list[PromiseChange] = Field(default_factory=list)
    # Nothing is released before this instant (the change window): until then the customer may change the order.
    release_at: datetime | None = None
    # The status outbox (patch ``status-outbox``): the last seq given to a stage change, and the changes not yet
    # published. Both are carried across continue-as-new, so seqs never repeat and no change is forgotten.
    status_seq: int = 0
    pending_status: list[StatusEvent] = Field(default_factory=list)


class OrderStatusView(_Payload):
    order_id: str
    stage: OrderStage
    customer_id: str
    channel: str
    service_level: str
    lines: int
    shipments: list[ShipmentView]
    plan: Plan | None = None
    failure: str | None = None
    timeline: list[TimelineEntry]
    holds: list[Hold] = Field(default_factory=list)
    payment: PaymentState | None = None
    cancelled: dict[str, int] = Field(default_factory=dict)
    backorder: BackorderState | None = None
    exception_code: str | None = None
    pickup_node_id: str | None = None
    # Per line: where its units come from, in which shipment, at which stage.
    line_sources: list[LineSources] = Field(default_factory=list)
    # The promise as first made (the quote, or the first plan) and as it stands now.
    original_promise: PlanEffect | None = None
    current_promise: PlanEffect | None = None
    promise_changes: list[PromiseChange] = Field(default_factory=list)
    quote: QuoteOutcome | None = None
    changes_until: datetime | None = None


class LineSource(_Payload):
    node_id: str
    shipment_id: str
    quantity: int
    stage: ShipmentStage
    method: Method
    promised_date: date | None = None
    ready_by: datetime | None = None


class LineSources(_Payload):
    line_id: str
    sku: str
    quantity: int
    cancelled: int = 0
    # Units in no live shipment and not cancelled: backordered, or waiting for a plan.
    unplanned: int = 0
    sources: list[LineSource] = Field(default_factory=list)


class ActivityName:
    """Activity names, shared by the workflow (which calls them) and the activity classes (which define them)."""

    VALIDATE_ORDER = "validate_order"
    PLAN_ORDER = "plan_order"
    RESERVE_STOCK = "reserve_stock"
    CONSUME_STOCK = "consume_stock"
    RELEASE_STOCK = "release_stock"
    RELEASE_SHIPMENT = "release_shipment"
    COMMIT_STOCK = "commit_stock"
    EXPIRE_RESERVATIONS = "expire_reservations"
    SCREEN_ORDER = "screen_order"
    AUTHORIZE_PAYMENT = "authorize_payment"
    CAPTURE_PAYMENT = "capture_payment"
    VOID_PAYMENT = "void_payment"
    REFUND_PAYMENT = "refund_payment"
    CANCEL_RELEASE = "cancel_release"
    REQUEST_FOLLOW_UP = "request_follow_up"
    TRACK_PARCEL = "track_parcel"
    SHIPMENT_STATUS = "shipment_status"
    REGISTER_TRACKING = "register_tracking"
    NOTIFY = "notify"
    CHECK_NODES = "check_nodes"
    NODE_ATP = "node_atp"
    PUBLISH_STATUS = "publish_status"


class SignalName:
    SHIPMENT_EVENT_RECEIVED = "shipment_event_received"
    SHIPMENT_ISSUE_REPORTED = "shipment_issue_reported"
    STOCK_AVAILABLE = "stock_available"


class UpdateName:
    HOLD = "hold"
    RELEASE_HOLD = "release_hold"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    REROUTE = "reroute"
    CHANGE_SERVICE_LEVEL = "change_service_level"
    CHANGE_ADDRESS = "change_address"
    ADD_NOTE = "add_note"
    CHANGE_PICKUP = "change_pickup"
    PLACEMENT = "placement"


class QueryName:
    STATUS = "status"


# --- reservation ledger: commit and expiry ----------------------------------------------------------------


class CommitStockInput(_Payload):
    """Turn a hold into a commitment (it stops expiring); the key is the one the stock was reserved under."""

    reservation_key: str


class CommitStockResult(_Payload):
    lines_committed: int


class ExpireReservationsInput(_Payload):
    """One sweep: batches of ``batch_size`` reservations, each its own transaction, at most ``max_batches``."""

    batch_size: int = Field(default=500, gt=0)
    max_batches: int = Field(default=20, gt=0)


class ExpireReservationsResult(_Payload):
    swept_at: datetime
    reservations_released: int
    batches: int
    # The last batch was full: more may be due now, so the sweeper goes again without sleeping.
    more_due: bool


class ReservationSweeperInput(_Payload):
    """The sweeper's settings, and what earlier runs released (carried across continue-as-new)."""

    interval: timedelta = timedelta(minutes=1)
    sweeps_per_run: int = Field(default=200, gt=0)
    batch_size: int = Field(default=500, gt=0)
    released_before: int = 0


class ReservationSweeperStatus(_Payload):
    sweeps_this_run: int
    reservations_released: int
    last_swept_at: datetime | None


OrderWorkflowInput.model_rebuild()
OrderStatusView.model_rebuild()
