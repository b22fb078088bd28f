"""The order as the orchestrator understands it, independent of any API or storage shape."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

OrderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Sku = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
NodeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]

MAX_LINES = 200
MAX_LINE_QUANTITY = 10_000


class ServiceLevel(StrEnum):
    STANDARD = "standard"
    EXPEDITED = "expedited"


class PaymentMethod(StrEnum):
    """``card``: authorized now, captured per shipment. ``terms``: a B2B account billed on invoice, checked
    against the customer's credit limit instead of a card."""

    CARD = "card"
    TERMS = "terms"


class Channel(StrEnum):
    WEB = "web"
    B2B_PORTAL = "b2b_portal"
    MARKETPLACE = "marketplace"
    CSR = "csr"
    API = "api"


class GeoPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Address(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    line1: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    line2: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] | None = None
    city: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    region: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    postal_code: Annotated[str, StringConstraints(min_length=1, max_length=20, strip_whitespace=True)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    location: GeoPoint | None = None


class OrderLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    line_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,32}$")]
    sku: Sku
    quantity: int = Field(gt=0, le=MAX_LINE_QUANTITY)
    unit_price_minor: int = Field(default=0, ge=0)


class Order(BaseModel):
    """A placed order. Immutable: changes after placement are recorded as events, not edits."""

    model_config = ConfigDict(frozen=True)

    order_id: OrderId
    customer_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    channel: Channel = Channel.API
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "USD"
    service_level: ServiceLevel = ServiceLevel.STANDARD
    ship_to: Address
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)
    placed_at: AwareDatetime
    payment_method: PaymentMethod = PaymentMethod.CARD
    # Set for a pickup order: the branch the customer collects from (``ship_to`` is then the billing address).
    pickup_node_id: NodeId | None = None

    @model_validator(mode="after")
    def _unique_line_ids(self) -> Order:
        check_unique_line_ids(self.lines)
        return self

    @property
    def total_minor(self) -> int:
        return sum(line.unit_price_minor * line.quantity for line in self.lines)

    @property
    def is_pickup(self) -> bool:
        return self.pickup_node_id is not None

    def line(self, line_id: str) -> OrderLine:
        return next(line for line in self.lines if line.line_id == line_id)

    def quantities_by_sku(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.sku] = totals.get(line.sku, 0) + line.quantity
        return totals


def check_unique_line_ids(lines: list[OrderLine]) -> None:
    seen: set[str] = set()
    for line in lines:
        if line.line_id in seen:
            raise ValueError(f"duplicate line_id {line.line_id!r}")
        seen.add(line.line_id)


def ensure_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value
