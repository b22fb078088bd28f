"""Money and risk: the fraud screen, and authorizing, capturing, voiding and refunding through the gateway.

Each call sends the workflow's idempotency key as-is, so a retry, a replay or a reset moves no money twice.
A refusal (declined, over the credit limit, capture failed) is a typed business failure the workflow branches
on; connection errors and 5xx propagate and are retried by Temporal.
"""

from __future__ import annotations

import structlog
from temporalio import activity

from activities import business_failures
from integrations.fraud import FraudScreen
from integrations.payments import (
    AuthorizationRequest,
    CaptureRequest,
    PaymentAck,
    PaymentGateway,
    RefundRequest,
    VoidRequest,
)
from workflows.contracts import (
    ActivityName,
    AuthorizePaymentInput,
    CapturePaymentInput,
    PaymentResult,
    RefundPaymentInput,
    ScreenOrderInput,
    ScreenOrderResult,
    VoidPaymentInput,
)

log = structlog.get_logger(__name__)


def _result(ack: PaymentAck) -> PaymentResult:
    return PaymentResult(authorization_id=ack.authorization_id, amount_minor=ack.amount_minor, replayed=ack.replayed)


class PaymentActivities:
    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    @activity.defn(name=ActivityName.AUTHORIZE_PAYMENT)
    async def authorize_payment(self, input: AuthorizePaymentInput) -> PaymentResult:
        """Raises ``PaymentDeclined`` or ``CreditLimitExceeded`` (non-retryable) when refused."""
        request = AuthorizationRequest(
            order_id=input.order_id,
            customer_id=input.customer_id,
            method=input.method,
            amount_minor=input.amount_minor,
            currency=input.currency,
        )
        log.info("authorizing payment", method=input.method, amount_minor=input.amount_minor)
        async with business_failures():
            ack = await self._gateway.authorize(request, idempotency_key=input.idempotency_key)
        return _result(ack)

    @activity.defn(name=ActivityName.CAPTURE_PAYMENT)
    async def capture_payment(self, input: CapturePaymentInput) -> PaymentResult:
        """Raises ``CaptureFailed`` (non-retryable) when refused. ``amount_minor`` of the result: captured now."""
        log.info("capturing payment", authorization_id=input.authorization_id, amount_minor=input.amount_minor)
        async with business_failures():
            ack = await self._gateway.capture(
                input.authorization_id,
                CaptureRequest(amount_minor=input.amount_minor),
                idempotency_key=input.idempotency_key,
            )
        return _result(ack)

    @activity.defn(name=ActivityName.VOID_PAYMENT)
    async def void_payment(self, input: VoidPaymentInput) -> PaymentResult:
        """``amount_minor`` of the result: what was given back (0 when nothing was left to void)."""
        log.info("voiding payment", authorization_id=input.authorization_id, amount_minor=input.amount_minor)
        async with business_failures():
            ack = await self._gateway.void(
                input.authorization_id,
                VoidRequest(amount_minor=input.amount_minor),
                idempotency_key=input.idempotency_key,
            )
        return _result(ack)

    @activity.defn(name=ActivityName.REFUND_PAYMENT)
    async def refund_payment(self, input: RefundPaymentInput) -> PaymentResult:
        log.info("refunding payment", authorization_id=input.authorization_id, amount_minor=input.amount_minor)
        async with business_failures():
            ack = await self._gateway.refund(
                input.authorization_id,
                RefundRequest(amount_minor=input.amount_minor, reason=input.reason),
                idempotency_key=input.idempotency_key,
            )
        return _result(ack)


class FraudActivities:
    def __init__(self, screen: FraudScreen) -> None:
        self._screen = screen

    @activity.defn(name=ActivityName.SCREEN_ORDER)
    async def screen_order(self, input: ScreenOrderInput) -> ScreenOrderResult:
        """The score and its reasons; whether it needs a review is the workflow's call (its threshold)."""
        result = await self._screen.screen(input.order)
        log.info("order screened", score=result.score)
        return ScreenOrderResult(score=result.score, reasons=result.reasons)
