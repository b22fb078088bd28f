"""Checkout in the order workflow, on the time-skipping server with real activities and real Postgres: an order
placed with a quote keeps the quoted option or records why not; placement is answered once the order is past
planning; and the customer's changes of mind are accepted until the affected shipment is released (a pickup:
until picked), refused after it with nothing changed.

Quotes come from the real checkout service over the same database, so the quoted plan is the one the engine
offered for the seeded network.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.exceptions import PlaybookSettings
from domain.lifecycle import OrderStage, ShipmentStage
from domain.options import OptionKind
from domain.orders import Order, ServiceLevel
from domain.policy import Method
from infra.checkout import CheckoutService
from infra.db.tables import Stock
from infra.db.uow import UowFactory
from infra.geo import CityGeocoder
from tests.support import AUSTIN, DALLAS, NEWARK, NodeSpec, SeededNetwork, build_network, make_order
from tests.workflows.conftest import NewWorker, RecordHistory
from tests.workflows.test_lifecycle import (
    CSR,
    Handle,
    cancellations,
    live,
    override,
    status,
    until,
    update_events,
)
from tests.workflows.test_order_workflow import ALL_THE_WAY, Simulator, report, wait_for_stage
from workflows import order_workflow_id
from workflows.contracts import (
    CancelOrder,
    ChangeAddress,
    ChangePickup,
    ChangeServiceLevel,
    OrderWorkflowInput,
    Placement,
    QuotedOption,
    Role,
)
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.db

SECRET = "workflow-test-quote-secret-0123456789"
CUSTOMER: dict[str, Any] = {**CSR, "actor": "customer:C-1", "role": Role.CUSTOMER, "reason_code": "changed_mind"}
COLLECTED = (
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.READY_FOR_PICKUP,
    ShipmentStage.COLLECTED,
)
WINDOW = PlaybookSettings(change_window=timedelta(hours=1))


def checkout(uow: UowFactory) -> CheckoutService:
    return CheckoutService(uow, CityGeocoder(), [SECRET], timedelta(minutes=15))


async def quote_for(uow: UowFactory, order: Order, kind: OptionKind) -> QuotedOption:
    """The quote the checkout offers for ``order``'s cart as option ``kind``, verified as the API does."""
    service = checkout(uow)
    now = datetime.now(UTC)
    offers = await service.offers(order, now, methods=(Method.PICKUP, Method.DELIVERY))
    offer = next(o for o in offers.offers if o.option.kind is kind)
    return QuotedOption.of(service.verify(offer.quote_id, order, now))


def as_quoted(order: Order, quote: QuotedOption) -> Order:
    """The order as the API places it with a quote: the quote sets the service level and the pickup branch."""
    variant = quote.variant
    return order.model_copy(update={"service_level": variant.service_level, "pickup_node_id": variant.pickup_node_id})


async def start(
    worker: Worker, order: Order, *, quote: QuotedOption | None = None, settings: PlaybookSettings | None = None
) -> Handle:
    return await worker.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(
            order=as_quoted(order, quote) if quote else order, settings=settings or PlaybookSettings(), quote=quote
        ),
        id=order_workflow_id(order.order_id),
        task_queue=worker.task_queue,
    )


async def placement(handle: Handle) -> Placement:
    result = await handle.execute_update(OrderWorkflow.placement)
    assert isinstance(result, Placement)
    return result


