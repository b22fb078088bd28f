"""The simulator's injected faults: the pure decisions (windows, rates, latency, webhook duplicates and holds),
their independence from call order, and the same faults through the simulator's API, in-process."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from domain.lifecycle import ShipmentStage
from integrations.partners import Partners
from integrations.simulator.app import Behaviour, SimulatorConfig, create_simulator_app
from integrations.simulator.config import BehaviourChange, Outage, PartnerFaults
from integrations.simulator.faults import chance, decide, duplicated, held_back
from integrations.webhooks import SIGNATURE_HEADER, ShipmentWebhookEvent, verify
from integrations.wms import ReleaseLine, ReleaseRequest
from tests.support import eventually
from tests.unit.test_simulator_partners import simulator_posting_to

SECRET = "faults-test-secret"
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def outage(partner: str = "wms", node_id: str | None = "3PL-EAST", **extra: Any) -> Outage:
    return Outage.model_validate({"partner": partner, "node_id": node_id, "start_at": T0, "duration_s": 600, **extra})


# --- pure decisions -------------------------------------------------------------------------------------------


def test_no_faults_by_default() -> None:
    behaviour = Behaviour()
    for partner in ("wms", "carrier", "payments", "fraud", "notifications"):
        for attempt in range(1, 50):
            assert decide(behaviour, partner, f"K-{attempt}", attempt, node_id="N", now=T0).fault is None
    assert not any(duplicated(behaviour, f"E-{i}") or held_back(behaviour, f"E-{i}") for i in range(200))


@pytest.mark.parametrize(
    ("partner", "node_id", "now", "expected"),
    [
        ("wms", "3PL-EAST", at(-1), None),  # before the window
        ("wms", "3PL-EAST", at(0), 503),  # the window includes its start
        ("wms", "3PL-EAST", at(599.9), 503),
        ("wms", "3PL-EAST", at(600), None),  # ... and not its end
        ("wms", "3PL-WEST", at(10), None),  # another node's WMS is up
        ("payments", None, at(10), None),  # another partner is up
    ],
)
def test_an_outage_window_covers_one_node_from_its_start_to_its_end(
    partner: str, node_id: str | None, now: datetime, expected: int | None
) -> None:
    behaviour = Behaviour(outages=[outage()])
    decision = decide(behaviour, partner, "K-1", 1, node_id=node_id, now=now)  # type: ignore[arg-type]
    assert decision.status == expected
    assert decision.fault == ("outage" if expected else None)


def test_an_outage_without_a_node_takes_the_whole_partner_down_and_timeout_mode_holds_the_call() -> None:
    behaviour = Behaviour(outages=[outage(node_id=None), outage("fraud", None, mode="timeout")], fault_timeout_s=12)
    assert decide(behaviour, "wms", "K", 1, node_id="ANY", now=at(1)).status == 503
    held = decide(behaviour, "fraud", "O-1", 1, node_id=None, now=at(1))
    assert (held.fault, held.status, held.delay_s) == ("outage", 504, 12)


def test_a_relative_window_is_fixed_when_set_and_kept_by_a_later_patch() -> None:
    before = datetime.now(UTC)
    behaviour = Behaviour.model_validate({"outages": [{"partner": "wms", "start_s": 30, "duration_s": 20}]})
    [window] = behaviour.outages
    assert window.start_at is not None
    assert before + timedelta(seconds=30) <= window.start_at <= datetime.now(UTC) + timedelta(seconds=30)
    assert window.end_at == window.start_at + timedelta(seconds=20)

    patched = BehaviourChange(hold_events=True).applied_to(behaviour)
    assert patched.outages == behaviour.outages
    assert patched.hold_events
    assert isinstance(patched.outages[0], Outage), "nested values stay models after a PATCH"


@pytest.mark.parametrize(
    "body",
    [
        {"partner": "payments", "node_id": "DC-1", "duration_s": 10},  # a node only for a WMS
        {"partner": "erp", "duration_s": 10},
        {"partner": "wms", "duration_s": 0},
        {"partner": "wms", "duration_s": 10, "start_at": "2026-11-22T12:00:00"},  # no offset
    ],
)
def test_invalid_outages_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Outage.model_validate(body)


def test_error_and_timeout_rates_may_not_add_up_to_more_than_every_call() -> None:
    with pytest.raises(ValidationError):
        PartnerFaults(error_rate=0.6, timeout_rate=0.5)


def test_rates_are_drawn_per_key_and_attempt_so_retries_draw_afresh() -> None:
    behaviour = Behaviour(seed=7, faults={"payments": PartnerFaults(error_rate=0.3, timeout_rate=0.1)})
    keys = [f"A-{i}:authorize" for i in range(2000)]
    outcomes = [decide(behaviour, "payments", k, 1, node_id=None, now=T0).fault for k in keys]
    assert 0.26 < outcomes.count("error") / len(keys) < 0.34
    assert 0.07 < outcomes.count("timeout") / len(keys) < 0.13
    # Every failed first attempt succeeds within a few retries (the attempt number is part of the draw).
    for key, first in zip(keys, outcomes, strict=True):
        if first is not None:
            retries = [decide(behaviour, "payments", key, n, node_id=None, now=T0).fault for n in range(2, 12)]
            assert None in retries


def test_decisions_depend_on_the_seed_and_key_not_on_the_order_of_calls() -> None:
    faults = {"wms": PartnerFaults(error_rate=0.5, latency_s=0.1, jitter_s=0.2)}
    calls = [(f"O-{i}:release:p1:DC", attempt) for i in range(40) for attempt in (1, 2, 3)]

    def run(seed: int, order: list[tuple[str, int]]) -> dict[tuple[str, int], tuple[str | None, float]]:
        behaviour = Behaviour(seed=seed, faults=faults)
        return {
            (k, a): (d.fault, d.delay_s)
            for k, a in order
            for d in [decide(behaviour, "wms", k, a, node_id="DC", now=T0)]
        }

    first = run(1, calls)
    assert run(1, list(reversed(calls))) == first, "same seed: same faults, whatever the order"
    assert run(2, calls) != first, "another seed: other faults"
    assert all(0.1 <= delay <= 0.3 for fault, delay in first.values() if fault is None), "latency plus jitter"


def test_webhook_duplicates_and_holds_follow_the_seed_and_rate() -> None:
    behaviour = Behaviour(seed=3, webhook_duplicate_rate=0.3, webhook_reorder_rate=0.2)
    events = [f"REL-{i:04d}:{stage}" for i in range(500) for stage in ("shipped", "delivered")]
    dupes = [e for e in events if duplicated(behaviour, e)]
    holds = [e for e in events if held_back(behaviour, e)]
    assert 0.25 < len(dupes) / len(events) < 0.35
    assert 0.15 < len(holds) / len(events) < 0.25
    assert dupes == [e for e in events if duplicated(behaviour.model_copy(), e)], "reproducible"
    assert set(dupes) != set(holds), "independent draws"
    everything = behaviour.model_copy(update={"webhook_duplicate_rate": 1.0})
    assert all(duplicated(everything, e) for e in events)


def test_chance_is_a_stable_function_of_its_inputs() -> None:
    assert chance(1, "wms:fault", "K:1") == chance(1, "wms:fault", "K:1")
    assert 0 <= chance(1, "wms:fault", "K:1") < 1
    assert chance(1, "wms:fault", "K:1") != chance(1, "wms:fault", "K:2")


# --- through the simulator's API ------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A stand-in API that answers like ours: ``applied`` the first time, ``200 duplicate`` after."""

    events: list[ShipmentWebhookEvent] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/webhooks/wms")
        async def receive(request: Request) -> Response:
            body = await request.body()
            verify(request.headers.get(SIGNATURE_HEADER), body, [SECRET], now=int(time.time()), tolerance_s=60)
            event = ShipmentWebhookEvent.model_validate_json(body)
            if event.event_id in self.seen:
                return JSONResponse({"event_id": event.event_id, "outcome": "duplicate"}, status_code=200)
            self.seen.add(event.event_id)
            self.events.append(event)
            return JSONResponse({"event_id": event.event_id, "outcome": "applied"}, status_code=202)

        return app

    def of(self, shipment_id: str) -> list[str]:
        return [str(e.stage) for e in self.events if e.shipment_id == shipment_id]


