"""Issue 7's fault scenario at full length: a 3PL outage of 10 minutes, on the time-skipping server with real
activities, real Postgres and the simulator as warehouse, carrier and payment gateway.

The simulator's clock is the test server's (this module overrides ``simulator_clock``), so the outage window is
10 minutes of virtual time; the release activity's retry backoff (``PARTNER_RETRY``: 1, 2, 4 ... s, then every
5 minutes) is skipped while the test waits in ``temporal_env.sleep``. Ten attempts are refused, the eleventh
(about 13.5 virtual minutes after the order) gets through. The real-time version of this scenario (20 s, on the
dev server) is in ``tests/e2e/test_fault_scenarios.py``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.lifecycle import OrderStage, ShipmentStage
from infra.db.uow import UowFactory
from integrations.simulator.config import Clock
from tests.support import NEWARK, make_order
from tests.workflows.conftest import NewWorker
from tests.workflows.test_lifecycle import PRICE, Handle, ledger, priced, sim, start, two_dcs
from tests.workflows.test_order_workflow import ALL_THE_WAY, Simulator, report, wait_for_stage
from workflows.contracts import OrderStatusView

pytestmark = pytest.mark.db

OUTAGE = timedelta(minutes=10)
# Enough virtual time for the backoff to reach past the outage: attempts at 0, 1, 3, 7 ... 511 s are refused,
# the one at 811 s (511 + the 5-minute cap) is the first after the window.
PAST_THE_OUTAGE = timedelta(minutes=15)


@pytest.fixture
def simulator_clock(temporal_env: WorkflowEnvironment) -> Clock:
    """The simulator's now is the test server's: the outage window is in virtual time."""
    return temporal_env.get_current_time


async def releases_of(simulator: Simulator, order_ids: list[str]) -> dict[str, dict[str, Any]]:
    releases = (await sim(simulator, "/wms/releases"))["releases"]
    return {str(r["order_id"]): r for r in releases if r["order_id"] in order_ids}


def stamped(view: OrderStatusView, event: str) -> datetime:
    """When the workflow recorded ``event``: virtual time, from ``workflow.now()``."""
    return next(e.at for e in view.timeline if e.event == event)


async def test_a_ten_minute_3pl_outage_delays_releases_and_loses_nothing(
    new_worker: NewWorker, uow_factory: UowFactory, simulator: Simulator, temporal_env: WorkflowEnvironment
) -> None:
    net = await two_dcs(uow_factory)
    austin = net.node("AUSTIN")
    outage = {
        "partner": "wms",
        "node_id": austin,
        "start_at": (await temporal_env.get_current_time()).isoformat(),
        "duration_s": OUTAGE.total_seconds(),
    }
    changed = await simulator[1].patch("/control/behaviour", json={"outages": [outage]})
    assert changed.status_code == 200, changed.text
    down = [priced(make_order(net, {"DRILL": 1})) for _ in range(3)]
    up = priced(make_order(net, {"DRILL": 1}, destination=NEWARK))
    down_ids = [o.order_id for o in down]
    wall = time.monotonic()

    async with new_worker() as worker:
        handles: list[Handle] = [await start(worker, o) for o in down]
        other = await start(worker, up)
        # The other node's WMS is up: its order is released at once. The down node's orders wait, reserved.
        (other_shipment,) = (await wait_for_stage(other, OrderStage.RELEASED)).shipments
        assert other_shipment.node_id == net.node("NEWARK")
        for handle in handles:
            await wait_for_stage(handle, OrderStage.RESERVED)
        assert await releases_of(simulator, down_ids) == {}

        await temporal_env.sleep(PAST_THE_OUTAGE)
        everyone = [*handles, other]
        released = await asyncio.gather(*(wait_for_stage(h, OrderStage.RELEASED) for h in everyone))
        for handle, view in zip(everyone, released, strict=True):
            (shipment,) = view.shipments
            await report(handle, shipment.shipment_id, *ALL_THE_WAY)
        # Waited for by query, then read one by one: concurrent ``result()`` calls each unlock time skipping, and
        # the test server then skips to the ten-year execution timeout of the workflows still running.
        await asyncio.gather(*(wait_for_stage(h, OrderStage.COMPLETED) for h in everyone))
        finals = [await h.result() for h in everyone]
    took = time.monotonic() - wall

    # Every order completed, each shipment delivered once, each order captured once in full.
    for order, final in zip([*down, up], finals, strict=True):
        assert final.stage is OrderStage.COMPLETED, order.order_id
        assert [s.stage for s in final.shipments] == [ShipmentStage.DELIVERED]
        applied = Counter(e.event for e in final.timeline if e.event.startswith("shipment "))
        assert all(n == 1 for n in applied.values()), f"{order.order_id}: a stage applied twice: {applied}"
        money = await ledger(simulator, order.order_id)
        assert (money["authorized_minor"], money["captured_minor"]) == (PRICE, PRICE), "captured once"

    # One effective release per shipment; one call reached the WMS, the outage refused the rest.
    releases = await releases_of(simulator, [*down_ids, up.order_id])
    assert sorted(releases) == sorted([*down_ids, up.order_id]), "one effective release per shipment"
    assert {releases[o]["node_id"] for o in down_ids} == {austin}
    assert all(r["attempts"] == 1 for r in releases.values()), "one call reached the WMS per shipment"
    refused = [int(releases[o]["faulted_attempts"]) for o in down_ids]
    assert all(n >= 9 for n in refused), refused
    assert releases[up.order_id]["faulted_attempts"] == 0, "the other node was not affected"
    stats = await sim(simulator, "/control/stats")
    assert stats["partners"]["wms"]["outage"] == sum(refused)

    # Each release was accepted only after the 10 virtual minutes.
    waited = [stamped(f, "order released") - stamped(f, "order received") for f in finals[:-1]]
    assert all(w >= OUTAGE for w in waited), waited
    assert stamped(finals[-1], "order released") - stamped(finals[-1], "order received") < OUTAGE
    print(
        f"outage {OUTAGE.total_seconds() / 60:.0f} virtual min on {austin}: {len(down)} orders released after "
        f"{min(waited).total_seconds() / 60:.1f}-{max(waited).total_seconds() / 60:.1f} virtual min, "
        f"attempts refused {refused}, {len(finals)} orders completed in {took:.1f}s wall"
    )
