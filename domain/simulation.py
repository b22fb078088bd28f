"""Comparing two policies on the same orders: what each decided, what changed, and the totals of each side.

The rules simulator plans each order twice, on one network snapshot and one ``now``: under the active policy
and under a candidate version. This module turns the two decisions into an ``Outcome`` each, says per order
what differs, and adds each side up. It decides nothing and reads nothing: the caller plans.

Totals, per side:

- ``cost_minor``: the plans' cost (carrier rates, handling, transfers), summed per currency, fulfillable orders
  only (an order that cannot be placed costs nothing, and is counted in ``unfulfillable`` instead);
- ``shipments_per_order``: shipments over fulfillable orders;
- ``distance_km`` / ``mean_distance_km``: the distance of every shipment whose distance is known (a
  destination that could not be located has none), summed and averaged per shipment;
- ``mean_promised_days``: days from ``now`` to the promised date (the day the customer has everything), over
  fulfillable orders that have one;
- ``backordered_units``: units left to be filled later under a ``ship_available`` split policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from domain.sourcing import Plan


class Outcome(BaseModel):
    """One side's decision for one order: where it goes and what it costs, or why it cannot be placed."""

    model_config = ConfigDict(frozen=True)

    fulfillable: bool
    node_ids: list[str] = Field(default_factory=list, description="shipping nodes, sorted")
    shipments: int = 0
    cost_minor: int = 0
    distance_km: float | None = Field(default=None, description="summed over shipments with a known distance")
    promised_date: date | None = None
    promised_days: int | None = Field(default=None, description="days from the simulation's date to the promise")
    backordered_units: int = 0
    decision: str | None = Field(default=None, description="the engine's one-line explanation")
    reason: str | None = Field(default=None, description="why the order cannot be placed")

    @classmethod
    def planned(cls, plan: Plan, today: date) -> Outcome:
        distances = [s.distance_km for s in plan.shipments if s.distance_km is not None]
        promised = plan.promised_date()
        return cls(
            fulfillable=True,
            node_ids=sorted(set(plan.node_ids)),
            shipments=len(plan.shipments),
            cost_minor=plan.cost_minor,
            distance_km=round(sum(distances), 3) if distances else None,
            promised_date=promised,
            promised_days=None if promised is None else (promised - today).days,
            backordered_units=sum(b.quantity for b in plan.backorders),
            decision=plan.explanation.decision,
        )

    @classmethod
    def unfulfillable(cls, reason: str) -> Outcome:
        return cls(fulfillable=False, reason=reason)


class Difference(StrEnum):
    FULFILLABLE = "fulfillable"
    NODES = "nodes"
    SHIPMENTS = "shipments"
    COST = "cost"
    PROMISED_DATE = "promised_date"
    BACKORDERS = "backorders"


class OrderComparison(BaseModel):
    model_config = ConfigDict(frozen=True)

    order_id: str
    currency: str
    active: Outcome
    candidate: Outcome
    differences: list[Difference]

    @property
    def changed(self) -> bool:
        return bool(self.differences)


def compare(order_id: str, currency: str, active: Outcome, candidate: Outcome) -> OrderComparison:
    """What differs between the two decisions for one order; nothing else is compared when either side could
    not place it (only that one could and the other could not)."""
    differences: list[Difference] = []
    if active.fulfillable != candidate.fulfillable:
        differences.append(Difference.FULFILLABLE)
    elif active.fulfillable:
        checks = [
            (Difference.NODES, active.node_ids != candidate.node_ids),
            (Difference.SHIPMENTS, active.shipments != candidate.shipments),
            (Difference.COST, active.cost_minor != candidate.cost_minor),
            (Difference.PROMISED_DATE, active.promised_date != candidate.promised_date),
            (Difference.BACKORDERS, active.backordered_units != candidate.backordered_units),
        ]
        differences = [difference for difference, differs in checks if differs]
    return OrderComparison(
        order_id=order_id, currency=currency, active=active, candidate=candidate, differences=differences
    )


class Totals(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: int
    fulfillable: int
    unfulfillable: int
    cost_minor: dict[str, int] = Field(description="by currency, over fulfillable orders")
    shipments: int
    shipments_per_order: float | None
    distance_km: float
    mean_distance_km: float | None = Field(description="per shipment with a known distance")
    mean_promised_days: float | None
    backordered_units: int


def _mean(values: Sequence[float], places: int = 2) -> float | None:
    return round(sum(values) / len(values), places) if values else None


def totals(outcomes: Iterable[tuple[str, Outcome]]) -> Totals:
    """Add up one side: ``outcomes`` are (currency, outcome) per order."""
    rows = list(outcomes)
    placed = [(currency, o) for currency, o in rows if o.fulfillable]
    cost: dict[str, int] = {}
    for currency, outcome in placed:
        cost[currency] = cost.get(currency, 0) + outcome.cost_minor
    shipments = sum(o.shipments for _, o in placed)
    # Shipments without a known distance contribute neither to the sum nor to the count.
    located = [o for _, o in placed if o.distance_km is not None]
    located_shipments = sum(o.shipments for o in located)
    distance = sum(o.distance_km or 0.0 for o in located)
    promised = [float(o.promised_days) for _, o in placed if o.promised_days is not None]
    return Totals(
        orders=len(rows),
        fulfillable=len(placed),
        unfulfillable=len(rows) - len(placed),
        cost_minor=dict(sorted(cost.items())),
        shipments=shipments,
        shipments_per_order=_mean([float(o.shipments) for _, o in placed]),
        distance_km=round(distance, 3),
        mean_distance_km=round(distance / located_shipments, 3) if located_shipments else None,
        mean_promised_days=_mean(promised),
        backordered_units=sum(o.backordered_units for _, o in placed),
    )


class Summary(BaseModel):
    model_config = ConfigDict(frozen=True)

    orders: int
    changed: int
    by_difference: dict[Difference, int] = Field(description="orders with each kind of difference")
    active: Totals
    candidate: Totals


def summarise(comparisons: Sequence[OrderComparison]) -> Summary:
    counts: dict[Difference, int] = {}
    for comparison in comparisons:
        for difference in comparison.differences:
            counts[difference] = counts.get(difference, 0) + 1
    return Summary(
        orders=len(comparisons),
        changed=sum(1 for c in comparisons if c.changed),
        by_difference={d: counts[d] for d in Difference if d in counts},
        active=totals((c.currency, c.active) for c in comparisons),
        candidate=totals((c.currency, c.candidate) for c in comparisons),
    )
