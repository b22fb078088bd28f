"""A stand-in for the warehouses and carriers an orchestrator talks to.

It speaks the provider side of ``integrations.wms``: it acknowledges a release (once per idempotency key,
however often the key is sent), then plays the shipment forward (picked, packed, shipped, delivered),
posting each step back as a signed webhook and retrying until the receiver accepts it. It counts every
request and every effective release, so tests can prove "exactly once in effect".
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated

import httpx
import structlog
from fastapi import FastAPI, Header, HTTPException, Response, status
from pydantic import BaseModel, Field

from domain.lifecycle import ShipmentStage
from integrations.webhooks import SIGNATURE_HEADER, ShipmentWebhookEvent, sign
from integrations.wms import ReleaseAck, ReleaseRequest

log = structlog.get_logger(__name__)

PLAYBACK = (ShipmentStage.PICKED, ShipmentStage.PACKED, ShipmentStage.SHIPPED, ShipmentStage.DELIVERED)


class Behaviour(BaseModel):
    """What the simulated partners do; changed at run time through ``PUT /control/behaviour``."""

    step_delay_s: float = Field(default=2.0, ge=0, le=3600)
    # Nodes whose WMS refuses every release (a business rejection: 409).
    reject_nodes: list[str] = Field(default_factory=list)
    # While true, releases are acknowledged but no event is sent (an order stays "in flight").
    hold_events: bool = False


class BehaviourChange(BaseModel):
    """A partial ``Behaviour``: what ``PATCH /control/behaviour`` changes, leaving the rest as it is."""

    step_delay_s: float | None = Field(default=None, ge=0, le=3600)
    reject_nodes: list[str] | None = None
    hold_events: bool | None = None


@dataclass
class ReleaseRecord:
    key: str
    request: ReleaseRequest
    ack: ReleaseAck
    attempts: int = 1
    events_delivered: list[str] = field(default_factory=list)


class SimulatorStats(BaseModel):
    requests: int
    effective_releases: int
    releases: list[dict[str, object]]


@dataclass
class SimulatorConfig:
    webhook_url: str
    webhook_secret: str
    behaviour: Behaviour


def create_simulator_app(config: SimulatorConfig) -> FastAPI:
    releases: dict[str, ReleaseRecord] = {}
    counters = {"requests": 0}
    tasks: set[asyncio.Task[None]] = set()
    resume = asyncio.Event()
    if not config.behaviour.hold_events:
        resume.set()
    lock = asyncio.Lock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=10.0) as http:
            app.state.http = http
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="Fulfilment network simulator", lifespan=lifespan)

    async def deliver(event: ShipmentWebhookEvent) -> None:
        body = event.model_dump_json().encode()
        delay = 0.25
        while True:
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(config.webhook_secret, int(time.time()), body),
            }
            try:
                response = await app.state.http.post(config.webhook_url, content=body, headers=headers)
                if response.status_code < 300:
                    return
                log.warning("webhook refused, retrying", status=response.status_code, event_id=event.event_id)
            except httpx.HTTPError as err:
                log.warning("webhook not delivered, retrying", error=type(err).__name__, event_id=event.event_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def play(record: ReleaseRecord) -> None:
        for stage in PLAYBACK:
            await asyncio.sleep(config.behaviour.step_delay_s)
            await resume.wait()
            event = ShipmentWebhookEvent(
                event_id=f"{record.ack.release_id}:{stage}",
                order_id=record.request.order_id,
                shipment_id=record.request.shipment_id,
                stage=stage,
                occurred_at=datetime.now(UTC),
                tracking_number=f"SIM{record.ack.release_id[-10:].upper()}" if stage is ShipmentStage.SHIPPED else None,
            )
            await deliver(event)
            record.events_delivered.append(stage)

    @app.post("/wms/releases", response_model=ReleaseAck, status_code=status.HTTP_201_CREATED)
    async def release(
        request: ReleaseRequest,
        response: Response,
        idempotency_key: Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)],
    ) -> ReleaseAck:
        async with lock:
            counters["requests"] += 1
            existing = releases.get(idempotency_key)
            if existing is not None:
                if existing.request != request:
                    raise HTTPException(422, "idempotency key reused with a different release")
                existing.attempts += 1
                response.status_code = status.HTTP_200_OK
                return existing.ack.model_copy(update={"replayed": True})
            if request.node_id in config.behaviour.reject_nodes:
                raise HTTPException(409, f"node {request.node_id} cannot take this shipment")
            release_id = "REL-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]
            record = ReleaseRecord(
                key=idempotency_key,
                request=request,
                ack=ReleaseAck(release_id=release_id, shipment_id=request.shipment_id, accepted_at=datetime.now(UTC)),
            )
            releases[idempotency_key] = record
        task = asyncio.create_task(play(record))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        log.info("release accepted", shipment_id=request.shipment_id, release_id=release_id)
        return record.ack

    @app.get("/wms/releases", response_model=SimulatorStats)
    async def stats() -> SimulatorStats:
        return SimulatorStats(
            requests=counters["requests"],
            effective_releases=len(releases),
            releases=[
                {
                    "idempotency_key": r.key,
                    "order_id": r.request.order_id,
                    "shipment_id": r.request.shipment_id,
                    "node_id": r.request.node_id,
                    "attempts": r.attempts,
                    "events_delivered": r.events_delivered,
                }
                for r in releases.values()
            ],
        )

    @app.get("/control/behaviour", response_model=Behaviour)
    async def get_behaviour() -> Behaviour:
        return config.behaviour

    def apply(behaviour: Behaviour) -> Behaviour:
        config.behaviour = behaviour
        if behaviour.hold_events:
            resume.clear()
        else:
            resume.set()
        return behaviour

    @app.put("/control/behaviour", response_model=Behaviour)
    async def replace_behaviour(behaviour: Behaviour) -> Behaviour:
        """Replace the whole behaviour: fields left out return to their defaults."""
        return apply(behaviour)

    @app.patch("/control/behaviour", response_model=Behaviour)
    async def change_behaviour(change: BehaviourChange) -> Behaviour:
        """Change only the fields given."""
        return apply(config.behaviour.model_copy(update=change.model_dump(exclude_unset=True)))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
