"""Recovery: a worker killed mid-order, or an order reset from the CLI, loses nothing and repeats nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from domain.sourcing import Allocation
from infra.db.tables import InventoryJournal, Reservation, ReservationRequest
from infra.db.uow import UowFactory
from infra.services import temporal_cli
from tests.e2e.conftest import Stack, order_body, order_stage
from tests.support import SeededNetwork, eventually

pytestmark = [pytest.mark.db, pytest.mark.e2e]

ORDERS = 4


async def reset_to_first_task(stack: Stack, order_id: str) -> None:
    """What an engineer would type: a new run from the very start, with the old run's signals reapplied."""
    reset = await asyncio.create_subprocess_exec(
        temporal_cli(), "workflow", "reset", "--address", stack.temporal_address,
        "--workflow-id", f"order:{order_id}", "--type", "FirstWorkflowTask", "--reason", "e2e reset test",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(reset.communicate(), timeout=60)
    assert reset.returncode == 0, output.decode()


async def stages(http: httpx.AsyncClient, order_ids: list[str]) -> list[str]:
    return [await order_stage(http, order_id) for order_id in order_ids]


async def test_orders_survive_worker_sigkill(
    http: httpx.AsyncClient,
    simulator_http: httpx.AsyncClient,
    stack: Stack,
    network: SeededNetwork,
    uow_factory: UowFactory,
) -> None:
    await simulator_http.patch("/control/behaviour", json={"step_delay_s": 0.2, "hold_events": True})
    bodies = [order_body(network) for _ in range(ORDERS)]
    order_ids = [b["order_id"] for b in bodies]
    for body in bodies:
        assert (await http.post("/orders", json=body)).status_code == 201

    # First crash: while orders are being validated, planned, reserved and released.
    await asyncio.sleep(0.3)
    stack.processes["worker"].kill()
    stack.start("worker")
    await eventually(lambda: stages(http, order_ids), lambda s: all(x == "released" for x in s), timeout_s=90)

    # Second crash, with the Temporal server restarted too (its state is on disk): while the warehouse's webhooks
    # are arriving (refused and retried while the server is down) and shipments are consumed and captured.
    await simulator_http.patch("/control/behaviour", json={"step_delay_s": 0.2, "hold_events": False})
    await asyncio.sleep(0.5)
    stack.processes["worker"].kill()
    stack.restart_temporal()
    stack.start("worker")
    # Third crash: wherever the orders are by now.
    await asyncio.sleep(0.7)
    stack.processes["worker"].kill()
    stack.start("worker")
    await eventually(lambda: stages(http, order_ids), lambda s: all(x == "completed" for x in s), timeout_s=180)
    for order_id in order_ids:
        money = (await simulator_http.get(f"/payments/orders/{order_id}")).json()
        assert (money["authorized_minor"], money["captured_minor"]) == (12900, 12900), "one capture per shipment"

    stats = (await simulator_http.get("/wms/releases")).json()
    for order_id in order_ids:
        releases = [r for r in stats["releases"] if r["order_id"] == order_id]
        assert len(releases) == 1, f"{order_id}: expected one effective release, got {releases}"
    async with uow_factory() as uow:
        requests = dict(
            (
                await uow.session.execute(
                    select(ReservationRequest.order_id, func.count())
                    .where(ReservationRequest.order_id.in_(order_ids))
                    .group_by(ReservationRequest.order_id)
                )
            ).all()
        )
        lines = (
            await uow.session.execute(
                select(Reservation.order_id, Reservation.state).where(Reservation.order_id.in_(order_ids))
            )
        ).all()
    assert requests == dict.fromkeys(order_ids, 1), "one reservation per order, however often reserve ran"
    assert sorted(lines) == sorted((order_id, "consumed") for order_id in order_ids)


async def test_reset_to_first_task_repeats_no_release_or_reservation(
    http: httpx.AsyncClient,
    simulator_http: httpx.AsyncClient,
    stack: Stack,
    network: SeededNetwork,
    uow_factory: UowFactory,
) -> None:
    await simulator_http.patch("/control/behaviour", json={"step_delay_s": 0.1, "hold_events": False})
    body = order_body(network, quantity=3)
    order_id = body["order_id"]
    assert (await http.post("/orders", json=body)).status_code == 201
    await eventually(lambda: order_stage(http, order_id), lambda s: s == "completed", timeout_s=60)
    first_run = (await http.get(f"/orders/{order_id}")).json()["workflow"]["run_id"]
    # Austin sells out meanwhile: planning afresh would now choose Newark and ship the order twice.
    async with uow_factory() as uow:
        await uow.inventory.reserve(
            f"{order_id}-drain",
            "drain",
            [Allocation(line_id="1", sku=network.sku("DRILL"), node_id=network.node("AUSTIN"), quantity=97)],
        )
        await uow.commit()

    await reset_to_first_task(stack, order_id)

    async def current() -> dict[str, str]:
        order = (await http.get(f"/orders/{order_id}")).json()
        return {"run": order["workflow"]["run_id"], "stage": order["stage"]}

    await eventually(current, lambda o: o["run"] != first_run and o["stage"] == "completed", timeout_s=60)

    stats = (await simulator_http.get("/wms/releases")).json()
    [release] = [r for r in stats["releases"] if r["order_id"] == order_id]
    assert release["node_id"] == network.node("AUSTIN"), "the recorded plan, not a new decision"
    # The old run's warehouse events are reapplied to the new run and held until its (recorded) plan is adopted:
    # the shipment is already delivered, so nothing is released again. Had it been sent, the same key would
    # have made it a repeat (the simulator counts attempts per key).
    assert release["attempts"] == 1, "the delivered shipment was not released a second time"
    async with uow_factory() as uow:
        requests = list(
            await uow.session.scalars(select(ReservationRequest).where(ReservationRequest.order_id == order_id))
        )
        lines = list(await uow.session.scalars(select(Reservation).where(Reservation.order_id == order_id)))
        shipped = list(
            await uow.session.scalars(
                select(InventoryJournal).where(InventoryJournal.source_ref.startswith(f"{order_id}:reserve"))
            )
        )
    assert len(requests) == 1
    assert [(r.quantity, r.state) for r in lines] == [(3, "consumed")]
    assert [(j.on_hand_before - j.on_hand_after) for j in shipped] == [3], "stock left the building once"


async def test_node_refusal_is_planned_around_and_a_reset_repeats_nothing(
    http: httpx.AsyncClient,
    simulator_http: httpx.AsyncClient,
    stack: Stack,
    network: SeededNetwork,
    uow_factory: UowFactory,
) -> None:
    """Austin refuses: its hold is given back and the order ships from Newark. A reset of the finished order
    then replays the recorded plans: the first one's hold stays released (its key cannot be replayed into a
    hold), the second's is recognised, and Newark's shipment, delivered, is not released again."""
    austin, newark = network.node("AUSTIN"), network.node("NEWARK")
    await simulator_http.patch("/control/behaviour", json={"step_delay_s": 0.1, "reject_nodes": [austin]})
    body = order_body(network, quantity=2)
    order_id = body["order_id"]
    assert (await http.post("/orders", json=body)).status_code == 201
    await eventually(lambda: order_stage(http, order_id), lambda s: s == "completed", timeout_s=60)
    first_run = (await _order(http, order_id))["workflow"]["run_id"]

    await reset_to_first_task(stack, order_id)
    order = await eventually(
        lambda: _order(http, order_id),
        lambda o: o["workflow"]["run_id"] != first_run and o["stage"] == "completed",
        timeout_s=60,
    )
    # The new run replays the recorded plans: plan 1's hold was given back when Austin refused, so it moves on.
    assert any(e["event"] == "reservation not held; planning again" for e in order["timeline"])

    async with uow_factory() as uow:
        held = sorted((r.reservation_key, r.state) for r in await uow.inventory.reservations_for(order_id))
    assert held == [(f"{order_id}:reserve:plan-1", "released"), (f"{order_id}:reserve:plan-2", "consumed")]
    stats = (await simulator_http.get("/wms/releases")).json()
    mine = [(r["shipment_id"], r["attempts"]) for r in stats["releases"] if r["order_id"] == order_id]
    assert mine == [(f"{order_id}:p2:{newark}", 1)]


async def _order(http: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    return dict((await http.get(f"/orders/{order_id}")).json())
