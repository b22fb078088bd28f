"""A stand-in for the partners an orchestrator talks to, as one app (one port in dev).

- Warehouses and carriers (``integrations.simulator.warehouse``): the provider side of ``integrations.wms``.
  A release is acknowledged once per idempotency key and played forward as signed webhooks, retried until the
  receiver accepts them; a cancellation stops it unless it has left; follow-ups are recorded.
- Payment gateway and fraud screen (``integrations.simulator.payments``): ``integrations.payments`` and
  ``integrations.fraud``.
- Notifications (``integrations.simulator.notifications``): ``integrations.notify``.

Every request is counted and every effect recorded (``GET`` endpoints beside each ``POST``), so tests can prove
"exactly once in effect". What the partners do (reject, decline, go silent, lose a parcel ...) is the
``Behaviour``, read at ``/control/behaviour`` and changed there at run time. Injected faults (outages, 5xx,
timeouts, latency, duplicate and late webhooks: ``integrations.simulator.faults``) are drawn from its seed, so a
run repeats exactly; ``GET /control/stats`` counts them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI

from integrations.simulator import subscriber
from integrations.simulator.config import Behaviour, BehaviourChange, SimulatorConfig
from integrations.simulator.faults import FaultInjector
from integrations.simulator.notifications import Outbox
from integrations.simulator.payments import Gateway
from integrations.simulator.warehouse import (
    DELIVERY_PLAYBACK,
    PICKUP_PLAYBACK,
    ReleaseRecord,
    SimulatorStats,
    Warehouse,
)
from integrations.webhooks import SIGNATURE_HEADER, ShipmentWebhookEvent, sign

__all__ = [
    "DELIVERY_PLAYBACK",
    "PICKUP_PLAYBACK",
    "Behaviour",
    "BehaviourChange",
    "ReleaseRecord",
    "SimulatorConfig",
    "SimulatorStats",
    "create_simulator_app",
]

log = structlog.get_logger(__name__)


def create_simulator_app(config: SimulatorConfig) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0) as http:
            app.state.http = http
            yield
            await warehouse.stop()

    app = FastAPI(title="Partner simulator (warehouses, carriers, payments, fraud, notifications)", lifespan=lifespan)

    async def deliver(event: ShipmentWebhookEvent) -> str | None:
        """Post a signed event to the orchestrator, retrying (with backoff) until it is accepted; return the
        ``outcome`` the receiver answered (``applied``, ``duplicate`` ...) when it names one."""
        body = event.model_dump_json(exclude_defaults=True).encode()
        delay = 0.25
        while True:
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(config.webhook_secret, int(time.time()), body),
            }
            try:
                response = await app.state.http.post(config.webhook_url, content=body, headers=headers)
                if response.status_code < 300:
                    return _outcome(response)
                log.warning("webhook refused, retrying", status=response.status_code, event_id=event.event_id)
            except httpx.HTTPError as err:
                log.warning("webhook not delivered, retrying", error=type(err).__name__, event_id=event.event_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    faults = FaultInjector(config)
    warehouse = Warehouse(config, deliver, faults)
    gateway = Gateway(config, faults)
    outbox = Outbox(faults)
    app.state.warehouse, app.state.gateway, app.state.outbox = warehouse, gateway, outbox
    app.include_router(warehouse.router(), tags=["warehouses and carriers"])
    app.include_router(gateway.router(), tags=["payments and fraud"])
    app.include_router(outbox.router(), tags=["notifications"])
    app.include_router(faults.router(), tags=["control"])
    app.include_router(subscriber.router(), tags=["order management (status subscriber)"])

    @app.get("/control/behaviour", response_model=Behaviour, tags=["control"])
    async def get_behaviour() -> Behaviour:
        return config.behaviour

    def apply(behaviour: Behaviour) -> Behaviour:
        config.behaviour = behaviour
        warehouse.held(behaviour.hold_events)
        return behaviour

    @app.put("/control/behaviour", response_model=Behaviour, tags=["control"])
    async def replace_behaviour(behaviour: Behaviour) -> Behaviour:
        """Replace the whole behaviour: fields left out return to their defaults."""
        return apply(behaviour)

    @app.patch("/control/behaviour", response_model=Behaviour, tags=["control"])
    async def change_behaviour(change: BehaviourChange) -> Behaviour:
        """Change only the fields given (a field sent as null is left as it is)."""
        return apply(change.applied_to(config.behaviour))

    @app.get("/health", tags=["control"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _outcome(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    outcome = body.get("outcome") if isinstance(body, dict) else None
    return outcome if isinstance(outcome, str) else None
