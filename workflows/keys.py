"""Idempotency keys: built from the order's business identity (order, step, plan attempt), never from a run id.

A reset from the Temporal UI starts a new run; because the keys do not change, the ledger, the warehouse and
the payment gateway recognise every repeated call as the one they already handled.
"""

from __future__ import annotations


def reservation_key(order_id: str, attempt: int) -> str:
    return f"{order_id}:reserve:plan-{attempt}"


def release_key(order_id: str, attempt: int, node_id: str) -> str:
    return f"{order_id}:release:p{attempt}:{node_id}"


def cancel_key(shipment_id: str) -> str:
    return f"{shipment_id}:cancel"


def payment_key(order_id: str, step: str) -> str:
    """``step`` names the money movement: ``authorize``, ``capture:<shipment>``, ``void:<n>``, ``refund:<...>``."""
    return f"{order_id}:payment:{step}"


def follow_up_key(shipment_id: str, kind: str) -> str:
    return f"{shipment_id}:follow-up:{kind}"


def tracking_key(shipment_id: str, tracking_number: str) -> str:
    """A parcel re-labelled under a new tracking number is registered again; the same number, once."""
    return f"{shipment_id}:track:{tracking_number}"


def notify_key(order_id: str, kind: str, scope: str) -> str:
    return f"{order_id}:notify:{kind}:{scope}"


def status_event_id(order_id: str, seq: int) -> str:
    """The outgoing event announcing an order's ``seq``-th status change: subscribers dedupe by it."""
    return f"{order_id}:status:{seq}"