async def branch_and_dc(uow: UowFactory, *, branch: int = 2, dc: int = 5) -> SeededNetwork:
    """A store in Austin that ships and takes pickups, a second store in Dallas, and a DC in Newark."""
    return await build_network(
        uow,
        [
            NodeSpec("BRANCH", AUSTIN, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("DALLAS", DALLAS, kind="store", capabilities=("ship", "pickup")),
            NodeSpec("NEWARK", NEWARK),
        ],
        {("BRANCH", "DRILL"): branch, ("DALLAS", "DRILL"): 2, ("NEWARK", "DRILL"): dc},
    )


async def set_on_hand(uow: UowFactory, node_id: str, sku: str, on_hand: int) -> None:
    async with uow() as u:
        await u.session.execute(update(Stock).where(Stock.node_id == node_id, Stock.sku == sku).values(on_hand=on_hand))
        await u.commit()


# --- placing an order with a quote -------------------------------------------------------------------------


async def test_an_order_placed_with_a_quote_executes_exactly_the_quoted_option(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await branch_and_dc(uow_factory)
    order = make_order(net, {"DRILL": 2})
    # Not the option the cart asked for (standard delivery): the customer chose to collect at the branch.
    quote = await quote_for(uow_factory, order, OptionKind.PICKUP_NEAREST)
    assert quote.variant.pickup_node_id == net.node("BRANCH")
    async with new_worker() as worker:
        handle = await start(worker, order, quote=quote)
        placed = await placement(handle)
        assert (placed.accepted, placed.reserved) == (True, True)
        assert placed.quote is not None
        assert placed.quote.kept, placed.quote
        assert placed.quote.option_id == quote.option_id
        view = await wait_for_stage(handle, OrderStage.RELEASED)
        await report(handle, live(view)[0].shipment_id, *COLLECTED)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "quote_kept")
    assert [(s.node_id, s.method) for s in live(view)] == [(net.node("BRANCH"), Method.PICKUP)]
    assert view.pickup_node_id == net.node("BRANCH")
    assert view.promise_changes == []
    assert view.plan is not None
    assert view.plan.explanation.quote == f"kept the quoted option {quote.option_id}"
    [line] = view.line_sources
    assert [(s.node_id, s.quantity, s.stage) for s in line.sources] == [(net.node("BRANCH"), 2, ShipmentStage.RELEASED)]
    assert any(e.event == "quote kept" for e in view.timeline)


async def test_stock_moved_after_the_quote_replans_under_the_chosen_method_and_records_why(
    new_worker: NewWorker, uow_factory: UowFactory, record_history: RecordHistory
) -> None:
    net = await branch_and_dc(uow_factory)
    order = make_order(net, {"DRILL": 2})
    quote = await quote_for(uow_factory, order, OptionKind.SHIP_STANDARD)
    assert quote.node_ids == [net.node("BRANCH")]
    # Between the quote and the order, the branch sells its last drills over the counter.
    await set_on_hand(uow_factory, net.node("BRANCH"), net.sku("DRILL"), 0)
    async with new_worker() as worker:
        handle = await start(worker, order, quote=quote)
        placed = await placement(handle)
        assert (placed.accepted, placed.reserved) == (True, True)
        assert placed.quote is not None
        assert not placed.quote.kept
        assert "could not be kept" in placed.quote.detail
        assert net.node("BRANCH") in placed.quote.detail
        view = await status(handle)
        await report(handle, live(view)[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED
    await record_history(handle, "quote_not_kept")
    # Still the customer's method (standard delivery, one shipment), from the node that has the stock.
    [shipment] = live(view)
    assert (shipment.method, shipment.service_level) == (Method.DELIVERY, ServiceLevel.STANDARD)
    assert shipment.node_id in {net.node("DALLAS"), net.node("NEWARK")}
    [change] = view.promise_changes
    assert change.before.node_ids == [net.node("BRANCH")]
    assert change.after.node_ids == [shipment.node_id]
    assert "could not be kept" in change.reason
    assert view.original_promise == change.before
    assert view.current_promise is not None
    assert view.current_promise.node_ids == [shipment.node_id]
    assert any(e.event == "quote not kept" for e in view.timeline)
    assert any(e.event == "promise changed" for e in view.timeline)


async def test_placement_of_an_order_held_for_review_is_accepted_but_not_reserved(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator
) -> None:
    net = await branch_and_dc(uow_factory)
    order = make_order(net, {"DRILL": 1}).model_copy(update={"customer_id": "C-RISKY"})
    await simulator[1].patch("/control/behaviour", json={"hold_events": True, "fraud_scores": {"C-RISKY": 0.95}})
    async with new_worker() as worker:
        handle = await start(worker, order)
        # Asked once the hold is in place: on the time-skipping test server, an update left waiting while the
        # workflow goes on hold stops time skipping for the rest of the session (tests 1 and 2 cover the wait).
        await wait_for_stage(handle, OrderStage.ON_HOLD)
        placed = await placement(handle)
    assert (placed.stage, placed.accepted, placed.reserved) == (OrderStage.ON_HOLD, True, False)
    assert placed.reason is not None
    assert placed.reason.startswith("review:")
    assert placed.promise is None


# --- changing one's mind ---------------------------------------------------------------------------------


async def test_changes_are_accepted_in_the_change_window_and_refused_once_released(
    new_worker: NewWorker, uow_factory: UowFactory, temporal_env: WorkflowEnvironment, record_history: RecordHistory
) -> None:
    net = await branch_and_dc(uow_factory, branch=3)
    order = make_order(net, {"DRILL": 2})
    async with new_worker() as worker:
        handle = await start(worker, order, settings=WINDOW)
        placed = await placement(handle)
        assert placed.reserved
        assert placed.changes_until is not None
        [planned] = live(await status(handle))
        assert planned.stage is ShipmentStage.PLANNED  # held back: the window is open

        upgraded = await override(
            handle, OrderWorkflow.change_service_level, ChangeServiceLevel(**CUSTOMER, service_level="expedited")
        )
        assert upgraded.before is not None
        assert upgraded.after is not None
        assert upgraded.price_difference_minor == upgraded.after.price_minor - upgraded.before.price_minor
        assert (await status(handle)).service_level == ServiceLevel.EXPEDITED

        # Collect instead: the delivery becomes one pickup at the Dallas branch.
        moved = await override(
            handle, OrderWorkflow.change_pickup, ChangePickup(**CUSTOMER, node_id=net.node("DALLAS"))
        )
        assert moved.after is not None
        assert moved.after.node_ids == [net.node("DALLAS")]
        view = await status(handle)
        assert view.pickup_node_id == net.node("DALLAS")
        assert [(s.node_id, s.method, s.stage) for s in live(view)] == [
            (net.node("DALLAS"), Method.PICKUP, ShipmentStage.PLANNED)
        ]
        assert view.promise_changes
        assert view.promise_changes[-1].actor == "customer:C-1"
        # Nothing had been released, so nothing was cancelled at a node.

        await temporal_env.sleep(timedelta(hours=1, minutes=1))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        assert released.changes_until is None
        [pickup] = live(released)

        # Released: the service level (and the address) may no longer change; nothing changes on refusal.
        before_events = update_events(await handle.fetch_history())
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await override(
                handle, OrderWorkflow.change_service_level, ChangeServiceLevel(**CUSTOMER, service_level="standard")
            )
        assert "pickup order has no shipping service level" in str(refused.value.cause)

        # The address of a pickup order is where the invoice goes: it may change, and nothing is planned again.
        billing = order.ship_to.model_copy(update={"city": "Round Rock", "postal_code": "78664"})
        changed = await override(handle, OrderWorkflow.change_address, ChangeAddress(**CUSTOMER, ship_to=billing))
        assert changed.message == "billing address now Round Rock, US"
        assert [s.shipment_id for s in live(await status(handle))] == [pickup.shipment_id]

        # A pickup may still move until it is picked: back to the Austin branch, cancelled in Dallas first.
        back = await override(handle, OrderWorkflow.change_pickup, ChangePickup(**CUSTOMER, node_id=net.node("BRANCH")))
        assert back.after is not None
        assert back.after.node_ids == [net.node("BRANCH")]
        view = await until(handle, lambda v: [s.stage for s in live(v)] == [ShipmentStage.RELEASED])
        [again] = live(view)
        assert again.node_id == net.node("BRANCH")
        assert [s.stage for s in view.shipments if s.shipment_id == pickup.shipment_id] == [ShipmentStage.CANCELLED]

        # Picked: too late to move it, and the refusal leaves no trace.
        await report(handle, again.shipment_id, ShipmentStage.ACKNOWLEDGED, ShipmentStage.PICKED)
        await wait_for_stage(handle, OrderStage.IN_FULFILMENT)
        before_events = update_events(await handle.fetch_history())
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await override(handle, OrderWorkflow.change_pickup, ChangePickup(**CUSTOMER, node_id=net.node("DALLAS")))
        assert "already under way" in str(refused.value.cause)
        assert update_events(await handle.fetch_history()) == before_events
        assert [s.node_id for s in live(await status(handle))] == [net.node("BRANCH")]
        await report(handle, again.shipment_id, ShipmentStage.PACKED, ShipmentStage.READY_FOR_PICKUP)
        await report(handle, again.shipment_id, ShipmentStage.COLLECTED)
        final = await handle.result()
    assert final.stage is OrderStage.COMPLETED
    await record_history(handle, "changed_mind_in_window")


async def test_a_delivery_changes_until_released_then_refuses_with_nothing_changed(
    new_worker: NewWorker, uow_factory: UowFactory, temporal_env: WorkflowEnvironment, simulator: Simulator
) -> None:
    net = await branch_and_dc(uow_factory)
    order = make_order(net, {"DRILL": 1})
    async with new_worker() as worker:
        handle = await start(worker, order, settings=WINDOW)
        await placement(handle)
        await temporal_env.sleep(timedelta(hours=2))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        before_events = update_events(await handle.fetch_history())
        refusals = {
            "service level": (
                OrderWorkflow.change_service_level,
                ChangeServiceLevel(**CUSTOMER, service_level="expedited"),
                "already released",
            ),
            "branch": (
                OrderWorkflow.change_pickup,
                ChangePickup(**CUSTOMER, node_id=net.node("DALLAS")),
                "already under way",
            ),
            # Customer service may still cancel at the node; the customer's own change of mind ends here.
            "lines": (OrderWorkflow.cancel, CancelOrder(**CUSTOMER, line_ids=["1"]), "needs customer service"),
            "order": (OrderWorkflow.cancel, CancelOrder(**CUSTOMER), "needs customer service"),
        }
        for name, (update_method, request, reason) in refusals.items():
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await override(handle, update_method, request)
            assert reason in str(refused.value.cause), name
        assert update_events(await handle.fetch_history()) == before_events
        after = await status(handle)
        assert (after.service_level, after.pickup_node_id) == (ServiceLevel.STANDARD, None)
        assert [(s.shipment_id, s.stage) for s in live(after)] == [(s.shipment_id, s.stage) for s in live(released)]
        assert await cancellations(simulator, order.order_id) == []
        await report(handle, released.shipments[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED


async def test_cancelling_a_line_in_the_change_window_holds_back_nothing_else(
    new_worker: NewWorker, uow_factory: UowFactory, temporal_env: WorkflowEnvironment
) -> None:
    net = await build_network(uow_factory, [NodeSpec("BRANCH", AUSTIN)], {("BRANCH", "DRILL"): 5, ("BRANCH", "SAW"): 5})
    order = make_order(net, {"DRILL": 1, "SAW": 1})
    async with new_worker() as worker:
        handle = await start(worker, order, settings=WINDOW)
        await placement(handle)
        result = await override(handle, OrderWorkflow.cancel, CancelOrder(**CUSTOMER, line_ids=["2"]))
        assert "1 unit(s) cancelled" in result.message
        view = await status(handle)
        assert view.cancelled == {"2": 1}
        assert [(a.line_id, a.quantity) for s in live(view) for a in s.allocations] == [("1", 1)]
        await temporal_env.sleep(timedelta(hours=2))
        released = await wait_for_stage(handle, OrderStage.RELEASED)
        await report(handle, live(released)[0].shipment_id, *ALL_THE_WAY)
        assert (await handle.result()).stage is OrderStage.COMPLETED
