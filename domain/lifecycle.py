"""Order and shipment stages, and the one rule for moving between them.

Warehouse and carrier events arrive late, twice, or out of order. A shipment therefore only moves
forward: an event for an earlier stage than the current one is recorded but changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStage(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    # Waiting for a CSR to approve or reject it (fraud score, credit limit): never times out silently.
    ON_HOLD = "on_hold"
    REJECTED = "rejected"
    PLANNED = "planned"
    RESERVED = "reserved"
    # Some quantity could not be sourced: waiting for stock or for the backorder deadline.
    BACKORDERED = "backordered"
    RELEASED = "released"
    IN_FULFILMENT = "in_fulfilment"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({OrderStage.REJECTED, OrderStage.COMPLETED, OrderStage.CANCELLED, OrderStage.FAILED})


class ShipmentStage(StrEnum):
    PLANNED = "planned"
    RELEASED = "released"
    ACKNOWLEDGED = "acknowledged"
    PICKED = "picked"
    PACKED = "packed"
    # A pickup shipment waits at its branch; it ends collected instead of delivered.
    READY_FOR_PICKUP = "ready_for_pickup"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"
    COLLECTED = "collected"
    # Ended by the orchestrator, not by the provider: what it carried is planned again or cancelled.
    CANCELLED = "cancelled"
    LOST = "lost"


# The forward path. A delivery shipment skips READY_FOR_PICKUP and COLLECTED, a pickup one SHIPPED to DELIVERED.
SHIPMENT_PROGRESSION: tuple[ShipmentStage, ...] = (
    ShipmentStage.PLANNED,
    ShipmentStage.RELEASED,
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.READY_FOR_PICKUP,
    ShipmentStage.SHIPPED,
    ShipmentStage.IN_TRANSIT,
    ShipmentStage.DELIVERED,
    ShipmentStage.COLLECTED,
)

# The stages a fulfilment provider or carrier may report.
REPORTABLE_STAGES = frozenset(SHIPMENT_PROGRESSION[SHIPMENT_PROGRESSION.index(ShipmentStage.ACKNOWLEDGED) :])

# A shipment in one of these needs nothing more: handed to the customer, or ended and replaced.
FINISHED_STAGES = frozenset({ShipmentStage.DELIVERED, ShipmentStage.COLLECTED})
ENDED_STAGES = frozenset({ShipmentStage.CANCELLED, ShipmentStage.LOST})


def advances(current: ShipmentStage, reported: ShipmentStage) -> bool:
    """True when ``reported`` is later than ``current``: the only kind of event that moves a shipment.

    A cancelled or lost shipment never moves again, and nothing a provider reports can end one.
    """
    if current in ENDED_STAGES or reported in ENDED_STAGES:
        return False
    return SHIPMENT_PROGRESSION.index(reported) > SHIPMENT_PROGRESSION.index(current)


def has_left_node(stage: ShipmentStage) -> bool:
    """Once shipped (or collected), the stock has physically gone: reservations for it are consumed."""
    if stage in ENDED_STAGES:
        return stage is ShipmentStage.LOST
    return SHIPMENT_PROGRESSION.index(stage) >= SHIPMENT_PROGRESSION.index(ShipmentStage.SHIPPED)
