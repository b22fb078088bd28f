"""Request and response bodies. They map to domain types at the edge and are never stored as they are."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from domain.lifecycle import OrderStage
from domain.options import FulfilmentOption, OptionKind, OptionLine
from domain.orders import (
    MAX_LINES,
    Address,
    Channel,
    NodeId,
    Order,
    OrderId,
    OrderLine,
    PaymentMethod,
    ServiceLevel,
    check_unique_line_ids,
)
from domain.policy import Method
from domain.sourcing import Plan
from workflows.contracts import (
    AddNote,
    BackorderState,
    CancelOrder,
    ChangeAddress,
    ChangePickup,
    ChangeServiceLevel,
    Code,
    DecideReview,
    Hold,
    HoldCode,
    HoldOrder,
    LineSources,
    Override,
    PaymentState,
    Placement,
    PlanEffect,
    PromiseChange,
    QuoteOutcome,
    ReleaseHold,
    RerouteShipment,
    Role,
    ShipmentView,
    TimelineEntry,
)

# Fields added after orders were already placed: left out of the fingerprint while they hold their default, so
# a repeat of a body sent before they existed still matches the order it created.
_FINGERPRINT_OPTIONAL: dict[str, object] = {
    "payment_method": PaymentMethod.CARD.value,
    "pickup_node_id": None,
    "quote_id": None,
}
# A quote id is a token of a few hundred characters; anything much longer is not one.
QUOTE_ID_MAX = 4096


class OrderCreate(BaseModel):
    """An order as a commerce platform sends it."""

    model_config = ConfigDict(extra="forbid")

    order_id: OrderId
    customer_id: str = Field(min_length=1, max_length=64)
    channel: Channel = Channel.API
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    service_level: ServiceLevel = ServiceLevel.STANDARD
    ship_to: Address
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    placed_at: AwareDatetime | None = None
    # ``terms``: a B2B account billed on invoice, checked against the customer's credit limit.
    payment_method: PaymentMethod = PaymentMethod.CARD
    # A pickup order: the branch the customer collects from (``ship_to`` is then the billing address).
    pickup_node_id: NodeId | None = None
    # The option chosen at checkout (``POST /fulfillment-options``): the order executes that plan when it is
    # still feasible, and records why not when it is not. It sets the service level and the pickup branch.
    quote_id: str | None = Field(default=None, min_length=1, max_length=QUOTE_ID_MAX)

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_unique_line_ids(lines)
        return lines

    def to_domain(self, received_at: datetime) -> Order:
        return Order(**self.model_dump(exclude={"placed_at", "quote_id"}), placed_at=self.placed_at or received_at)

    def fingerprint(self) -> str:
        """Identity of the request's content: a repeat with the same content is the same order."""
        content = self.model_dump(mode="json", exclude={"placed_at"})
        for name, default in _FINGERPRINT_OPTIONAL.items():
            if content[name] == default:
                del content[name]
        canonical = json.dumps(content, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class WorkflowRef(BaseModel):
    workflow_id: str
    run_id: str | None = None
    status: str | None = None
    ui_url: str | None = None


class OrderAccepted(BaseModel):
    order_id: str
    stage: OrderStage
    workflow: WorkflowRef
    # Asked with ``wait=reserved`` (the default with a quote): whether the order is accepted and its stock held.
    placement: Placement | None = None


class OrderPublic(BaseModel):
    order_id: str
    stage: OrderStage
    customer_id: str
    channel: str
    service_level: str
    lines: int
    shipments: list[ShipmentView]
    plan: Plan | None
    failure: str | None
    timeline: list[TimelineEntry]
    # Holds in force (review, csr, payment), the payment as it stands, units cancelled per line, a backorder's
    # deadline, the open exception's code, and the branch of a pickup order.
    holds: list[Hold] = Field(default_factory=list)
    payment: PaymentState | None = None
    cancelled: dict[str, int] = Field(default_factory=dict)
    backorder: BackorderState | None = None
    exception_code: str | None = None
    pickup_node_id: str | None = None
    # Per line: the node and shipment its units come from, and their stage.
    line_sources: list[LineSources] = Field(default_factory=list)
    # The promise as first made (the quote, or the first plan), as it stands, and every move between.
    original_promise: PlanEffect | None = None
    current_promise: PlanEffect | None = None
    promise_changes: list[PromiseChange] = Field(default_factory=list)
    quote: QuoteOutcome | None = None
    # Until this instant the customer may still change branch, service, address or lines.
    changes_until: datetime | None = None
    # A pickup order: where and from when to collect.
    pickup: PickupDetails | None = None
    workflow: WorkflowRef


class PickupDetails(BaseModel):
    node_id: str
    name: str | None = None
    address: dict[str, Any] | None = None
    # When everything can be collected (the latest shipment's ready-by), and whether it is waiting now.
    ready_by: datetime | None = None
    ready: bool = False


OrderPublic.model_rebuild()


# --- CSR overrides: the contract payload minus ``actor``, which comes from the X-Actor header ---------------


class OverrideBody(BaseModel):
    """Why, and in which role: every override records these with the actor on the order's timeline."""

    model_config = ConfigDict(extra="forbid")
    payload_type: ClassVar[type[Override]]

    role: Role = Role.CSR
    reason_code: Code = Field(description="a short snake_case code, such as `customer_request`")
    note: str = Field(default="", max_length=1000)

    def to_payload(self, actor: str) -> Override:
        """The workflow's payload; raises pydantic's ValidationError if the actor is not acceptable."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        return self.payload_type(actor=actor, **fields)


class HoldBody(OverrideBody):
    payload_type = HoldOrder


class ReleaseHoldBody(OverrideBody):
    payload_type = ReleaseHold

    hold: HoldCode | None = Field(default=None, description="the hold to lift; none: every hold that is not a review")


class DecideReviewBody(OverrideBody):
    payload_type = DecideReview


class CancelBody(OverrideBody):
    payload_type = CancelOrder

    line_ids: list[str] | None = Field(
        default=None, min_length=1, description="these lines only (every unit not yet shipped); none: the whole order"
    )


class RerouteBody(OverrideBody):
    payload_type = RerouteShipment

    shipment_id: str = Field(min_length=1, max_length=200)
    node_id: NodeId


class ServiceLevelBody(OverrideBody):
    payload_type = ChangeServiceLevel

    service_level: ServiceLevel


class AddressBody(OverrideBody):
    payload_type = ChangeAddress

    ship_to: Address


class PickupBody(OverrideBody):
    payload_type = ChangePickup

    node_id: NodeId = Field(description="the branch to collect from")


class NoteBody(OverrideBody):
    payload_type = AddNote

    # A note is the whole point of this override: required here, unlike on the others.
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]


class WebhookAccepted(BaseModel):
    event_id: str
    outcome: str


class UnmatchedEvent(BaseModel):
    """A webhook event kept but applied to no order: its order was never placed here, or had already finished."""

    event_id: str
    source: str
    order_id: str | None
    outcome: str = Field(description="`unknown_order` or `order_closed`")
    received_at: AwareDatetime
    payload: dict[str, Any] = Field(description="the event as it was accepted")


class UnmatchedEvents(BaseModel):
    items: list[UnmatchedEvent]


# --- checkout: fulfilment options --------------------------------------------------------------------------


class CartBody(BaseModel):
    """A cart at checkout: what the customer would order, to be delivered to ``ship_to`` or collected."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=64)
    channel: Channel = Channel.WEB
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    ship_to: Address
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    # The branch the customer has chosen to collect from, if any (its own option comes first).
    pickup_node_id: NodeId | None = None
    # The service the customer has selected: the option planned with it is marked ``recommended``.
    service_level: ServiceLevel = ServiceLevel.STANDARD
    methods: list[Method] = Field(
        default_factory=lambda: [Method.PICKUP, Method.DELIVERY], min_length=1, description="pickup, delivery or both"
    )

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_unique_line_ids(lines)
        return lines

    def to_cart(self, now: datetime) -> Order:
        """The cart as an order not yet placed (its id is assigned when it is: quotes do not bind it)."""
        return Order(
            order_id="checkout",
            placed_at=now,
            **self.model_dump(exclude={"methods"}),
        )


class OptionShipment(BaseModel):
    node_id: str
    units: int
    ready_by: datetime | None
    deliver_by: date | None
    price_minor: int
    # Units moved into this node from others before it ships (or is collected).
    transferred_units: int = 0


class OptionPublic(BaseModel):
    """One way to receive the cart, with the quote id to order it with."""

    option_id: str
    quote_id: str
    kind: OptionKind
    method: Method
    service_level: ServiceLevel | None
    recommended: bool
    trade_off: str
    price_minor: int
    currency: str
    ready_by: datetime | None
    deliver_by: date | None
    shipments: int
    node_ids: list[str]
    via_transfer: bool
    backordered_units: int
    distance_km: float | None
    # The business's cost to serve (handling, transfers, carrier), for a CSR to compare; not a charge.
    cost_minor: int
    lines: list[OptionLine]
    parcels: list[OptionShipment]

    @classmethod
    def of(cls, option: FulfilmentOption, quote_id: str) -> OptionPublic:
        return cls(
            quote_id=quote_id,
            parcels=[
                OptionShipment(
                    node_id=ps.node_id,
                    units=ps.units,
                    ready_by=ps.ready_by,
                    deliver_by=ps.deliver_by,
                    price_minor=ps.shipping_minor,
                    transferred_units=sum(t.quantity for t in ps.transfers_in),
                )
                for ps in option.plan.shipments
            ],
            **option.model_dump(
                include={
                    "option_id",
                    "kind",
                    "method",
                    "service_level",
                    "recommended",
                    "trade_off",
                    "price_minor",
                    "currency",
                    "ready_by",
                    "deliver_by",
                    "shipments",
                    "node_ids",
                    "via_transfer",
                    "backordered_units",
                    "distance_km",
                    "cost_minor",
                    "lines",
                }
            ),
        )


class FulfilmentOptionsPublic(BaseModel):
    cart_fingerprint: str
    generated_at: datetime
    # Every quote id in this answer can be ordered with until then.
    quotes_expire_at: datetime
    policy_version: str
    options: list[OptionPublic]
    # Set when nothing can be offered: why.
    message: str | None = None
