"""The simulated warehouses and their carriers: the provider side of ``integrations.wms``.

A release is acknowledged once per idempotency key, however often the key is sent, then played forward as
signed webhooks: acknowledged, picked, packed, shipped, in transit, delivered (a pickup: acknowledged,
picked, packed, ready for pickup, and collected only when the behaviour or a test says so). The behaviour
turns a node's playback into an issue (short pick, delay, loss) or into silence. A cancellation stops the
playback, unless the shipment has already left. Every request is counted, and every effect recorded, so
tests can prove "exactly once in effect". Injected faults (``integrations.simulator.faults``) stand in front:
an outage or an injected 5xx refuses a call before it is counted here, and webhooks may be sent twice or late.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Header, HTTPException, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from domain.exceptions import ShipmentIssue
from domain.lifecycle import ShipmentStage, has_left_node
from integrations.simulator.config import SimulatorConfig
from integrations.simulator.faults import FaultInjector, duplicated, held_back
from integrations.webhooks import ShipmentWebhookEvent
from integrations.wms import (
    CancelAck,
    CancelRequest,
    FollowUpAck,
    FollowUpRequest,
    ReleaseAck,
    ReleaseRequest,
    ShipmentStatus,
    TrackingRegistered,
    TrackingRegistration,
    TrackingStatus,
)
from workflows.contracts import ShortLine

log = structlog.get_logger(__name__)

# Posts one event until the receiver accepts it; returns the receiver's ``outcome`` when it names one.
Deliver = Callable[[ShipmentWebhookEvent], Awaitable[str | None]]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=200)]

DELIVERY_PLAYBACK = (
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.SHIPPED,
    ShipmentStage.IN_TRANSIT,
    ShipmentStage.DELIVERED,
)
PICKUP_PLAYBACK = (
    ShipmentStage.ACKNOWLEDGED,
    ShipmentStage.PICKED,
    ShipmentStage.PACKED,
    ShipmentStage.READY_FOR_PICKUP,
    ShipmentStage.COLLECTED,
)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def release_id_for(idempotency_key: str) -> str:
    """The provider's reference for a release: stable per key, so a test can tell its event ids in advance."""
    return "REL-" + _digest(idempotency_key)


def tracking_number_for(release_id: str) -> str:
    """The carrier's tracking number for the parcel of a release (issued when it ships)."""
    return f"SIM{release_id[-10:].upper()}"


@dataclass
class ReleaseRecord:
    key: str
    request: ReleaseRequest
    ack: ReleaseAck
    attempts: int = 1
    # How far the shipment has got at the provider: set when a step happens, before its webhook is sent.
    stage: ShipmentStage | None = None
    stage_at: datetime | None = None
    # Stages and issues whose webhook the receiver accepted, in order.
    events_delivered: list[str] = field(default_factory=list)
    cancelled: bool = False
    task: asyncio.Task[None] | None = None
    # Events created so far (each gets the next number), and the latest number accepted: an event accepted
    # after a later one (held back by a fault) arrived out of order.
    events_created: int = 0
    latest_accepted: int = -1

    @property
    def pickup(self) -> bool:
        return self.request.method == "pickup"


@dataclass
class CancellationRecord:
    key: str
    shipment_id: str
    request: CancelRequest
    ack: CancelAck
    attempts: int = 1


@dataclass
class FollowUpRecord:
    key: str
    request: FollowUpRequest
    ack: FollowUpAck
    attempts: int = 1


@dataclass
class TrackingRecord:
    key: str
    request: TrackingRegistration
    ack: TrackingRegistered
    attempts: int = 1


class SimulatorStats(BaseModel):
    requests: int
    effective_releases: int
    releases: list[dict[str, object]]


class CancellationStats(BaseModel):
    requests: int
    # Shipments actually stopped (a repeat, or a refusal because it had left, stops nothing).
    effective_cancellations: int
    cancellations: list[dict[str, object]]


class FollowUpStats(BaseModel):
    requests: int
    effective_follow_ups: int
    follow_ups: list[dict[str, object]]


class TrackingStats(BaseModel):
    requests: int
    # Parcels registered (a repeat of a key registers nothing new).
    effective_registrations: int
    registrations: list[dict[str, object]]


