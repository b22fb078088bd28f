"""What the simulated partners do, and where they send their events: set at start, changed at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, Field

MinorUnits = Annotated[int, Field(ge=0)]
Score = Annotated[float, Field(ge=0, le=1)]
Days = Annotated[int, Field(ge=0, le=365)]


class Behaviour(BaseModel):
    """What the simulated partners do; replaced through ``PUT /control/behaviour``, changed field by field
    through ``PATCH``. Every choice is keyed by a node, customer or order id: nothing is random."""

    step_delay_s: float = Field(default=2.0, ge=0, le=3600)
    # While true, releases are acknowledged but no event is sent (an order stays "in flight").
    hold_events: bool = False

    # --- warehouses and carriers ---
    # Nodes whose WMS refuses every release (a business rejection: 409).
    reject_nodes: list[str] = Field(default_factory=list)
    # Nodes that accept a release, acknowledge it, then report it short-picked (every line, every unit).
    short_pick_nodes: list[str] = Field(default_factory=list)
    # Nodes that accept a release and then say nothing at all: no acknowledgement, no event.
    silent_nodes: list[str] = Field(default_factory=list)
    # Nodes whose carrier reports a delay after shipping: the new estimate is that many days from the report.
    delay_nodes: dict[str, Days] = Field(default_factory=dict)
    # Nodes whose carrier loses the parcel once it is in transit.
    lose_nodes: list[str] = Field(default_factory=list)
    # A pickup shipment waits at the branch once ready; true: the customer collects it one step later.
    auto_collect: bool = False

    # --- payments and fraud ---
    # Customers whose every authorization is declined.
    decline_customers: list[str] = Field(default_factory=list)
    # Credit limits of customers paying on terms: their open balance (authorized, less voided and refunded)
    # must stay within. A customer not listed has no limit.
    credit_limits: dict[str, MinorUnits] = Field(default_factory=dict)
    # Orders whose captures fail.
    capture_fail_orders: list[str] = Field(default_factory=list)
    # Fraud scores by customer; every other customer scores ``default_fraud_score``.
    fraud_scores: dict[str, Score] = Field(default_factory=dict)
    default_fraud_score: Score = 0.05


class BehaviourChange(BaseModel):
    """A partial ``Behaviour``: what ``PATCH /control/behaviour`` changes, leaving the rest as it is."""

    step_delay_s: float | None = Field(default=None, ge=0, le=3600)
    hold_events: bool | None = None
    reject_nodes: list[str] | None = None
    short_pick_nodes: list[str] | None = None
    silent_nodes: list[str] | None = None
    delay_nodes: dict[str, Days] | None = None
    lose_nodes: list[str] | None = None
    auto_collect: bool | None = None
    decline_customers: list[str] | None = None
    credit_limits: dict[str, MinorUnits] | None = None
    capture_fail_orders: list[str] | None = None
    fraud_scores: dict[str, Score] | None = None
    default_fraud_score: Score | None = None


@dataclass
class SimulatorConfig:
    webhook_url: str
    webhook_secret: str
    behaviour: Behaviour
