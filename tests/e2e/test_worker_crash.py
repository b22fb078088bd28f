"""Killing the worker mid-order loses nothing and repeats nothing that matters."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import func, select

from infra.db.tables import Reservation, ReservationRequest
from infra.db.uow import UowFactory
from tests.e2e.conftest import Stack, order_body, order_stage
from tests.support import SeededNetwork, eventually

pytestmark = [pytest.mark.db, pytest.mark.e2e]

ORDERS = 4


async def stages(http: httpx.AsyncClient, order_ids: list[str]) -> list[str]:
    return [await order_stage(http, order_id) for order_id in order_ids]


async def test_orders_survive_worker_sigkill(
    http: httpx.AsyncClient,
    simulator_http: httpx.AsyncClient,
    stack: Stack,
    network: SeededNetwork,
    uow_factory: UowFactory,
) -> None:
    await simulator_http.put("/control/behaviour", json={"step_delay_s": 0.2, "hold_events": True})
    bodies = [order_body(network) for _ in range(ORDERS)]
    order_ids = [b["order_id"] for b in bodies]
    for body in bodies:
        assert (await http.post("/orders", json=body)).status_code == 201

    # First crash: while orders are being validated, planned, reserved and released.
    await asyncio.sleep(0.3)
    stack.processes["worker"].kill()
    stack.start("worker")
    await eventually(lambda: stages(http, order_ids), lambda s: all(x == "released" for x in s), timeout_s=90)

    # Second crash: while the warehouse's webhooks are arriving and shipments are being consumed.
    await simulator_http.put("/control/behaviour", json={"step_delay_s": 0.2, "hold_events": False})
    await asyncio.sleep(0.5)
    stack.processes["worker"].kill()
    stack.start("worker")
    await eventually(lambda: stages(http, order_ids), lambda s: all(x == "completed" for x in s), timeout_s=120)

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
