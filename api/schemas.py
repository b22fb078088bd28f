"""Request and response bodies. They map to domain types at the edge and are never stored as they are."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.lifecycle import OrderStage
from domain.orders import MAX_LINES, Address, Channel, Order, OrderId, OrderLine, ServiceLevel, check_unique_line_ids
from domain.sourcing import Plan
from workflows.contracts import ShipmentView, TimelineEntry


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

    @field_validator("lines")
    @classmethod
    def _unique_line_ids(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_unique_line_ids(lines)
        return lines

    def to_domain(self, received_at: datetime) -> Order:
        return Order(**self.model_dump(exclude={"placed_at"}), placed_at=self.placed_at or received_at)

    def fingerprint(self) -> str:
        """Identity of the request's content: a repeat with the same content is the same order."""
        canonical = json.dumps(self.model_dump(mode="json", exclude={"placed_at"}), sort_keys=True)
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
    workflow: WorkflowRef


class WebhookAccepted(BaseModel):
    event_id: str
    outcome: str
