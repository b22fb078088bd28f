"""Business failure reasons, typed, with their names kept in one place.

Activities raise these as ``ApplicationError(type=ErrorType.X, non_retryable=True)``; workflows branch on
``ActivityError.cause.type``. A reason that is not in this list is a bug or a transient failure, and retries.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    ORDER_INVALID = "OrderInvalid"
    OUT_OF_STOCK = "OutOfStock"
    NODE_REJECTED = "NodeRejected"
    # A reservation key whose lines were released (by compensation or expiry) cannot be replayed into a hold.
    RESERVATION_RELEASED = "ReservationReleased"
    PAYMENT_DECLINED = "PaymentDeclined"
    CREDIT_LIMIT_EXCEEDED = "CreditLimitExceeded"
    CAPTURE_FAILED = "CaptureFailed"
    # A CSR override refused by the workflow's validator (nothing changed), or refused while being carried out.
    OVERRIDE_INVALID = "OverrideInvalid"
    OVERRIDE_REFUSED = "OverrideRefused"


class BusinessError(Exception):
    """A reason the business understands. ``type`` travels to the workflow as the failure type."""

    type: ErrorType

    def __init__(self, message: str, *, details: object | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class OrderInvalid(BusinessError):
    type = ErrorType.ORDER_INVALID


class OutOfStock(BusinessError):
    type = ErrorType.OUT_OF_STOCK


class NodeRejected(BusinessError):
    type = ErrorType.NODE_REJECTED


class ReservationReleased(BusinessError):
    type = ErrorType.RESERVATION_RELEASED


class PaymentDeclined(BusinessError):
    type = ErrorType.PAYMENT_DECLINED


class CreditLimitExceeded(BusinessError):
    """A ``terms`` order would take the customer's open balance over its credit limit."""

    type = ErrorType.CREDIT_LIMIT_EXCEEDED


class CaptureFailed(BusinessError):
    type = ErrorType.CAPTURE_FAILED
