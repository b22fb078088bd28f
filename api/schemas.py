"""Request and response bodies. They map to domain types at the edge and are never stored as they are."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from domain.lifecycle import OrderStage
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
from domain.sourcing import Plan
from workflows.contracts import (
    AddNote,
    BackorderState,
    CancelOrder,
    ChangeAddress,
    ChangeServiceLevel,
    Code,
    DecideReview,
    Hold,
    HoldCode,
    HoldOrder,
    Override,
    PaymentState,
    ReleaseHold,
    RerouteShipment,
    Role,
    ShipmentView,
    TimelineEntry,
)

# Fields added after orders were already placed: left out of the fingerprint while they hold their default, so
# a repeat of a body sent before they existed still matches the order it created.
_FINGERPRINT_OPTIONAL: dict[str, object] = {"payment_method": PaymentMethod.CARD.value, "pickup_node_id": None}


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

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_unique_line_ids(lines)
        return lines

    def to_domain(self, received_at: datetime) -> Order:
        return Order(**self.model_dump(exclude={"placed_at"}), placed_at=self.placed_at or received_at)

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
    workflow: WorkflowRef


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


class NoteBody(OverrideBody):
    payload_type = AddNote

    # A note is the whole point of this override: required here, unlike on the others.
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]


class WebhookAccepted(BaseModel):
    event_id: str
    outcome: str