@dataclass
class Sim:
    http: httpx.AsyncClient
    partners: Partners
    receiver: Receiver

    async def put(self, **behaviour: Any) -> dict[str, Any]:
        response = await self.http.put("/control/behaviour", json={"step_delay_s": 0, **behaviour})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def stats(self) -> dict[str, Any]:
        return dict((await self.http.get("/control/stats")).json())

    async def release(self, node: str, order_id: str | None = None) -> httpx.Response:
        order_id = order_id or f"F-{uuid.uuid4().hex[:8]}"
        request = ReleaseRequest(
            order_id=order_id,
            shipment_id=f"{order_id}:p1:{node}",
            node_id=node,
            service_level="standard",
            ship_to={"name": "Ada", "line1": "1 Main St", "city": "Austin", "region": "TX",
                     "postal_code": "78701", "country": "US"},
            lines=[ReleaseLine(line_id="1", sku="DRILL", quantity=1)],
        )  # fmt: skip
        return await self.http.post(
            "/wms/releases",
            json=request.model_dump(mode="json"),
            headers={"Idempotency-Key": f"{order_id}:release:p1:{node}"},
        )


@pytest_asyncio.fixture
async def sim() -> AsyncIterator[Sim]:
    receiver = Receiver()
    async with simulator_posting_to(receiver.app(), SECRET) as http:
        yield Sim(http=http, partners=Partners.over(http), receiver=receiver)


