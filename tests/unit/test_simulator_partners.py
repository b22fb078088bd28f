"""The partner clients against the simulator, in-process: each call, its idempotent repeat, each refusal, and
the webhooks the simulated warehouses and carriers send (received by a stand-in API that verifies them)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response

from domain.errors import CaptureFailed, CreditLimitExceeded, PaymentDeclined
from domain.exceptions import ShipmentIssue
from domain.lifecycle import ShipmentStage
from domain.orders import Address, Order, OrderLine, PaymentMethod
from integrations.fraud import FraudScreen
from integrations.notify import NotificationRequest, Notifier
from integrations.partners import Partners
from integrations.payments import AuthorizationRequest, CaptureRequest, PaymentGateway, RefundRequest, VoidRequest
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from integrations.webhooks import SIGNATURE_HEADER, ShipmentWebhookEvent, verify
from integrations.wms import CancelRequest, FollowUpRequest, ProviderRejected, ReleaseLine, ReleaseRequest
from tests.support import eventually
from workflows.contracts import Audience, FollowUpKind

SECRET = "sim-test-secret"
ADDRESS = Address(name="Ada", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US")
DELIVERY = [
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.SHIPPED,
    ShipmentStage.IN_TRANSIT,
    ShipmentStage.DELIVERED,
]


@dataclass
class Receiver:
    """A stand-in for the API's webhook endpoint: verifies the signature, records each event. A gate set on a
    stage or issue holds its delivery (the simulator has reached that step, the API has not heard yet)."""

    events: list[ShipmentWebhookEvent] = field(default_factory=list)
    gates: dict[str, asyncio.Event] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/wms")
        async def receive(request: Request) -> Response:
            body = await request.body()
            verify(request.headers.get(SIGNATURE_HEADER), body, [SECRET], now=int(time.time()), tolerance_s=60)
            event = ShipmentWebhookEvent.model_validate_json(body)
            gate = self.gates.get(str(event.stage or event.issue))
            if gate is not None:
                await gate.wait()
            self.events.append(event)
            return Response(status_code=202)

        return app

    def of(self, shipment_id: str) -> list[str]:
        return [str(e.stage or e.issue) for e in self.events if e.shipment_id == shipment_id]


@dataclass
class Sim:
    http: httpx.AsyncClient
    partners: Partners
    receiver: Receiver

    async def behave(self, **change: Any) -> None:
        response = await self.http.patch("/control/behaviour", json=change)
        assert response.status_code == 200, response.text

    async def release(self, node: str = "DC-1", *, method: str = "delivery", key: str | None = None) -> ReleaseRequest:
        order_id = f"S-{uuid.uuid4().hex[:8]}"
        request = ReleaseRequest(
            order_id=order_id,
            shipment_id=f"{order_id}:p1:{node}",
            node_id=node,
            service_level="standard",
            ship_to=ADDRESS,
            lines=[ReleaseLine(line_id="1", sku="DRILL", quantity=2), ReleaseLine(line_id="2", sku="SAW", quantity=1)],
            method=method,
        )
        await self.partners.wms.release(request, idempotency_key=key or f"{order_id}:release:p1:{node}")
        return request

    async def events_of(self, shipment_id: str, count: int) -> list[str]:
        return await eventually(lambda: _now(self.receiver.of(shipment_id)), lambda e: len(e) >= count, timeout_s=5)

    async def release_record(self, shipment_id: str) -> dict[str, Any]:
        releases = (await self.http.get("/wms/releases")).json()["releases"]
        [record] = [r for r in releases if r["shipment_id"] == shipment_id]
        return dict(record)


async def _now(value: list[str]) -> list[str]:
    return list(value)


@asynccontextmanager
async def simulator_posting_to(receiver: FastAPI, secret: str = SECRET) -> AsyncIterator[httpx.AsyncClient]:
    """The simulator in process, steps taking no time, its webhooks signed with ``secret`` and going to
    ``receiver``: a client to call it."""
    config = SimulatorConfig(
        webhook_url="http://api/webhooks/wms", webhook_secret=secret, behaviour=Behaviour(step_delay_s=0)
    )
    app = create_simulator_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://api") as api,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http,
    ):
        app.state.http = api  # the simulator's webhooks go to the stand-in API
        yield http


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    receiver = Receiver()
    async with simulator_posting_to(receiver.app()) as http:
        yield Sim(http=http, partners=Partners.over(http), receiver=receiver)
        for gate in receiver.gates.values():
            gate.set()


async def settle() -> None:
    """Let playback tasks run whatever they would run next (steps take no time here)."""
    for _ in range(50):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


# --- warehouses and carriers ----------------------------------------------------------------------------------


async def test_release_plays_acknowledged_first_then_on_to_delivery(sim: Sim) -> None:
    request = await sim.release()
    again = await sim.partners.wms.release(request, idempotency_key=f"{request.order_id}:release:p1:DC-1")
    assert again.replayed
    assert await sim.events_of(request.shipment_id, 6) == DELIVERY
    shipped = next(e for e in sim.receiver.events if e.stage is ShipmentStage.SHIPPED)
    assert shipped.tracking_number
    assert shipped.tracking_number.startswith("SIM")
    record = await sim.release_record(request.shipment_id)
    assert (record["attempts"], record["stage"], record["method"]) == (2, "delivered", "delivery")


async def test_pickup_waits_at_the_branch_until_collected(sim: Sim) -> None:
    request = await sim.release("BR-1", method="pickup")
    assert await sim.events_of(request.shipment_id, 4) == [
        ShipmentStage.ACKNOWLEDGED,
        ShipmentStage.PICKED,
        ShipmentStage.PACKED,
        ShipmentStage.READY_FOR_PICKUP,
    ]
    await settle()
    assert len(sim.receiver.of(request.shipment_id)) == 4, "no collection unless the customer comes"

    collected = await sim.http.post(f"/control/shipments/{request.shipment_id}/collect")
    assert collected.status_code == 202
    assert (await sim.events_of(request.shipment_id, 5))[-1] == ShipmentStage.COLLECTED
    assert (await sim.http.post(f"/control/shipments/{request.shipment_id}/collect")).status_code == 409


async def test_pickup_is_collected_on_its_own_with_auto_collect(sim: Sim) -> None:
    await sim.behave(auto_collect=True)
    request = await sim.release("BR-1", method="pickup")
    assert (await sim.events_of(request.shipment_id, 5))[-2:] == [
        ShipmentStage.READY_FOR_PICKUP,
        ShipmentStage.COLLECTED,
    ]


async def test_short_pick_node_reports_every_line_short_after_acknowledging(sim: Sim) -> None:
    await sim.behave(short_pick_nodes=["DC-SHORT"])
    request = await sim.release("DC-SHORT")
    assert await sim.events_of(request.shipment_id, 2) == [ShipmentStage.ACKNOWLEDGED, ShipmentIssue.SHORT_PICKED]
    await settle()
    assert len(sim.receiver.of(request.shipment_id)) == 2, "nothing follows a short pick"
    issue = sim.receiver.events[-1]
    assert issue.event_id.endswith(":short_picked")
    assert [(s.line_id, s.short_quantity) for s in issue.short_lines] == [("1", 2), ("2", 1)]


async def test_silent_node_accepts_and_then_says_nothing(sim: Sim) -> None:
    await sim.behave(silent_nodes=["DC-QUIET"])
    request = await sim.release("DC-QUIET")
    await settle()
    assert sim.receiver.of(request.shipment_id) == []
    assert (await sim.release_record(request.shipment_id))["stage"] is None


async def test_delay_node_reports_a_delay_with_a_new_estimate_after_shipping(sim: Sim) -> None:
    await sim.behave(delay_nodes={"DC-SLOW": 3})
    request = await sim.release("DC-SLOW")
    events = await sim.events_of(request.shipment_id, 7)
    assert events == [*DELIVERY[:4], ShipmentIssue.DELAYED, *DELIVERY[4:]]
    delayed = next(e for e in sim.receiver.events if e.issue is ShipmentIssue.DELAYED)
    assert delayed.new_estimate == datetime.now(UTC).date() + timedelta(days=3)


async def test_lose_node_loses_the_parcel_in_transit(sim: Sim) -> None:
    await sim.behave(lose_nodes=["DC-LOSSY"])
    request = await sim.release("DC-LOSSY")
    assert await sim.events_of(request.shipment_id, 6) == [*DELIVERY[:5], ShipmentIssue.LOST]
    await settle()
    assert ShipmentStage.DELIVERED not in sim.receiver.of(request.shipment_id)


async def test_rejecting_node_refuses_the_release(sim: Sim) -> None:
    await sim.behave(reject_nodes=["DC-NO"])
    with pytest.raises(ProviderRejected) as err:
        await sim.release("DC-NO")
    assert err.value.status_code == 409


async def test_cancel_before_shipping_stops_the_playback_and_repeats_are_replays(sim: Sim) -> None:
    sim.receiver.gates[ShipmentStage.PACKED] = asyncio.Event()
    request = await sim.release()
    await eventually(lambda: sim.release_record(request.shipment_id), lambda r: r["stage"] == "packed", timeout_s=5)

    cancel = CancelRequest(order_id=request.order_id, node_id="DC-1", reason="customer cancelled")
    key = f"{request.order_id}:cancel:{request.shipment_id}"
    ack = await sim.partners.wms.cancel(request.shipment_id, cancel, idempotency_key=key)
    assert (ack.cancelled, ack.stage, ack.replayed) == (True, ShipmentStage.PACKED, False)
    again = await sim.partners.wms.cancel(request.shipment_id, cancel, idempotency_key=key)
    assert (again.cancelled, again.stage, again.replayed) == (True, ShipmentStage.PACKED, True)

    sim.receiver.gates[ShipmentStage.PACKED].set()
    await settle()
    assert sim.receiver.of(request.shipment_id) == [ShipmentStage.ACKNOWLEDGED, ShipmentStage.PICKED]
    stats = (await sim.http.get("/wms/cancellations")).json()
    mine = [c for c in stats["cancellations"] if c["shipment_id"] == request.shipment_id]
    assert [(c["cancelled"], c["attempts"]) for c in mine] == [(True, 2)]
    assert (await sim.release_record(request.shipment_id))["cancelled"] is True


async def test_cancel_once_shipped_is_too_late_and_not_an_error(sim: Sim) -> None:
    sim.receiver.gates[ShipmentStage.SHIPPED] = asyncio.Event()
    request = await sim.release()
    await eventually(lambda: sim.release_record(request.shipment_id), lambda r: r["stage"] == "shipped", timeout_s=5)
    cancel = CancelRequest(order_id=request.order_id, node_id="DC-1", reason="too slow")
    ack = await sim.partners.wms.cancel(request.shipment_id, cancel, idempotency_key=f"{request.order_id}:cancel")
    assert (ack.cancelled, ack.stage) == (False, ShipmentStage.SHIPPED)

    sim.receiver.gates[ShipmentStage.SHIPPED].set()
    assert await sim.events_of(request.shipment_id, 6) == DELIVERY, "the parcel goes on"
    late = await sim.partners.wms.cancel(request.shipment_id, cancel, idempotency_key=f"{request.order_id}:cancel:2")
    assert (late.cancelled, late.stage) == (False, ShipmentStage.DELIVERED)


async def test_cancel_before_the_release_arrives_refuses_the_late_release(sim: Sim) -> None:
    shipment_id = f"S-{uuid.uuid4().hex[:8]}:p1:DC-1"
    cancel = CancelRequest(order_id=shipment_id.split(":")[0], node_id="DC-1", reason="ack SLA missed")
    ack = await sim.partners.wms.cancel(shipment_id, cancel, idempotency_key=f"{shipment_id}:cancel")
    assert (ack.cancelled, ack.stage, ack.release_id) == (True, None, None)
    late = ReleaseRequest(
        order_id=cancel.order_id,
        shipment_id=shipment_id,
        node_id="DC-1",
        service_level="standard",
        ship_to=ADDRESS,
        lines=[ReleaseLine(line_id="1", sku="DRILL", quantity=1)],
    )
    with pytest.raises(ProviderRejected, match="cancelled before it arrived"):
        await sim.partners.wms.release(late, idempotency_key=f"{shipment_id}:release")


async def test_follow_ups_are_opened_once_per_key(sim: Sim) -> None:
    request = FollowUpRequest(
        order_id="S-FU", shipment_id="S-FU:p1:DC-1", kind=FollowUpKind.INTERCEPT, reason="cancelled after shipping"
    )
    first = await sim.partners.wms.request_follow_up(request, idempotency_key="S-FU:follow-up:intercept")
    again = await sim.partners.wms.request_follow_up(request, idempotency_key="S-FU:follow-up:intercept")
    assert (first.reference, first.replayed) == (again.reference, False)
    assert again.replayed
    assert first.reference.startswith("FU-INTERCEPT-")
    trace = request.model_copy(update={"kind": FollowUpKind.TRACE, "tracking_number": "SIM1"})
    other = await sim.partners.wms.request_follow_up(trace, idempotency_key="S-FU:follow-up:trace")
    assert other.reference != first.reference
    with pytest.raises(httpx.HTTPStatusError) as err:
        await sim.partners.wms.request_follow_up(trace, idempotency_key="S-FU:follow-up:intercept")
    assert err.value.response.status_code == 422

    stats = (await sim.http.get("/carrier/follow-ups")).json()
    mine = [f for f in stats["follow_ups"] if f["order_id"] == "S-FU"]
    assert [(f["kind"], f["attempts"]) for f in mine] == [("intercept", 2), ("trace", 1)]


# --- payments -------------------------------------------------------------------------------------------------


def authorization(order_id: str, amount: int, *, customer: str = "C-1", method: PaymentMethod = PaymentMethod.CARD):
    return AuthorizationRequest(
        order_id=order_id, customer_id=customer, method=method, amount_minor=amount, currency="USD"
    )


async def ledger(sim: Sim, order_id: str) -> dict[str, Any]:
    response = await sim.http.get(f"/payments/orders/{order_id}")
    assert response.status_code == 200
    return dict(response.json())


async def test_payment_lifecycle_moves_money_once_per_key(sim: Sim) -> None:
    gateway = sim.partners.payments
    order_id = f"P-{uuid.uuid4().hex[:8]}"
    auth = await gateway.authorize(authorization(order_id, 10_000), idempotency_key=f"{order_id}:payment:authorize")
    again = await gateway.authorize(authorization(order_id, 10_000), idempotency_key=f"{order_id}:payment:authorize")
    assert (again.authorization_id, again.amount_minor, again.replayed) == (auth.authorization_id, 10_000, True)

    auth_id = auth.authorization_id
    for _ in range(3):  # a retried capture takes the money once
        captured = await gateway.capture(
            auth_id, CaptureRequest(amount_minor=6_000), idempotency_key=f"{order_id}:cap:1"
        )
    assert (captured.amount_minor, captured.replayed) == (6_000, True)
    voided = await gateway.void(auth_id, VoidRequest(), idempotency_key=f"{order_id}:void")
    assert voided.amount_minor == 4_000
    nothing_left = await gateway.void(auth_id, VoidRequest(amount_minor=100), idempotency_key=f"{order_id}:void:2")
    assert nothing_left.amount_minor == 0
    refund = RefundRequest(amount_minor=2_500, reason="lost parcel")
    await gateway.refund(auth_id, refund, idempotency_key=f"{order_id}:refund:1")
    await gateway.refund(auth_id, refund, idempotency_key=f"{order_id}:refund:1")

    book = await ledger(sim, order_id)
    assert (book["authorized_minor"], book["captured_minor"], book["voided_minor"], book["refunded_minor"]) == (
        10_000,
        6_000,
        4_000,
        2_500,
    )
    attempts = {o["operation"]: o["attempts"] for o in book["operations"] if o["operation"] != "void"}
    assert attempts == {"authorize": 2, "capture": 3, "refund": 2}


async def test_capture_beyond_the_authorization_fails_and_refund_beyond_the_capture_is_refused(sim: Sim) -> None:
    gateway = sim.partners.payments
    order_id = f"P-{uuid.uuid4().hex[:8]}"
    auth = await gateway.authorize(authorization(order_id, 1_000), idempotency_key=f"{order_id}:auth")
    with pytest.raises(CaptureFailed, match="more than the 1000 left"):
        await gateway.capture(auth.authorization_id, CaptureRequest(amount_minor=1_001), idempotency_key="over")
    with pytest.raises(httpx.HTTPStatusError) as err:
        await gateway.refund(auth.authorization_id, RefundRequest(amount_minor=1), idempotency_key=f"{order_id}:r")
    assert err.value.response.status_code == 422
    assert (await ledger(sim, order_id))["captured_minor"] == 0


async def test_declined_customer_is_refused_and_the_key_is_not_spent(sim: Sim) -> None:
    order_id = f"P-{uuid.uuid4().hex[:8]}"
    await sim.behave(decline_customers=["C-BAD"])
    request = authorization(order_id, 5_000, customer="C-BAD")
    with pytest.raises(PaymentDeclined, match="declined"):
        await sim.partners.payments.authorize(request, idempotency_key=f"{order_id}:auth")
    assert (await ledger(sim, order_id))["authorized_minor"] == 0

    await sim.behave(decline_customers=[])  # the customer updated their card
    ack = await sim.partners.payments.authorize(request, idempotency_key=f"{order_id}:auth")
    assert (ack.amount_minor, ack.replayed) == (5_000, False)


async def test_terms_authorizations_stay_within_the_credit_limit(sim: Sim) -> None:
    gateway = sim.partners.payments
    customer = f"B2B-{uuid.uuid4().hex[:6]}"
    await sim.behave(credit_limits={customer: 10_000})
    first = await gateway.authorize(
        authorization("T-1", 6_000, customer=customer, method=PaymentMethod.TERMS), idempotency_key="T-1:auth"
    )
    second = authorization("T-2", 5_000, customer=customer, method=PaymentMethod.TERMS)
    with pytest.raises(CreditLimitExceeded) as err:
        await gateway.authorize(second, idempotency_key="T-2:auth")
    assert err.value.details == {
        "code": "credit_limit_exceeded",
        "reason": err.value.message,
        "limit_minor": 10_000,
        "open_minor": 6_000,
    }
    # A card payment by the same customer is not drawn on the credit line.
    await gateway.authorize(authorization("T-3", 50_000, customer=customer), idempotency_key="T-3:auth")

    await gateway.void(first.authorization_id, VoidRequest(), idempotency_key="T-1:void")
    assert (await gateway.authorize(second, idempotency_key="T-2:auth")).amount_minor == 5_000


async def test_capture_fails_for_the_orders_the_behaviour_names(sim: Sim) -> None:
    order_id = f"P-{uuid.uuid4().hex[:8]}"
    await sim.behave(capture_fail_orders=[order_id])
    auth = await sim.partners.payments.authorize(authorization(order_id, 2_000), idempotency_key=f"{order_id}:auth")
    with pytest.raises(CaptureFailed):
        await sim.partners.payments.capture(
            auth.authorization_id, CaptureRequest(amount_minor=2_000), idempotency_key=f"{order_id}:capture"
        )
    assert (await ledger(sim, order_id))["captured_minor"] == 0


async def test_gateway_errors_other_than_refusals_propagate() -> None:
    def unavailable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"detail": "maintenance"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(unavailable), base_url="http://pay") as http:
        with pytest.raises(httpx.HTTPStatusError):
            await PaymentGateway(http).authorize(authorization("P-503", 100), idempotency_key="P-503:auth")


# --- fraud and notifications ----------------------------------------------------------------------------------


def order(customer_id: str) -> Order:
    return Order(
        order_id=f"F-{uuid.uuid4().hex[:8]}",
        customer_id=customer_id,
        ship_to=ADDRESS,
        lines=[OrderLine(line_id="1", sku="DRILL", quantity=2, unit_price_minor=12_900)],
        placed_at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )


async def test_fraud_screen_scores_by_customer_with_reasons(sim: Sim) -> None:
    screen: FraudScreen = sim.partners.fraud
    usual = await screen.screen(order("C-1"))
    assert (usual.score, usual.reasons) == (0.05, ["no risk signals"])
    await sim.behave(fraud_scores={"C-RISKY": 0.93})
    risky_order = order("C-RISKY")
    risky = await screen.screen(risky_order)
    assert risky.score == 0.93
    assert risky.reasons == ["customer C-RISKY is on the watch list"]
    recorded = (await sim.http.get("/fraud/screens", params={"order_id": risky_order.order_id})).json()
    assert [(s["customer_id"], s["score"]) for s in recorded["screens"]] == [("C-RISKY", 0.93)]


async def test_notifications_are_recorded_once_per_key(sim: Sim) -> None:
    notifier: Notifier = sim.partners.notifier
    order_id = f"N-{uuid.uuid4().hex[:8]}"
    message = NotificationRequest(
        order_id=order_id, audience=Audience.CUSTOMER, kind="order_delayed", message="Your order is running late."
    )
    first = await notifier.send(message, idempotency_key=f"{order_id}:notify:delay")
    again = await notifier.send(message, idempotency_key=f"{order_id}:notify:delay")
    assert (again.notification_id, again.replayed, first.replayed) == (first.notification_id, True, False)
    csr = message.model_copy(update={"audience": Audience.CSR, "kind": "delay_escalated"})
    await notifier.send(csr, idempotency_key=f"{order_id}:notify:escalate")

    sent = (await sim.http.get("/notifications", params={"order_id": order_id})).json()["notifications"]
    assert [(n["audience"], n["kind"], n["attempts"]) for n in sent] == [
        ("customer", "order_delayed", 2),
        ("csr", "delay_escalated", 1),
    ]
    to_csr = (await sim.http.get("/notifications", params={"order_id": order_id, "audience": "csr"})).json()
    assert len(to_csr["notifications"]) == 1


async def test_behaviour_patch_ignores_nulls_and_put_resets(sim: Sim) -> None:
    await sim.behave(delay_nodes={"X": 2}, step_delay_s=None)
    current = (await sim.http.get("/control/behaviour")).json()
    assert (current["delay_nodes"], current["step_delay_s"]) == ({"X": 2}, 0)
    reset = (await sim.http.put("/control/behaviour", json={"step_delay_s": 0})).json()
    assert reset["delay_nodes"] == {}
    assert reset["default_fraud_score"] == 0.05
    refused = await sim.http.patch("/control/behaviour", json={"fraud_scores": {"C-1": 1.5}})
    assert refused.status_code == 422


def test_estimate_is_a_date() -> None:
    # The delay's new estimate travels as a date (no time, no zone) in the webhook.
    event = ShipmentWebhookEvent(
        event_id="E",
        order_id="O",
        shipment_id="S",
        issue=ShipmentIssue.DELAYED,
        occurred_at=datetime.now(UTC),
        new_estimate=date(2026, 12, 1),
    )
    assert '"new_estimate":"2026-12-01"' in event.model_dump_json()