class Warehouse:
    def __init__(self, config: SimulatorConfig, deliver: Deliver, faults: FaultInjector) -> None:
        self._config = config
        self._deliver = deliver
        self._faults = faults
        self.releases: dict[str, ReleaseRecord] = {}
        self._by_shipment: dict[str, ReleaseRecord] = {}
        self.cancellations: dict[str, CancellationRecord] = {}
        # Shipments cancelled before any release of them arrived: a late release is refused.
        self._cancelled_unknown: set[str] = set()
        self.follow_ups: dict[str, FollowUpRecord] = {}
        self.trackings: dict[str, TrackingRecord] = {}
        self.counters = {"releases": 0, "cancellations": 0, "follow_ups": 0, "trackings": 0, "status_calls": 0}
        self.tasks: set[asyncio.Task[None]] = set()
        self.resume = asyncio.Event()
        self.held(config.behaviour.hold_events)

    def held(self, hold: bool) -> None:
        if hold:
            self.resume.clear()
        else:
            self.resume.set()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _spawn(self, coroutine: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # --- playback ----------------------------------------------------------------------------------------------

    async def _step(self) -> None:
        await asyncio.sleep(self._config.behaviour.step_delay_s)
        await self.resume.wait()

    async def _report_stage(self, record: ReleaseRecord, stage: ShipmentStage) -> None:
        record.stage = stage
        record.stage_at = datetime.now(UTC)
        shipped = stage is ShipmentStage.SHIPPED
        event = ShipmentWebhookEvent(
            event_id=f"{record.ack.release_id}:{stage}",
            order_id=record.request.order_id,
            shipment_id=record.request.shipment_id,
            stage=stage,
            occurred_at=datetime.now(UTC),
            tracking_number=self.tracking_number(record) if shipped else None,
        )
        await self._send(record, event, stage, may_hold_back=True)

    async def _report_issue(
        self,
        record: ReleaseRecord,
        issue: ShipmentIssue,
        detail: str,
        *,
        short_lines: list[ShortLine] | None = None,
        new_estimate: date | None = None,
    ) -> None:
        event = ShipmentWebhookEvent(
            event_id=f"{record.ack.release_id}:{issue}",
            order_id=record.request.order_id,
            shipment_id=record.request.shipment_id,
            issue=issue,
            occurred_at=datetime.now(UTC),
            short_lines=short_lines or [],
            new_estimate=new_estimate,
            detail=detail,
        )
        await self._send(record, event, issue, may_hold_back=False)

    async def _send(
        self, record: ReleaseRecord, event: ShipmentWebhookEvent, label: str, *, may_hold_back: bool
    ) -> None:
        """Deliver an event now or, if the seed holds this stage event back, in the background a little later
        while the playback goes on (so later events overtake it)."""
        number = record.events_created
        record.events_created += 1
        if may_hold_back and held_back(self._config.behaviour, event.event_id):
            self._faults.webhooks.events_held_back += 1
            log.info(
                "webhook held back", event_id=event.event_id, delay_s=self._config.behaviour.webhook_reorder_delay_s
            )
            self._spawn(self._send_later(record, event, label, number))
            return
        await self._send_now(record, event, label, number)

    async def _send_later(self, record: ReleaseRecord, event: ShipmentWebhookEvent, label: str, number: int) -> None:
        await asyncio.sleep(self._config.behaviour.webhook_reorder_delay_s)
        await self.resume.wait()
        await self._send_now(record, event, label, number)

    async def _send_now(self, record: ReleaseRecord, event: ShipmentWebhookEvent, label: str, number: int) -> None:
        await self._deliver(event)
        record.events_delivered.append(label)
        stats = self._faults.webhooks
        stats.events_accepted += 1
        if number < record.latest_accepted:
            stats.events_out_of_order += 1
            log.info("webhook accepted out of order", event_id=event.event_id)
        record.latest_accepted = max(record.latest_accepted, number)
        if duplicated(self._config.behaviour, event.event_id):
            stats.duplicates_sent += 1
            outcome = await self._deliver(event)
            if outcome == "duplicate":
                stats.duplicates_dropped += 1
            log.info("webhook sent twice", event_id=event.event_id, outcome=outcome)

    @staticmethod
    def tracking_number(record: ReleaseRecord) -> str:
        return tracking_number_for(record.ack.release_id)

    async def play(self, record: ReleaseRecord) -> None:
        """Play one release forward; the behaviour is read at each step, so a change applies mid-way."""
        node = record.request.node_id
        for stage in PICKUP_PLAYBACK if record.pickup else DELIVERY_PLAYBACK:
            if stage is ShipmentStage.COLLECTED and not self._config.behaviour.auto_collect:
                return  # waits at the branch: POST /control/shipments/{id}/collect hands it over
            await self._step()
            behaviour = self._config.behaviour
            if node in behaviour.silent_nodes:
                log.info("node silent: playback stops", shipment_id=record.request.shipment_id, node_id=node)
                return
            if stage is ShipmentStage.PICKED and node in behaviour.short_pick_nodes:
                lines = [ShortLine(line_id=line.line_id, short_quantity=line.quantity) for line in record.request.lines]
                await self._report_issue(
                    record, ShipmentIssue.SHORT_PICKED, f"{node} could not pick any line", short_lines=lines
                )
                return
            await self._report_stage(record, stage)
            if stage is ShipmentStage.SHIPPED and node in behaviour.delay_nodes:
                days = behaviour.delay_nodes[node]
                await self._step()
                await self._report_issue(
                    record,
                    ShipmentIssue.DELAYED,
                    f"carrier delay of {days} day(s)",
                    new_estimate=datetime.now(UTC).date() + timedelta(days=days),
                )
            if stage is ShipmentStage.IN_TRANSIT and node in self._config.behaviour.lose_nodes:
                await self._step()
                await self._report_issue(record, ShipmentIssue.LOST, "the carrier lost the parcel in transit")
                return

    async def _collect(self, record: ReleaseRecord) -> None:
        await self._report_stage(record, ShipmentStage.COLLECTED)

    # --- routes ------------------------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        router = APIRouter()
        lock = asyncio.Lock()

        @router.post("/wms/releases", response_model=ReleaseAck, status_code=status.HTTP_201_CREATED)
        async def release(request: ReleaseRequest, response: Response, idempotency_key: IdempotencyKey) -> ReleaseAck:
            await self._faults.gate("wms", idempotency_key, node_id=request.node_id)
            async with lock:
                self.counters["releases"] += 1
                existing = self.releases.get(idempotency_key)
                if existing is not None:
                    if existing.request != request:
                        raise HTTPException(422, "idempotency key reused with a different release")
                    existing.attempts += 1
                    response.status_code = status.HTTP_200_OK
                    return existing.ack.model_copy(update={"replayed": True})
                if request.node_id in self._config.behaviour.reject_nodes:
                    raise HTTPException(409, f"node {request.node_id} cannot take this shipment")
                if request.shipment_id in self._cancelled_unknown:
                    raise HTTPException(409, f"shipment {request.shipment_id} was cancelled before it arrived")
                release_id = release_id_for(idempotency_key)
                record = ReleaseRecord(
                    key=idempotency_key,
                    request=request,
                    ack=ReleaseAck(
                        release_id=release_id, shipment_id=request.shipment_id, accepted_at=datetime.now(UTC)
                    ),
                )
                self.releases[idempotency_key] = record
                self._by_shipment[request.shipment_id] = record
                record.task = self._spawn(self.play(record))
            log.info("release accepted", shipment_id=request.shipment_id, release_id=release_id, method=request.method)
            return record.ack

        @router.get("/wms/releases", response_model=SimulatorStats)
        async def release_stats() -> SimulatorStats:
            return SimulatorStats(
                requests=self.counters["releases"],
                effective_releases=len(self.releases),
                releases=[
                    {
                        "idempotency_key": r.key,
                        "release_id": r.ack.release_id,
                        "order_id": r.request.order_id,
                        "shipment_id": r.request.shipment_id,
                        "node_id": r.request.node_id,
                        "method": r.request.method,
                        "attempts": r.attempts,
                        # Calls with this key that an injected fault refused before they got here.
                        "faulted_attempts": self._faults.faulted_attempts("wms", r.key),
                        "stage": r.stage,
                        "cancelled": r.cancelled,
                        "events_delivered": r.events_delivered,
                    }
                    for r in self.releases.values()
                ],
            )

        @router.get("/wms/shipments/{shipment_id:path}", response_model=ShipmentStatus)
        async def shipment_status(shipment_id: str) -> ShipmentStatus:
            """How far the shipment has got here, whether or not its webhooks arrived; ``released`` while it is
            received but not acknowledged; 404 when no release of it arrived."""
            record = self._by_shipment.get(shipment_id)
            await self._faults.gate(
                "wms", f"status:{shipment_id}", node_id=None if record is None else record.request.node_id
            )
            self.counters["status_calls"] += 1
            if record is None:
                raise HTTPException(404, f"no release of shipment {shipment_id} arrived here")
            stage = record.stage or ShipmentStage.RELEASED
            shipped = has_left_node(stage) and not record.pickup
            return ShipmentStatus(
                shipment_id=shipment_id,
                release_id=record.ack.release_id,
                stage=stage,
                occurred_at=record.stage_at or record.ack.accepted_at,
                tracking_number=self.tracking_number(record) if shipped else None,
            )

        @router.post("/wms/shipments/{shipment_id:path}/cancel", response_model=CancelAck)
        async def cancel(shipment_id: str, request: CancelRequest, idempotency_key: IdempotencyKey) -> JSONResponse:
            """200 ``cancelled: true``; 409 ``cancelled: false`` once the shipment has left (too late)."""
            await self._faults.gate("wms", idempotency_key, node_id=request.node_id)
            async with lock:
                self.counters["cancellations"] += 1
                existing = self.cancellations.get(idempotency_key)
                if existing is not None:
                    if (existing.shipment_id, existing.request) != (shipment_id, request):
                        raise HTTPException(422, "idempotency key reused with a different cancellation")
                    existing.attempts += 1
                    ack = existing.ack.model_copy(update={"replayed": True})
                else:
                    ack = self._cancel(shipment_id)
                    self.cancellations[idempotency_key] = CancellationRecord(idempotency_key, shipment_id, request, ack)
            log.info("cancellation", shipment_id=shipment_id, cancelled=ack.cancelled, stage=ack.stage)
            code = status.HTTP_200_OK if ack.cancelled else status.HTTP_409_CONFLICT
            return JSONResponse(ack.model_dump(mode="json"), status_code=code)

        @router.get("/wms/cancellations", response_model=CancellationStats)
        async def cancellation_stats() -> CancellationStats:
            stopped = {c.shipment_id for c in self.cancellations.values() if c.ack.cancelled}
            return CancellationStats(
                requests=self.counters["cancellations"],
                effective_cancellations=len(stopped),
                cancellations=[
                    {
                        "idempotency_key": c.key,
                        "order_id": c.request.order_id,
                        "shipment_id": c.shipment_id,
                        "reason": c.request.reason,
                        "cancelled": c.ack.cancelled,
                        "stage": c.ack.stage,
                        "attempts": c.attempts,
                    }
                    for c in self.cancellations.values()
                ],
            )

        @router.post("/carrier/follow-ups", response_model=FollowUpAck, status_code=status.HTTP_201_CREATED)
        async def follow_up(
            request: FollowUpRequest, response: Response, idempotency_key: IdempotencyKey
        ) -> FollowUpAck:
            await self._faults.gate("carrier", idempotency_key)
            async with lock:
                self.counters["follow_ups"] += 1
                existing = self.follow_ups.get(idempotency_key)
                if existing is not None:
                    if existing.request != request:
                        raise HTTPException(422, "idempotency key reused with a different follow-up")
                    existing.attempts += 1
                    response.status_code = status.HTTP_200_OK
                    return existing.ack.model_copy(update={"replayed": True})
                ack = FollowUpAck(reference=f"FU-{request.kind.upper()}-{_digest(idempotency_key)[:12]}")
                self.follow_ups[idempotency_key] = FollowUpRecord(idempotency_key, request, ack)
            log.info("follow-up opened", shipment_id=request.shipment_id, kind=request.kind, reference=ack.reference)
            return ack

        @router.get("/carrier/follow-ups", response_model=FollowUpStats)
        async def follow_up_stats() -> FollowUpStats:
            return FollowUpStats(
                requests=self.counters["follow_ups"],
                effective_follow_ups=len(self.follow_ups),
                follow_ups=[
                    {
                        "idempotency_key": f.key,
                        "reference": f.ack.reference,
                        "order_id": f.request.order_id,
                        "shipment_id": f.request.shipment_id,
                        "kind": f.request.kind,
                        "reason": f.request.reason,
                        "tracking_number": f.request.tracking_number,
                        "attempts": f.attempts,
                    }
                    for f in self.follow_ups.values()
                ],
            )

        @router.post("/carrier/trackings", response_model=TrackingRegistered, status_code=status.HTTP_201_CREATED)
        async def register_tracking(
            request: TrackingRegistration, response: Response, idempotency_key: IdempotencyKey
        ) -> TrackingRegistered:
            """Recorded and answered once per key. The simulated carrier pushes every parcel's events anyway (as
            an account-wide webhook would), so a registration changes what is counted, not what is sent."""
            await self._faults.gate("carrier", idempotency_key)
            async with lock:
                self.counters["trackings"] += 1
                existing = self.trackings.get(idempotency_key)
                if existing is not None:
                    if existing.request != request:
                        raise HTTPException(422, "idempotency key reused with a different registration")
                    existing.attempts += 1
                    response.status_code = status.HTTP_200_OK
                    return existing.ack.model_copy(update={"replayed": True})
                known = any(self.tracking_number(r) == request.tracking_number for r in self.releases.values())
                if not known:
                    raise HTTPException(422, f"tracking number {request.tracking_number} is not one of ours")
                ack = TrackingRegistered(reference=f"TRK-{_digest(idempotency_key)[:12]}")
                self.trackings[idempotency_key] = TrackingRecord(idempotency_key, request, ack)
            log.info("tracking registered", shipment_id=request.shipment_id, reference=ack.reference)
            return ack

        @router.get("/carrier/trackings", response_model=TrackingStats)
        async def tracking_stats() -> TrackingStats:
            return TrackingStats(
                requests=self.counters["trackings"],
                effective_registrations=len(self.trackings),
                registrations=[
                    {
                        "idempotency_key": t.key,
                        "reference": t.ack.reference,
                        "order_id": t.request.order_id,
                        "shipment_id": t.request.shipment_id,
                        "tracking_number": t.request.tracking_number,
                        "attempts": t.attempts,
                    }
                    for t in self.trackings.values()
                ],
            )

        @router.get("/carrier/tracking/{tracking_number}", response_model=TrackingStatus)
        async def tracking(tracking_number: str) -> TrackingStatus:
            """The stage the parcel has reached here, whether or not its webhooks were sent; 404 for a tracking
            number the carrier has not been handed (no such parcel, or not shipped yet)."""
            await self._faults.gate("carrier", f"tracking:{tracking_number}")
            record = next((r for r in self.releases.values() if self.tracking_number(r) == tracking_number), None)
            if record is None or record.stage is None or record.stage_at is None or not has_left_node(record.stage):
                raise HTTPException(404, f"no parcel with tracking number {tracking_number}")
            return TrackingStatus(
                tracking_number=tracking_number,
                shipment_id=record.request.shipment_id,
                stage=record.stage,
                occurred_at=record.stage_at,
            )

        @router.post("/control/shipments/{shipment_id:path}/collect", status_code=status.HTTP_202_ACCEPTED)
        async def collect(shipment_id: str) -> dict[str, str]:
            """The customer collects a pickup shipment that is ready (its webhook is sent in the background)."""
            record = self._by_shipment.get(shipment_id)
            if record is None or not record.pickup:
                raise HTTPException(404, f"no pickup shipment {shipment_id}")
            if record.cancelled or record.stage is not ShipmentStage.READY_FOR_PICKUP:
                raise HTTPException(409, f"shipment {shipment_id} is not ready for pickup (stage {record.stage})")
            record.stage = ShipmentStage.COLLECTED
            self._spawn(self._collect(record))
            return {"shipment_id": shipment_id, "stage": ShipmentStage.COLLECTED}

        return router

    def _cancel(self, shipment_id: str) -> CancelAck:
        """Stop the playback of a shipment unless it has left. Runs without awaiting: nothing interleaves."""
        record = self._by_shipment.get(shipment_id)
        if record is None:
            self._cancelled_unknown.add(shipment_id)
            return CancelAck(shipment_id=shipment_id, cancelled=True)
        ack = CancelAck(shipment_id=shipment_id, cancelled=True, stage=record.stage, release_id=record.ack.release_id)
        if record.cancelled:
            return ack
        if record.stage is not None and has_left_node(record.stage):  # shipped or collected: too late
            return ack.model_copy(update={"cancelled": False})
        record.cancelled = True
        if record.task is not None:
            record.task.cancel()
        return ack