async def test_a_node_outage_refuses_its_releases_until_the_window_ends(sim: Sim) -> None:
    behaviour = await sim.put(outages=[{"partner": "wms", "node_id": "3PL-EAST", "start_s": 0, "duration_s": 0.5}])
    assert behaviour["outages"][0]["start_at"], "the relative window was fixed when set"
    refused = await sim.release("3PL-EAST", "F-OUT")
    assert refused.status_code == 503
    assert "3PL-EAST is down" in refused.json()["detail"]
    assert (await sim.release("DC-WEST")).status_code == 201, "the other node is up"
    releases = (await sim.http.get("/wms/releases")).json()
    assert releases["requests"] == 1, "a refused call never reached the WMS"

    await eventually(lambda: sim.release("3PL-EAST", "F-OUT"), lambda r: r.status_code == 201, timeout_s=5)
    [record] = [r for r in (await sim.http.get("/wms/releases")).json()["releases"] if r["order_id"] == "F-OUT"]
    assert record["attempts"] == 1
    assert record["faulted_attempts"] >= 1
    stats = await sim.stats()
    assert stats["partners"]["wms"]["outage"] == record["faulted_attempts"]
    assert stats["faults_injected"] == record["faulted_attempts"]
    assert {f["fault"] for f in stats["recent"]} == {"outage"}


async def test_injected_errors_are_retried_by_the_caller_until_one_goes_through(sim: Sim) -> None:
    await sim.put(seed=11, faults={"notifications": {"error_rate": 0.5}, "fraud": {"error_rate": 1.0}})
    codes = []
    for i in range(20):
        response = await sim.http.post(
            "/notifications",
            json={"order_id": f"F-{i}", "audience": "customer", "kind": "order_confirmed", "message": "hi"},
            headers={"Idempotency-Key": f"F-{i}:note"},
        )
        codes.append(response.status_code)
    assert set(codes) == {201, 503}
    stats = await sim.stats()
    assert stats["partners"]["notifications"] == {"calls": 20, "outage": 0, "error": codes.count(503), "timeout": 0}
    assert (await sim.http.get("/notifications")).json()["requests"] == codes.count(201)

    screen = {"order_id": "F-1", "customer_id": "C-1", "channel": "web", "currency": "USD", "amount_minor": 100,
              "lines": 1, "units": 1, "payment_method": "card", "ship_to_country": "US",
              "ship_to_postal_code": "78701"}  # fmt: skip
    assert (await sim.http.post("/fraud/screen", json=screen)).status_code == 503

    # A timeout: the call is held fault_timeout_s, then answered 504 (a real caller has given up by then).
    await sim.put(faults={"fraud": {"timeout_rate": 1.0}}, fault_timeout_s=0.05)
    started = time.monotonic()
    assert (await sim.http.post("/fraud/screen", json=screen)).status_code == 504
    assert time.monotonic() - started >= 0.05
    await sim.put()
    assert (await sim.http.post("/fraud/screen", json=screen)).status_code == 200, "faults off again"
    partners = (await sim.stats())["partners"]
    assert (partners["fraud"]["error"], partners["fraud"]["timeout"], partners["fraud"]["calls"]) == (1, 1, 3)


