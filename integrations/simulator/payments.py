"""The simulated payment gateway and its fraud screen: the provider side of ``integrations.payments`` and
``integrations.fraud``.

The gateway keeps a ledger per authorization (authorized, captured, voided, refunded). Each call is applied
once per idempotency key; a repeat answers the first result with ``replayed: true`` and moves nothing. A
refusal (``402``) is not remembered, so the same key may succeed once the behaviour changes (a card updated,
a limit raised). The behaviour decides refusals by customer or order id, and fraud scores by customer.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Header, HTTPException, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.orders import PaymentMethod
from integrations.fraud import ScreenRequest, ScreenResponse
from integrations.payments import (
    AuthorizationRequest,
    CaptureRequest,
    PaymentAck,
    PaymentRefusal,
    RefundRequest,
    RefusalCode,
    VoidRequest,
)
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.faults import FaultInjector

log = structlog.get_logger(__name__)

IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)]
OperationKind = Literal["authorize", "capture", "void", "refund"]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass
class Authorization:
    authorization_id: str
    request: AuthorizationRequest
    captured_minor: int = 0
    voided_minor: int = 0
    refunded_minor: int = 0

    @property
    def remaining_minor(self) -> int:
        """Authorized and neither captured nor voided: what a capture may still take."""
        return self.request.amount_minor - self.captured_minor - self.voided_minor

    @property
    def open_minor(self) -> int:
        """What counts against a credit limit: authorized, less voided and refunded."""
        return self.request.amount_minor - self.voided_minor - self.refunded_minor


@dataclass
class PaymentOperation:
    key: str
    operation: OperationKind
    authorization_id: str
    request: BaseModel
    ack: PaymentAck
    attempts: int = 1


class AuthorizationView(BaseModel):
    authorization_id: str
    customer_id: str
    method: PaymentMethod
    currency: str
    authorized_minor: int
    captured_minor: int
    voided_minor: int
    refunded_minor: int


class OperationView(BaseModel):
    idempotency_key: str
    operation: OperationKind
    authorization_id: str
    amount_minor: int
    reference: str
    attempts: int


class PaymentLedger(BaseModel):
    """What the gateway did for one order: totals, each authorization, and each effective operation."""

    order_id: str
    authorized_minor: int = 0
    captured_minor: int = 0
    voided_minor: int = 0
    refunded_minor: int = 0
    authorizations: list[AuthorizationView] = []
    operations: list[OperationView] = []


class PaymentStats(BaseModel):
    requests: int
    # Calls that moved money (repeats and refusals did not).
    effective_operations: int
    refusals: int
    orders: list[PaymentLedger]


class ScreenRecord(BaseModel):
    order_id: str
    customer_id: str
    score: float
    reasons: list[str]


class FraudStats(BaseModel):
    requests: int
    screens: list[ScreenRecord]


@dataclass
class Gateway:
    config: SimulatorConfig
    faults: FaultInjector
    authorizations: dict[str, Authorization] = field(default_factory=dict)
    operations: dict[str, PaymentOperation] = field(default_factory=dict)
    screens: list[ScreenRecord] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: {"payments": 0, "refusals": 0, "screens": 0})

    def ledger(self, order_id: str) -> PaymentLedger:
        auths = [a for a in self.authorizations.values() if a.request.order_id == order_id]
        ids = {a.authorization_id for a in auths}
        return PaymentLedger(
            order_id=order_id,
            authorized_minor=sum(a.request.amount_minor for a in auths),
            captured_minor=sum(a.captured_minor for a in auths),
            voided_minor=sum(a.voided_minor for a in auths),
            refunded_minor=sum(a.refunded_minor for a in auths),
            authorizations=[
                AuthorizationView(
                    authorization_id=a.authorization_id,
                    customer_id=a.request.customer_id,
                    method=a.request.method,
                    currency=a.request.currency,
                    authorized_minor=a.request.amount_minor,
                    captured_minor=a.captured_minor,
                    voided_minor=a.voided_minor,
                    refunded_minor=a.refunded_minor,
                )
                for a in auths
            ],
            operations=[
                OperationView(
                    idempotency_key=o.key,
                    operation=o.operation,
                    authorization_id=o.authorization_id,
                    amount_minor=o.ack.amount_minor,
                    reference=o.ack.reference,
                    attempts=o.attempts,
                )
                for o in self.operations.values()
                if o.authorization_id in ids
            ],
        )

    def open_terms_minor(self, customer_id: str) -> int:
        return sum(
            a.open_minor
            for a in self.authorizations.values()
            if a.request.customer_id == customer_id and a.request.method is PaymentMethod.TERMS
        )

    def refuse(self, code: RefusalCode, reason: str, **extra: int) -> JSONResponse:
        self.counters["refusals"] += 1
        log.info("payment refused", code=code, reason=reason)
        body = PaymentRefusal(code=code, reason=reason, **extra)
        return JSONResponse(
            body.model_dump(mode="json", exclude_none=True), status_code=status.HTTP_402_PAYMENT_REQUIRED
        )

    def score(self, request: ScreenRequest) -> ScreenResponse:
        behaviour = self.config.behaviour
        if request.customer_id in behaviour.fraud_scores:
            reason = f"customer {request.customer_id} is on the watch list"
            return ScreenResponse(score=behaviour.fraud_scores[request.customer_id], reasons=[reason])
        return ScreenResponse(score=behaviour.default_fraud_score, reasons=["no risk signals"])

    def router(self) -> APIRouter:
        router = APIRouter()
        lock = asyncio.Lock()

        def replay(key: str, operation: OperationKind, authorization_id: str, request: BaseModel) -> PaymentAck | None:
            existing = self.operations.get(key)
            if existing is None:
                return None
            if (existing.operation, existing.authorization_id, existing.request) != (
                operation,
                authorization_id,
                request,
            ):
                raise HTTPException(422, f"idempotency key reused with a different {operation}")
            existing.attempts += 1
            return existing.ack.model_copy(update={"replayed": True})

        def record(
            key: str, operation: OperationKind, authorization_id: str, request: BaseModel, amount: int
        ) -> PaymentAck:
            reference = authorization_id if operation == "authorize" else f"{operation.upper()}-{_digest(key)}"
            ack = PaymentAck(authorization_id=authorization_id, amount_minor=amount, reference=reference)
            self.operations[key] = PaymentOperation(key, operation, authorization_id, request, ack)
            log.info("payment", operation=operation, authorization_id=authorization_id, amount_minor=amount)
            return ack

        def authorization(authorization_id: str) -> Authorization:
            found = self.authorizations.get(authorization_id)
            if found is None:
                raise HTTPException(404, f"no authorization {authorization_id}")
            return found

        @router.post(
            "/payments/authorizations",
            response_model=PaymentAck,
            status_code=status.HTTP_201_CREATED,
            responses={402: {"model": PaymentRefusal}},
        )
        async def authorize(
            request: AuthorizationRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> PaymentAck | JSONResponse:
            await self.faults.gate("payments", idempotency_key)
            async with lock:
                self.counters["payments"] += 1
                authorization_id = "AUTH-" + _digest(idempotency_key)
                if (ack := replay(idempotency_key, "authorize", authorization_id, request)) is not None:
                    response.status_code = status.HTTP_200_OK
                    return ack
                behaviour = self.config.behaviour
                if request.customer_id in behaviour.decline_customers:
                    return self.refuse(RefusalCode.DECLINED, f"declined by the issuer for {request.customer_id}")
                limit = behaviour.credit_limits.get(request.customer_id)
                if request.method is PaymentMethod.TERMS and limit is not None:
                    open_minor = self.open_terms_minor(request.customer_id)
                    if open_minor + request.amount_minor > limit:
                        return self.refuse(
                            RefusalCode.CREDIT_LIMIT_EXCEEDED,
                            f"{request.customer_id}: {open_minor} open + {request.amount_minor} is over the "
                            f"credit limit of {limit}",
                            limit_minor=limit,
                            open_minor=open_minor,
                        )
                self.authorizations[authorization_id] = Authorization(authorization_id, request)
                return record(idempotency_key, "authorize", authorization_id, request, request.amount_minor)

        @router.post(
            "/payments/authorizations/{authorization_id}/captures",
            response_model=PaymentAck,
            status_code=status.HTTP_201_CREATED,
            responses={402: {"model": PaymentRefusal}},
        )
        async def capture(
            authorization_id: str, request: CaptureRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> PaymentAck | JSONResponse:
            await self.faults.gate("payments", idempotency_key)
            async with lock:
                self.counters["payments"] += 1
                if (ack := replay(idempotency_key, "capture", authorization_id, request)) is not None:
                    response.status_code = status.HTTP_200_OK
                    return ack
                auth = authorization(authorization_id)
                if auth.request.order_id in self.config.behaviour.capture_fail_orders:
                    return self.refuse(RefusalCode.CAPTURE_FAILED, f"capture refused for {auth.request.order_id}")
                if request.amount_minor > auth.remaining_minor:
                    return self.refuse(
                        RefusalCode.CAPTURE_FAILED,
                        f"{request.amount_minor} is more than the {auth.remaining_minor} left on {authorization_id}",
                    )
                auth.captured_minor += request.amount_minor
                return record(idempotency_key, "capture", authorization_id, request, request.amount_minor)

        @router.post(
            "/payments/authorizations/{authorization_id}/voids",
            response_model=PaymentAck,
            status_code=status.HTTP_201_CREATED,
        )
        async def void(
            authorization_id: str, request: VoidRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> PaymentAck:
            await self.faults.gate("payments", idempotency_key)
            async with lock:
                self.counters["payments"] += 1
                if (ack := replay(idempotency_key, "void", authorization_id, request)) is not None:
                    response.status_code = status.HTTP_200_OK
                    return ack
                auth = authorization(authorization_id)
                # Never more than what is left: voiding a fully captured authorization gives back nothing.
                wanted = auth.remaining_minor if request.amount_minor is None else request.amount_minor
                amount = min(wanted, auth.remaining_minor)
                auth.voided_minor += amount
                return record(idempotency_key, "void", authorization_id, request, amount)

        @router.post(
            "/payments/authorizations/{authorization_id}/refunds",
            response_model=PaymentAck,
            status_code=status.HTTP_201_CREATED,
        )
        async def refund(
            authorization_id: str, request: RefundRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> PaymentAck:
            await self.faults.gate("payments", idempotency_key)
            async with lock:
                self.counters["payments"] += 1
                if (ack := replay(idempotency_key, "refund", authorization_id, request)) is not None:
                    response.status_code = status.HTTP_200_OK
                    return ack
                auth = authorization(authorization_id)
                refundable = auth.captured_minor - auth.refunded_minor
                if request.amount_minor > refundable:
                    raise HTTPException(
                        422, f"{request.amount_minor} is more than the {refundable} captured and not refunded"
                    )
                auth.refunded_minor += request.amount_minor
                return record(idempotency_key, "refund", authorization_id, request, request.amount_minor)

        @router.get("/payments", response_model=PaymentStats)
        async def payment_stats() -> PaymentStats:
            orders = sorted({a.request.order_id for a in self.authorizations.values()})
            return PaymentStats(
                requests=self.counters["payments"],
                effective_operations=len(self.operations),
                refusals=self.counters["refusals"],
                orders=[self.ledger(order_id) for order_id in orders],
            )

        @router.get("/payments/orders/{order_id}", response_model=PaymentLedger)
        async def order_ledger(order_id: str) -> PaymentLedger:
            """An order's ledger; all zeros when nothing was authorized for it."""
            return self.ledger(order_id)

        @router.post("/fraud/screen", response_model=ScreenResponse)
        async def screen(request: ScreenRequest) -> ScreenResponse:
            # A screen carries no idempotency key: its faults are keyed by the order.
            await self.faults.gate("fraud", request.order_id)
            self.counters["screens"] += 1
            result = self.score(request)
            self.screens.append(
                ScreenRecord(
                    order_id=request.order_id,
                    customer_id=request.customer_id,
                    score=result.score,
                    reasons=result.reasons,
                )
            )
            return result

        @router.get("/fraud/screens", response_model=FraudStats)
        async def screen_stats(order_id: str | None = None) -> FraudStats:
            return FraudStats(
                requests=self.counters["screens"],
                screens=[s for s in self.screens if order_id is None or s.order_id == order_id],
            )

        return router
