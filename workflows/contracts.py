"""Payloads that cross the workflow boundary: one input and one result type per call.

All are pydantic models carried by the pydantic data converter configured in ``infra.temporal``. Adding
an optional field is compatible with histories already recorded; renaming or removing one is not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import SearchAttributeKey

from domain.lifecycle import OrderStage, ShipmentStage
from domain.orders import Address, GeoPoint, Order
from domain.sourcing import Allocation, Plan, PlannedShipment

# Search attributes: business identifiers and states only, never personal data (they are stored unencrypted).
SA_ORDER_STATUS = SearchAttributeKey.for_keyword("OrderStatus")
SA_CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
SA_CHANNEL = SearchAttributeKey.for_keyword("Channel")
SA_NODES = SearchAttributeKey.for_keyword_list("FulfilmentNodes")
SA_EXCEPTION_CODE = SearchAttributeKey.for_keyword("ExceptionCode")

SEARCH_ATTRIBUTES = (SA_ORDER_STATUS, SA_CUSTOMER_ID, SA_CHANNEL, SA_NODES, SA_EXCEPTION_CODE)


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- workflow input and signals -------------------------------------------------------------------------


class OrderWorkflowInput(_Payload):
    order: Order


class ShipmentEventReceived(_Payload):
    """A warehouse or carrier fact about one shipment, delivered as a signal."""

    event_id: str
    shipment_id: str
    stage: ShipmentStage
    occurred_at: datetime
    source: str = "wms"
    tracking_number: str | None = None


# --- activities -----------------------------------------------------------------------------------------


class ValidateOrderInput(_Payload):
    order: Order


class ValidateOrderResult(_Payload):
    destination: GeoPoint | None
    warnings: list[str] = Field(default_factory=list)


class PlanOrderInput(_Payload):
    order: Order
    destination: GeoPoint | None
    attempt: int
    excluded_nodes: list[str] = Field(default_factory=list)


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


class ShipmentView(_Payload):
    shipment_id: str
    node_id: str
    stage: ShipmentStage
    allocations: list[Allocation]
    provider_reference: str | None = None
    tracking_number: str | None = None


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


class SignalName:
    SHIPMENT_EVENT_RECEIVED = "shipment_event_received"


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