async def test_duplicate_and_held_back_webhooks_are_counted(sim: Sim) -> None:
    await sim.put(seed=5, webhook_duplicate_rate=0.5, webhook_reorder_rate=0.3, webhook_reorder_delay_s=0.05)
    order_ids = [f"F-W{i}" for i in range(12)]
    for order_id in order_ids:
        assert (await sim.release("DC-1", order_id)).status_code == 201
    shipments = [f"{o}:p1:DC-1" for o in order_ids]
    await eventually(
        lambda: _now([sim.receiver.of(s) for s in shipments]), lambda es: all(len(e) == 6 for e in es), timeout_s=10
    )
    await eventually(sim.stats, lambda s: s["webhooks"]["events_accepted"] == 72, timeout_s=5)
    stats = (await sim.stats())["webhooks"]
    behaviour = Behaviour(seed=5, webhook_duplicate_rate=0.5, webhook_reorder_rate=0.3)
    releases = (await sim.http.get("/wms/releases")).json()["releases"]
    events = [f"{r['release_id']}:{stage}" for r in releases for stage in r["events_delivered"]]
    assert stats["duplicates_sent"] == sum(duplicated(behaviour, e) for e in events) > 0
    assert stats["duplicates_dropped"] == stats["duplicates_sent"], "the receiver recognised every one"
    assert stats["events_held_back"] == sum(held_back(behaviour, e) for e in events) > 0
    assert stats["events_out_of_order"] > 0
    out_of_order = [r for r in releases if r["events_delivered"] != [str(s) for s in _DELIVERY]]
    assert out_of_order, "some shipment's events arrived out of order"
    assert all(sorted(r["events_delivered"]) == sorted(str(s) for s in _DELIVERY) for r in releases)
    assert len(sim.receiver.events) == 72, "each event accepted once"


_DELIVERY = (
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.SHIPPED,
    ShipmentStage.IN_TRANSIT,
    ShipmentStage.DELIVERED,
)


async def _now(value: list[list[str]]) -> list[list[str]]:
    return value


async def test_an_injected_clock_decides_the_outage_window() -> None:
    """The simulator's own clock, not the wall clock, says whether a call falls in the window: on the
    time-skipping server that is the test server's virtual time (``tests/workflows/test_partner_outage.py``)."""
    virtual = [at(10)]  # inside [T0, T0 + 600 s); the wall clock is days after the window

    async def clock() -> datetime:
        return virtual[0]

    config = SimulatorConfig("http://unused.invalid", SECRET, Behaviour(hold_events=True), clock=clock)
    app = create_simulator_app(config)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as http,
    ):
        sim = Sim(http=http, partners=Partners.over(http), receiver=Receiver())
        await sim.put(hold_events=True, outages=[outage().model_dump(mode="json")])
        assert (await sim.release("3PL-EAST", "F-CLOCK")).status_code == 503, "virtual now is inside the window"
        virtual[0] = at(600)
        assert (await sim.release("3PL-EAST", "F-CLOCK")).status_code == 201, "virtual now is past its end"
        stats = await sim.stats()
    assert stats["partners"]["wms"]["outage"] == 1
    assert [datetime.fromisoformat(f["at"]) for f in stats["recent"]] == [at(10)], "faults stamped in virtual time"
