"""Order and shipment stages, and the one rule for moving between them.

Warehouse and carrier events arrive late, twice, or out of order. A shipment therefore only moves
forward: an event for an earlier stage than the current one is recorded but changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStage(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    REJECTED = "rejected"
    PLANNED = "planned"
    RESERVED = "reserved"
    RELEASED = "released"
    IN_FULFILMENT = "in_fulfilment"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({OrderStage.REJECTED, OrderStage.COMPLETED, OrderStage.FAILED})


class ShipmentStage(StrEnum):
    PLANNED = "planned"
    RELEASED = "released"
    ACKNOWLEDGED = "acknowledged"
    PICKED = "picked"
    PACKED = "packed"
    SHIPPED = "shipped"
    IN_TRANSIT = "in_transit"
    DELIVERED = "delivered"


SHIPMENT_PROGRESSION: tuple[ShipmentStage, ...] = tuple(ShipmentStage)

# The stages a fulfilment provider or carrier may report.
REPORTABLE_STAGES = frozenset(SHIPMENT_PROGRESSION[SHIPMENT_PROGRESSION.index(ShipmentStage.ACKNOWLEDGED) :])


def advances(current: ShipmentStage, reported: ShipmentStage) -> bool:
    """True when ``reported`` is later than ``current``: the only kind of event that moves a shipment."""
    return SHIPMENT_PROGRESSION.index(reported) > SHIPMENT_PROGRESSION.index(current)


def has_left_node(stage: ShipmentStage) -> bool:
    """Once shipped, the stock has physically gone: reservations for it are consumed."""
    return SHIPMENT_PROGRESSION.index(stage) >= SHIPMENT_PROGRESSION.index(ShipmentStage.SHIPPED)
