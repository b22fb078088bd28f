"""Faults the simulator injects, so tests and demos can script a bad day: outage windows, 5xx answers,
timeouts and latency per partner, and duplicate or out-of-order webhooks.

Every decision is a pure function of the behaviour's ``seed``, a kind and a key, drawn from
``random.Random(f"{seed}:{kind}:{key}")``. A call's key is its idempotency key (the order id for a fraud screen)
and its attempt number, so the same run of calls meets the same faults whatever order they interleave in, and
a retry (the next attempt) draws afresh and can succeed. A webhook's key is its event id.

A fault is answered in front of the partner, as a load balancer would: a call refused by a fault changes
nothing and is not counted in the partner's own ``requests``; ``GET /control/stats`` counts it.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import structlog
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from integrations.simulator.config import Behaviour, Outage, Partner, SimulatorConfig

log = structlog.get_logger(__name__)

FaultKind = Literal["outage", "error", "timeout"]
# How many injected faults ``GET /control/stats`` lists (the most recent).
RECENT_FAULTS = 200


def chance(seed: int, kind: str, key: str) -> float:
    """A number in [0, 1) that depends only on the seed, the kind of decision and its key."""
    return random.Random(f"{seed}:{kind}:{key}").random()


@dataclass(frozen=True)
class Decision:
    """What happens to one call: held ``delay_s``, then answered by the partner (``status`` None) or refused."""

    fault: FaultKind | None = None
    delay_s: float = 0.0
    status: int | None = None
    reason: str = ""


def outage_for(outages: list[Outage], partner: str, node_id: str | None, now: datetime) -> Outage | None:
    return next((o for o in outages if o.covers(partner, node_id, now)), None)


def decide(
    behaviour: Behaviour, partner: Partner, key: str, attempt: int, *, node_id: str | None, now: datetime
) -> Decision:
    """The fault (or none) for the ``attempt``-th call with ``key`` to ``partner``: an outage window first, then
    the partner's error and timeout rates (one draw, so they exclude each other), then its latency."""
    outage = outage_for(behaviour.outages, partner, node_id, now)
    where = f"{partner} {node_id}" if node_id else partner
    if outage is not None:
        if outage.mode == "timeout":
            return Decision("outage", behaviour.fault_timeout_s, 504, f"{where} is down (no answer)")
        return Decision("outage", 0.0, 503, f"{where} is down until {outage.end_at.isoformat()}")
    faults = behaviour.faults.get(partner)
    if faults is None:
        return Decision()
    call = f"{key}:{attempt}"
    latency = faults.latency_s + faults.jitter_s * chance(behaviour.seed, f"{partner}:latency", call)
    draw = chance(behaviour.seed, f"{partner}:fault", call)
    if draw < faults.error_rate:
        return Decision("error", latency, 503, f"{where}: injected error (attempt {attempt})")
    if draw < faults.error_rate + faults.timeout_rate:
        return Decision("timeout", behaviour.fault_timeout_s, 504, f"{where}: injected timeout (attempt {attempt})")
    return Decision(None, latency)


def duplicated(behaviour: Behaviour, event_id: str) -> bool:
    """Whether this webhook is sent a second time, with the same event id, once the first was accepted."""
    return chance(behaviour.seed, "webhook:duplicate", event_id) < behaviour.webhook_duplicate_rate


def held_back(behaviour: Behaviour, event_id: str) -> bool:
    """Whether this webhook is held back ``webhook_reorder_delay_s`` so that later events overtake it."""
    return chance(behaviour.seed, "webhook:reorder", event_id) < behaviour.webhook_reorder_rate


class PartnerFaultStats(BaseModel):
    # Calls that reached the fault gate (every call to the partner, faulted or not).
    calls: int = 0
    outage: int = 0
    error: int = 0
    timeout: int = 0


class WebhookFaultStats(BaseModel):
    # Events the receiver accepted (each counted once, duplicates not included).
    events_accepted: int = 0
    duplicates_sent: int = 0
    # Duplicates the receiver recognised and dropped (it answered ``"outcome": "duplicate"``).
    duplicates_dropped: int = 0
    # Events held back, and those of them accepted after a later event of the same shipment.
    events_held_back: int = 0
    events_out_of_order: int = 0


class FaultRecord(BaseModel):
    at: datetime
    partner: Partner
    fault: FaultKind
    key: str
    attempt: int
    node_id: str | None = None
    status: int


class FaultStats(BaseModel):
    seed: int
    faults_injected: int
    partners: dict[str, PartnerFaultStats]
    webhooks: WebhookFaultStats
    # The most recent injected faults, oldest first.
    recent: list[FaultRecord]


class FaultInjector:
    """Applies the behaviour's faults to incoming calls and outgoing webhooks, and counts what it did."""

    def __init__(self, config: SimulatorConfig) -> None:
        self._config = config
        self._attempts: Counter[tuple[str, str]] = Counter()
        self._faulted: Counter[tuple[str, str]] = Counter()
        self.partners: dict[str, PartnerFaultStats] = {}
        self.webhooks = WebhookFaultStats()
        self.recent: deque[FaultRecord] = deque(maxlen=RECENT_FAULTS)

    @property
    def behaviour(self) -> Behaviour:
        return self._config.behaviour

    async def gate(self, partner: Partner, key: str, *, node_id: str | None = None) -> None:
        """Let the call through (after its latency), or raise the injected fault as an HTTP error."""
        self._attempts[(partner, key)] += 1
        attempt = self._attempts[(partner, key)]
        now = await self._config.now()
        decision = decide(self.behaviour, partner, key, attempt, node_id=node_id, now=now)
        stats = self.partners.setdefault(partner, PartnerFaultStats())
        stats.calls += 1
        if decision.fault is not None and decision.status is not None:
            setattr(stats, decision.fault, getattr(stats, decision.fault) + 1)
            self._faulted[(partner, key)] += 1
            self.recent.append(
                FaultRecord(
                    at=now,
                    partner=partner,
                    fault=decision.fault,
                    key=key,
                    attempt=attempt,
                    node_id=node_id,
                    status=decision.status,
                )
            )
            log.info("fault injected", partner=partner, fault=decision.fault, key=key, attempt=attempt)
        if decision.delay_s > 0:
            await asyncio.sleep(decision.delay_s)
        if decision.status is not None:
            raise HTTPException(decision.status, decision.reason)

    def faulted_attempts(self, partner: Partner, key: str) -> int:
        """Calls with this key that a fault refused."""
        return self._faulted[(partner, key)]

    def stats(self) -> FaultStats:
        partners = {name: s.model_copy() for name, s in sorted(self.partners.items())}
        injected = sum(s.outage + s.error + s.timeout for s in partners.values())
        return FaultStats(
            seed=self.behaviour.seed,
            faults_injected=injected,
            partners=partners,
            webhooks=self.webhooks.model_copy(),
            recent=list(self.recent),
        )

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/control/stats", response_model=FaultStats)
        async def fault_stats() -> FaultStats:
            """Faults injected per partner, webhooks duplicated and reordered, the latest faults."""
            return self.stats()

        return router
