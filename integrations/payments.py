"""The payment-gateway port: authorize an order's amount, capture it per shipment, void what is left, refund.

Wire protocol (JSON over HTTPS, every call carries an ``Idempotency-Key`` header; a repeat of a key that
succeeded answers the first result with ``replayed: true`` and moves no money again):

- ``POST /payments/authorizations`` with an ``AuthorizationRequest``: ``201`` with a ``PaymentAck`` (the
  ``authorization_id`` and the amount held). For ``method: "terms"`` the gateway checks the customer's credit
  limit instead of a card.
- ``POST /payments/authorizations/{authorization_id}/captures`` with a ``CaptureRequest``: ``201``, the amount
  taken. Captures add up to at most the amount authorized.
- ``POST /payments/authorizations/{authorization_id}/voids`` with a ``VoidRequest`` (``amount_minor`` null:
  everything not captured): ``201``, the amount given back.
- ``POST /payments/authorizations/{authorization_id}/refunds`` with a ``RefundRequest``: ``201``, the amount
  refunded. Refunds add up to at most the amount captured.

A business refusal is ``402`` with a ``PaymentRefusal`` body, whose ``code`` says which: ``declined``
(``PaymentDeclined``), ``credit_limit_exceeded`` (``CreditLimitExceeded``), ``capture_failed``
(``CaptureFailed``). A refusal is not remembered under its key: the same key may succeed later (a card
updated, a limit raised). ``422`` means the key was reused for a different request; that, other ``4xx``,
``5xx`` and connection errors raise ``httpx`` errors, which the orchestrator retries.
"""

from __future__ import annotations

from enum import StrEnum

import httpx
from pydantic import BaseModel, ConfigDict, Field

from domain.errors import BusinessError, CaptureFailed, CreditLimitExceeded, PaymentDeclined
from domain.orders import PaymentMethod


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuthorizationRequest(_Wire):
    order_id: str
    customer_id: str
    method: PaymentMethod
    amount_minor: int = Field(ge=0)
    currency: str


class CaptureRequest(_Wire):
    amount_minor: int = Field(ge=0)


class VoidRequest(_Wire):
    # None: everything authorized and not captured.
    amount_minor: int | None = Field(default=None, ge=0)


class RefundRequest(_Wire):
    amount_minor: int = Field(gt=0)
    reason: str = ""


class PaymentAck(_Wire):
    """What a payment call did: the authorization it concerns, and the amount this call moved."""

    authorization_id: str
    amount_minor: int
    # The id of this capture, void or refund (the authorization id for an authorization).
    reference: str
    replayed: bool = False


class RefusalCode(StrEnum):
    DECLINED = "declined"
    CREDIT_LIMIT_EXCEEDED = "credit_limit_exceeded"
    CAPTURE_FAILED = "capture_failed"


class PaymentRefusal(_Wire):
    """The body of a ``402``."""

    code: RefusalCode
    reason: str
    # For a credit limit: the limit, and the open balance before this authorization.
    limit_minor: int | None = None
    open_minor: int | None = None


_REFUSALS: dict[RefusalCode, type[BusinessError]] = {
    RefusalCode.DECLINED: PaymentDeclined,
    RefusalCode.CREDIT_LIMIT_EXCEEDED: CreditLimitExceeded,
    RefusalCode.CAPTURE_FAILED: CaptureFailed,
}


class PaymentGateway:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    async def authorize(self, request: AuthorizationRequest, *, idempotency_key: str) -> PaymentAck:
        """Raises ``PaymentDeclined`` or ``CreditLimitExceeded`` when refused."""
        return await self._post("/payments/authorizations", request, idempotency_key)

    async def capture(self, authorization_id: str, request: CaptureRequest, *, idempotency_key: str) -> PaymentAck:
        """Raises ``CaptureFailed`` when refused."""
        return await self._post(f"/payments/authorizations/{authorization_id}/captures", request, idempotency_key)

    async def void(self, authorization_id: str, request: VoidRequest, *, idempotency_key: str) -> PaymentAck:
        return await self._post(f"/payments/authorizations/{authorization_id}/voids", request, idempotency_key)

    async def refund(self, authorization_id: str, request: RefundRequest, *, idempotency_key: str) -> PaymentAck:
        return await self._post(f"/payments/authorizations/{authorization_id}/refunds", request, idempotency_key)

    async def _post(self, path: str, request: BaseModel, idempotency_key: str) -> PaymentAck:
        response = await self._http.post(
            path, json=request.model_dump(mode="json"), headers={"Idempotency-Key": idempotency_key}
        )
        if response.status_code == 402:
            refusal = PaymentRefusal.model_validate(response.json())
            raise _REFUSALS[refusal.code](refusal.reason, details=refusal.model_dump(mode="json", exclude_none=True))
        response.raise_for_status()
        return PaymentAck.model_validate(response.json())
