"""The partner activities as the worker runs them: network readiness and ATP on real PostgreSQL, and payments,
fraud, fulfilment follow-ups and notifications against the simulator in-process. Business refusals must reach
the workflow as non-retryable failures of the right type; everything else as a plain result."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Response
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.fulfilment import FulfilmentActivities
from activities.network import NetworkActivities
from activities.notify import NotifyActivities
from activities.payments import FraudActivities, PaymentActivities
from domain.errors import ErrorType
from domain.inventory import UNTIERED_RANK
from domain.lifecycle import ShipmentStage
from domain.orders import Address, PaymentMethod
from domain.policy import Method
from domain.sourcing import Allocation, PlannedShipment
from infra.db.tables import AllocationTier, Node, NodeCapacityUsage
from infra.db.uow import UowFactory
from integrations.partners import Partners
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from tests.activities.test_ledger import add_customer, protect
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, build_network, eventually, make_order
from workflows.contracts import (
    Audience,
    AuthorizePaymentInput,
    CancelReleaseInput,
    CapturePaymentInput,
    CheckNodesInput,
    FollowUpKind,
    NodeAtpInput,
    NotifyInput,
    RefundPaymentInput,
    ReleaseShipmentInput,
    RequestFollowUpInput,
    ScreenOrderInput,
    VoidPaymentInput,
)

pytestmark = pytest.mark.db

DAY = date(2026, 11, 23)
ADDRESS = Address(name="Test", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US")


# --- the network ----------------------------------------------------------------------------------------------


async def set_capacity(uow: UowFactory, node_id: str, *, orders: int | None, units: int | None) -> None:
    async with uow() as u:
        await u.session.execute(
            update(Node)
            .where(Node.node_id == node_id)
            .values(capacity_orders_per_day=orders, capacity_units_per_day=units)
        )
        await u.commit()


async def use_capacity(uow: UowFactory, node_id: str, day: date, *, orders: int, units: int) -> None:
    async with uow() as u:
        await u.session.execute(insert(NodeCapacityUsage).values(node_id=node_id, day=day, orders=orders, units=units))
        await u.commit()


async def test_check_nodes_says_which_nodes_can_take_work_and_why_not(uow_factory: UowFactory) -> None:
    net = await build_network(
        uow_factory,
        [
            NodeSpec("OPEN", AUSTIN),
            NodeSpec("PAUSED", DALLAS, status="paused"),
            NodeSpec("FULL", NEWARK),
            NodeSpec("UNITS", NEWARK),
            NodeSpec("ROOM", NEWARK),
        ],
        {("OPEN", "DRILL"): 1},
    )
    await set_capacity(uow_factory, net.node("FULL"), orders=20, units=None)
    await use_capacity(uow_factory, net.node("FULL"), DAY, orders=20, units=45)
    await set_capacity(uow_factory, net.node("UNITS"), orders=None, units=100)
    await use_capacity(uow_factory, net.node("UNITS"), DAY, orders=3, units=100)
    await set_capacity(uow_factory, net.node("ROOM"), orders=20, units=100)
    await use_capacity(uow_factory, net.node("ROOM"), DAY, orders=19, units=99)
    await use_capacity(uow_factory, net.node("ROOM"), date(2026, 11, 22), orders=20, units=100)  # another day

    names = ["OPEN", "PAUSED", "FULL", "UNITS", "ROOM"]
    ghost = f"T{net.prefix}-GHOST"
    result = await ActivityEnvironment().run(
        NetworkActivities(uow_factory).check_nodes,
        CheckNodesInput(node_ids=[*(net.node(n) for n in names), ghost], day=DAY),
    )
    assert [(n.node_id, n.ready, n.reason) for n in result.nodes] == [
        (net.node("OPEN"), True, None),
        (net.node("PAUSED"), False, "paused"),
        (net.node("FULL"), False, "capacity"),
        (net.node("UNITS"), False, "capacity"),
        (net.node("ROOM"), True, None),
        (ghost, False, "unknown"),
    ]

    next_day = await ActivityEnvironment().run(
        NetworkActivities(uow_factory).check_nodes, CheckNodesInput(node_ids=[net.node("FULL")], day=date(2026, 11, 24))
    )
    assert next_day.nodes[0].ready, "capacity is per day"


async def add_tier(uow: UowFactory) -> str:
    """A tier ranked above untiered customers. Ranks are unique across the database and other tests take ranks
    anywhere (some above ``UNTIERED_RANK``), so this takes the next free one below it."""
    tier = f"t{uuid.uuid4().hex[:6]}"
    async with uow() as u:
        top = await u.session.scalar(select(func.max(AllocationTier.rank)).where(AllocationTier.rank < UNTIERED_RANK))
        await u.session.execute(insert(AllocationTier).values(tier=tier, rank=max(top or 0, 10_000) + 1))
        await u.commit()
    return tier


async def test_node_atp_is_what_the_customer_may_plan_with_per_node_and_sku(uow_factory: UowFactory) -> None:
    net = await build_network(
        uow_factory,
        [NodeSpec("A", AUSTIN), NodeSpec("B", DALLAS)],
        {("A", "DRILL"): 10, ("A", "SAW"): 4, ("B", "SAW"): 6},
    )
    a, b, drill, saw = net.node("A"), net.node("B"), net.sku("DRILL"), net.sku("SAW")
    async with uow_factory() as u:
        await u.inventory.reserve(
            f"T{net.prefix}:reserve:p1", f"T{net.prefix}", [Allocation(line_id="1", node_id=a, sku=drill, quantity=3)]
        )
        await u.commit()
    gold = await add_tier(uow_factory)
    await protect(uow_factory, b, saw, gold, 5)
    vip = await add_customer(uow_factory, gold)

    node_atp = NetworkActivities(uow_factory).node_atp
    ghost = f"T{net.prefix}-GHOST"
    anyone = await ActivityEnvironment().run(node_atp, NodeAtpInput(node_ids=[a, b, ghost], skus=[drill, saw]))
    assert anyone.atp == {a: {drill: 7, saw: 4}, b: {drill: 0, saw: 1}}
    tiered = await ActivityEnvironment().run(node_atp, NodeAtpInput(node_ids=[a, b], skus=[saw], customer_id=vip))
    assert tiered.atp == {a: {saw: 4}, b: {saw: 6}}


# --- partners through the simulator -----------------------------------------------------------------------------


@pytest_asyncio.fixture
async def partners() -> AsyncIterator[tuple[Partners, httpx.AsyncClient]]:
    """The simulator as every partner; its webhooks go to a receiver that accepts everything."""
    receiver = FastAPI()

    @receiver.post("/webhooks/wms")
    async def accept() -> Response:
        return Response(status_code=202)

    config = SimulatorConfig("http://api/webhooks/wms", "secret", Behaviour(step_delay_s=0))
    app = create_simulator_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver), base_url="http://api") as api,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http,
    ):
        app.state.http = api
        yield Partners.over(http), http


async def failure_type(call: Callable[..., Any], arg: object) -> tuple[str | None, bool]:
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(call, arg)
    return err.value.type, err.value.non_retryable


async def test_payment_activities_authorize_capture_void_refund(
    partners: tuple[Partners, httpx.AsyncClient],
) -> None:
    activities = PaymentActivities(partners[0].payments)
    order_id = f"A-{uuid.uuid4().hex[:8]}"
    authorize = AuthorizePaymentInput(
        idempotency_key=f"{order_id}:payment:authorize",
        order_id=order_id,
        customer_id="C-1",
        method=PaymentMethod.CARD,
        amount_minor=9_000,
        currency="USD",
    )
    env = ActivityEnvironment()
    auth = await env.run(activities.authorize_payment, authorize)
    assert (auth.amount_minor, auth.replayed) == (9_000, False)
    assert (await env.run(activities.authorize_payment, authorize)).replayed

    capture = CapturePaymentInput(
        idempotency_key=f"{order_id}:payment:capture:s1", authorization_id=auth.authorization_id, amount_minor=5_000
    )
    assert (await env.run(activities.capture_payment, capture)).amount_minor == 5_000
    assert (await env.run(activities.capture_payment, capture)).replayed
    void = VoidPaymentInput(idempotency_key=f"{order_id}:payment:void", authorization_id=auth.authorization_id)
    assert (await env.run(activities.void_payment, void)).amount_minor == 4_000
    refund = RefundPaymentInput(
        idempotency_key=f"{order_id}:payment:refund:s1",
        authorization_id=auth.authorization_id,
        amount_minor=5_000,
        reason="lost",
    )
    assert (await env.run(activities.refund_payment, refund)).amount_minor == 5_000

    ledger = (await partners[1].get(f"/payments/orders/{order_id}")).json()
    assert [ledger[k] for k in ("authorized_minor", "captured_minor", "voided_minor", "refunded_minor")] == [
        9_000,
        5_000,
        4_000,
        5_000,
    ]


async def test_payment_refusals_are_typed_non_retryable_failures(
    partners: tuple[Partners, httpx.AsyncClient],
) -> None:
    gateway, http = partners
    activities = PaymentActivities(gateway.payments)
    order_id = f"A-{uuid.uuid4().hex[:8]}"
    await http.patch(
        "/control/behaviour",
        json={"decline_customers": ["C-DECLINE"], "credit_limits": {"C-TERMS": 100}, "capture_fail_orders": [order_id]},
    )

    def authorize(customer: str, method: PaymentMethod = PaymentMethod.CARD) -> AuthorizePaymentInput:
        return AuthorizePaymentInput(
            idempotency_key=f"{order_id}:{customer}:authorize",
            order_id=order_id,
            customer_id=customer,
            method=method,
            amount_minor=500,
            currency="USD",
        )

    assert await failure_type(activities.authorize_payment, authorize("C-DECLINE")) == (
        ErrorType.PAYMENT_DECLINED,
        True,
    )
    assert await failure_type(activities.authorize_payment, authorize("C-TERMS", PaymentMethod.TERMS)) == (
        ErrorType.CREDIT_LIMIT_EXCEEDED,
        True,
    )
    auth = await ActivityEnvironment().run(activities.authorize_payment, authorize("C-OK"))
    capture = CapturePaymentInput(
        idempotency_key=f"{order_id}:cap", authorization_id=auth.authorization_id, amount_minor=1
    )
    assert await failure_type(activities.capture_payment, capture) == (ErrorType.CAPTURE_FAILED, True)


async def test_screen_order_returns_the_score_and_reasons(
    uow_factory: UowFactory, partners: tuple[Partners, httpx.AsyncClient]
) -> None:
    net = await build_network(uow_factory, [NodeSpec("A", AUSTIN)], {("A", "DRILL"): 1})
    await partners[1].patch("/control/behaviour", json={"fraud_scores": {"C-1": 0.85}})
    result = await ActivityEnvironment().run(
        FraudActivities(partners[0].fraud).screen_order, ScreenOrderInput(order=make_order(net, {"DRILL": 1}))
    )
    assert (result.score, result.reasons) == (0.85, ["customer C-1 is on the watch list"])


async def test_release_cancel_and_follow_up(
    uow_factory: UowFactory, partners: tuple[Partners, httpx.AsyncClient]
) -> None:
    wms, http = partners[0].wms, partners[1]
    activities = FulfilmentActivities(wms, uow_factory)
    env = ActivityEnvironment()
    order_id = f"A-{uuid.uuid4().hex[:8]}"

    def release(node: str, method: Method) -> ReleaseShipmentInput:
        shipment = PlannedShipment(
            shipment_id=f"{order_id}:p1:{node}",
            node_id=node,
            allocations=[Allocation(line_id="1", sku="DRILL", node_id=node, quantity=1)],
            method=method,
        )
        return ReleaseShipmentInput(
            idempotency_key=f"{order_id}:release:p1:{node}",
            order_id=order_id,
            shipment=shipment,
            ship_to=ADDRESS,
            service_level="standard",
        )

    # A pickup is released as one: the provider plays it to ready-for-pickup, not to a carrier.
    await http.patch("/control/behaviour", json={"hold_events": True})
    pickup = await env.run(activities.release_shipment, release("BR-1", Method.PICKUP))
    records = (await http.get("/wms/releases")).json()["releases"]
    assert [r["method"] for r in records if r["release_id"] == pickup.provider_reference] == ["pickup"]

    def cancel(node: str, reference: str | None, suffix: str = "") -> CancelReleaseInput:
        return CancelReleaseInput(
            idempotency_key=f"{order_id}:cancel:{order_id}:p1:{node}{suffix}",
            order_id=order_id,
            shipment_id=f"{order_id}:p1:{node}",
            node_id=node,
            provider_reference=reference,
            reason="customer cancelled",
        )

    stopped = await env.run(activities.cancel_release, cancel("BR-1", pickup.provider_reference))
    assert (stopped.cancelled, stopped.stage) == (True, None)

    # A delivery played to the end: too late to cancel, which is an answer, not a failure.
    await http.patch("/control/behaviour", json={"hold_events": False})
    delivery = await env.run(activities.release_shipment, release("DC-1", Method.DELIVERY))
    await eventually(
        lambda: http.get("/wms/releases"),
        lambda r: any(x["stage"] == "delivered" for x in r.json()["releases"] if x["node_id"] == "DC-1"),
        timeout_s=5,
    )
    too_late = await env.run(activities.cancel_release, cancel("DC-1", delivery.provider_reference))
    assert (too_late.cancelled, too_late.stage) == (False, ShipmentStage.DELIVERED)

    follow_up = RequestFollowUpInput(
        idempotency_key=f"{order_id}:follow-up:return",
        order_id=order_id,
        shipment_id=f"{order_id}:p1:DC-1",
        kind=FollowUpKind.RETURN,
        reason="cancelled after delivery",
    )
    first = await env.run(activities.request_follow_up, follow_up)
    again = await env.run(activities.request_follow_up, follow_up)
    assert first.reference == again.reference
    assert (await http.get("/carrier/follow-ups")).json()["effective_follow_ups"] == 1


async def test_notify_sends_once_per_key(partners: tuple[Partners, httpx.AsyncClient]) -> None:
    activities = NotifyActivities(partners[0].notifier)
    order_id = f"A-{uuid.uuid4().hex[:8]}"
    message = NotifyInput(
        idempotency_key=f"{order_id}:notify:ready",
        order_id=order_id,
        audience=Audience.CUSTOMER,
        kind="ready_for_pickup",
        message="Your order is ready.",
    )
    env = ActivityEnvironment()
    assert (await env.run(activities.notify, message)).delivered
    assert (await env.run(activities.notify, message)).delivered
    sent = (await partners[1].get("/notifications", params={"order_id": order_id})).json()["notifications"]
    assert [(n["kind"], n["attempts"]) for n in sent] == [("ready_for_pickup", 2)]
