"""The outbox dispatcher: delivers outgoing events to subscribers, at least once, in order per order.

A loop. Each turn leases a batch of due deliveries (``OutboxRepository.claim_due``: ``FOR UPDATE SKIP LOCKED``,
only the head of each subscription's queue for each order), POSTs them concurrently, signed with the
subscription's secret (``integrations.webhooks.sign``: header ``Orch-Signature: t=<unix>,v1=<hex>``), and writes
each outcome in a transaction of its own:

- a 2xx answer: ``delivered``;
- anything else (another status, a timeout, a refused connection): due again after an exponential backoff
  with a jitter derived from the delivery itself (no randomness: the same delivery and attempt always wait as
  long), or ``dead`` once ``max_attempts`` attempts have failed.

A dispatcher that dies mid-call (a crash, a lost database) leaves the delivery pending with its lease; it is
due again when the lease ends, and the subscriber may then receive the event twice: it dedupes by
``event_id``. Several dispatchers may run side by side; they never deliver one order's events out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
import time
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from infra.db.outbox import ClaimedDelivery
from infra.db.uow import UowFactory
from infra.settings import Settings
from integrations.webhooks import SIGNATURE_HEADER, sign

log = structlog.get_logger(__name__)

EVENT_ID_HEADER = "Orch-Event-Id"
EVENT_TYPE_HEADER = "Orch-Event-Type"


@dataclass(frozen=True)
class DispatchConfig:
    interval_s: float = 1.0
    batch_size: int = 50
    max_attempts: int = 12
    timeout_s: float = 10.0
    backoff_base_s: float = 2.0
    backoff_max_s: float = 3600.0
    # How long a claimed delivery stays out of other dispatchers' reach; longer than any call can take.
    lease_s: float | None = None

    @property
    def lease(self) -> float:
        return self.lease_s if self.lease_s is not None else self.timeout_s + 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchConfig:
        return cls(
            interval_s=settings.dispatch_interval_s,
            batch_size=settings.dispatch_batch_size,
            max_attempts=settings.dispatch_max_attempts,
            timeout_s=settings.dispatch_timeout_s,
            backoff_base_s=settings.dispatch_backoff_base_s,
            backoff_max_s=settings.dispatch_backoff_max_s,
        )


def backoff_s(config: DispatchConfig, subscription_id: str, event_id: str, attempt: int) -> float:
    """Seconds before the attempt after ``attempt`` (1-based): ``base * 2^(attempt-1)`` capped at the maximum,
    then scaled into [50%, 100%] by a hash of the delivery and attempt, so retries of many deliveries failing
    together spread out, and the same delivery always waits the same (reproducible in tests and incidents)."""
    ceiling = min(config.backoff_base_s * 2.0 ** min(attempt - 1, 64), config.backoff_max_s)
    digest = hashlib.sha256(f"{subscription_id}|{event_id}|{attempt}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 2**32
    return ceiling * (0.5 + 0.5 * fraction)


def event_body(payload: dict[str, Any]) -> bytes:
    """The bytes POSTed (and signed): compact JSON with sorted keys, the same on every attempt."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class Dispatcher:
    def __init__(self, uow: UowFactory, http: httpx.AsyncClient, config: DispatchConfig | None = None) -> None:
        self._uow = uow
        self._http = http
        self.config = config or DispatchConfig()

    async def run_once(self) -> int:
        """One batch: claim, deliver, record. Returns how many deliveries were attempted."""
        async with self._uow() as uow:
            claims = await uow.outbox.claim_due(limit=self.config.batch_size, lease_s=self.config.lease)
            await uow.commit()
        if claims:
            await asyncio.gather(*(self._deliver(claim) for claim in claims))
        return len(claims)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Until ``stop`` is set (or the task is cancelled): a full batch goes straight on to the next, otherwise
        the loop sleeps ``interval_s``. A failing database is logged and tried again next turn."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            try:
                attempted = await self.run_once()
            except Exception as err:  # the database restarting, a network blip: the loop survives it
                log.warning("dispatch turn failed", error=f"{type(err).__name__}: {err}")
                attempted = 0
            if attempted < self.config.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.config.interval_s)

    async def _deliver(self, claim: ClaimedDelivery) -> None:
        error = await self._post(claim)
        try:
            async with self._uow() as uow:
                if error is None:
                    current = await uow.outbox.mark_delivered(claim)
                else:
                    dead = claim.attempt >= self.config.max_attempts
                    retry_in = (
                        None if dead else backoff_s(self.config, claim.subscription_id, claim.event_id, claim.attempt)
                    )
                    current = await uow.outbox.mark_failed(claim, error, retry_in_s=retry_in)
                await uow.commit()
        except Exception as err:  # the outcome is lost; the lease runs out and the event goes again
            log.warning("delivery outcome not recorded", event_id=claim.event_id, error=type(err).__name__)
            return
        fields = {"event_id": claim.event_id, "subscription_id": claim.subscription_id, "attempt": claim.attempt}
        if not current:
            log.info("delivery outcome superseded by a later claim", **fields)
        elif error is None:
            log.info("event delivered", **fields)
        elif claim.attempt >= self.config.max_attempts:
            log.warning("event dead-lettered", error=error, **fields)
        else:
            log.info("event delivery failed, will retry", error=error, **fields)

    async def _post(self, claim: ClaimedDelivery) -> str | None:
        """``None`` when the subscriber accepted the event, else why not."""
        body = event_body(claim.payload)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(claim.secret, int(time.time()), body),
            EVENT_ID_HEADER: claim.event_id,
            EVENT_TYPE_HEADER: claim.event_type,
        }
        try:
            # httpx's timeout covers each phase; the outer one bounds the whole call (and any transport).
            async with asyncio.timeout(self.config.timeout_s):
                response = await self._http.post(
                    claim.url, content=body, headers=headers, timeout=self.config.timeout_s
                )
        except TimeoutError:
            return f"timed out after {self.config.timeout_s:g}s"
        except httpx.HTTPError as err:
            return f"{type(err).__name__}: {err}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:300]}"


async def run(settings: Settings) -> None:
    """The ``orchestrator dispatcher`` role: one engine, one HTTP client, the loop until SIGINT or SIGTERM."""
    from infra.db.engine import create_engine, session_factory
    from infra.db.uow import uow_factory

    engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    config = DispatchConfig.from_settings(settings)
    try:
        async with httpx.AsyncClient(follow_redirects=False) as http:
            dispatcher = Dispatcher(uow_factory(session_factory(engine)), http, config)
            log.info("dispatcher started", interval_s=config.interval_s, max_attempts=config.max_attempts)
            await dispatcher.run(stop)
            log.info("dispatcher stopping")
    finally:
        await engine.dispose()
