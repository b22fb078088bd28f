"""What the simulated partners do, and where they send their events: set at start, changed at run time."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal, Self

from pydantic import AwareDatetime, BaseModel, Field, model_validator

MinorUnits = Annotated[int, Field(ge=0)]
Score = Annotated[float, Field(ge=0, le=1)]
Days = Annotated[int, Field(ge=0, le=365)]
Rate = Annotated[float, Field(ge=0, le=1)]
Seconds = Annotated[float, Field(ge=0, le=86_400)]

# The partners a fault can be injected into: ``wms`` is every warehouse, 3PL, store and vendor (releases and
# cancellations, optionally one node), ``carrier`` the follow-ups, then the gateway, the screen, the notifier.
Partner = Literal["wms", "carrier", "payments", "fraud", "notifications"]


class Outage(BaseModel):
    """A window during which a partner (or one node's WMS) answers every call ``503``, or holds it and then
    answers ``504`` (``mode: timeout``). Given by ``start_s`` (seconds after the behaviour is set) or by an
    absolute ``start_at``; a relative window is fixed to ``start_at`` when it is set, so a later ``PATCH`` of
    other fields does not move it. A relative window is fixed by the wall clock: a simulator given another
    ``clock`` (``SimulatorConfig``) needs an absolute ``start_at`` in that clock's time."""

    partner: Partner
    # Only for ``wms``: the node whose WMS is down. None: every node.
    node_id: str | None = Field(default=None, min_length=1, max_length=64)
    start_s: Seconds = 0
    duration_s: float = Field(gt=0, le=30 * 86_400)
    start_at: AwareDatetime | None = None
    mode: Literal["unavailable", "timeout"] = "unavailable"

    @model_validator(mode="after")
    def _anchored(self) -> Self:
        if self.node_id is not None and self.partner != "wms":
            raise ValueError("node_id names a WMS node: only for partner 'wms'")
        if self.start_at is None:
            self.start_at = datetime.now(UTC) + timedelta(seconds=self.start_s)
        return self

    @property
    def end_at(self) -> datetime:
        assert self.start_at is not None  # set by the validator
        return self.start_at + timedelta(seconds=self.duration_s)

    def covers(self, partner: str, node_id: str | None, now: datetime) -> bool:
        if partner != self.partner or (self.node_id is not None and node_id != self.node_id):
            return False
        assert self.start_at is not None
        return self.start_at <= now < self.end_at


class PartnerFaults(BaseModel):
    """Faults drawn per call from the seed, the call's key and its attempt number, so a retry draws afresh."""

    # Fraction of calls answered 503 (after the latency).
    error_rate: Rate = 0
    # Fraction of calls held for ``fault_timeout_s`` and then answered 504 (the caller has given up by then).
    timeout_rate: Rate = 0
    # Added to every call that is answered: ``latency_s`` plus up to ``jitter_s`` more.
    latency_s: float = Field(default=0, ge=0, le=60)
    jitter_s: float = Field(default=0, ge=0, le=60)

    @model_validator(mode="after")
    def _rates_fit(self) -> Self:
        if self.error_rate + self.timeout_rate > 1:
            raise ValueError("error_rate + timeout_rate must be at most 1")
        return self


class Behaviour(BaseModel):
    """What the simulated partners do; replaced through ``PUT /control/behaviour``, changed field by field
    through ``PATCH``. Every choice is keyed by a node, customer or order id; injected faults are drawn from
    ``seed`` and a key (``integrations.simulator.faults``), so a run can be repeated exactly."""

    step_delay_s: float = Field(default=2.0, ge=0, le=3600)
    # While true, releases are acknowledged but no event is sent (an order stays "in flight").
    hold_events: bool = False

    # --- warehouses and carriers ---
    # Nodes whose WMS refuses every release (a business rejection: 409).
    reject_nodes: list[str] = Field(default_factory=list)
    # Nodes that accept a release, acknowledge it, then report it short-picked (every line, every unit).
    short_pick_nodes: list[str] = Field(default_factory=list)
    # Nodes that accept a release and then say nothing at all: no acknowledgement, no event.
    silent_nodes: list[str] = Field(default_factory=list)
    # Nodes whose carrier reports a delay after shipping: the new estimate is that many days from the report.
    delay_nodes: dict[str, Days] = Field(default_factory=dict)
    # Nodes whose carrier loses the parcel once it is in transit.
    lose_nodes: list[str] = Field(default_factory=list)
    # A pickup shipment waits at the branch once ready; true: the customer collects it one step later.
    auto_collect: bool = False

    # --- payments and fraud ---
    # Customers whose every authorization is declined.
    decline_customers: list[str] = Field(default_factory=list)
    # Credit limits of customers paying on terms: their open balance (authorized, less voided and refunded)
    # must stay within. A customer not listed has no limit.
    credit_limits: dict[str, MinorUnits] = Field(default_factory=dict)
    # Orders whose captures fail.
    capture_fail_orders: list[str] = Field(default_factory=list)
    # Fraud scores by customer; every other customer scores ``default_fraud_score``.
    fraud_scores: dict[str, Score] = Field(default_factory=dict)
    default_fraud_score: Score = 0.05

    # --- injected faults (none by default) ---
    # Every fault decision is drawn from ``random.Random(f"{seed}:{kind}:{key}")``: same seed, same faults.
    seed: int = 0
    outages: list[Outage] = Field(default_factory=list)
    faults: dict[Partner, PartnerFaults] = Field(default_factory=dict)
    # How long a call chosen to time out is held before it is answered 504: longer than the caller waits
    # (``ORCH_WMS_TIMEOUT_S``, 10 s by default), so the caller sees a timeout.
    fault_timeout_s: float = Field(default=30.0, ge=0, le=600)
    # Webhooks out: a fraction of events sent a second time (same event id) once the first was accepted ...
    webhook_duplicate_rate: Rate = 0
    # ... and a fraction of stage events held back ``webhook_reorder_delay_s`` while the playback goes on,
    # so later events overtake them (``delivered`` before ``shipped``).
    webhook_reorder_rate: Rate = 0
    webhook_reorder_delay_s: Seconds = 5.0


class BehaviourChange(BaseModel):
    """A partial ``Behaviour``: what ``PATCH /control/behaviour`` changes, leaving the rest as it is."""

    step_delay_s: float | None = Field(default=None, ge=0, le=3600)
    hold_events: bool | None = None
    reject_nodes: list[str] | None = None
    short_pick_nodes: list[str] | None = None
    silent_nodes: list[str] | None = None
    delay_nodes: dict[str, Days] | None = None
    lose_nodes: list[str] | None = None
    auto_collect: bool | None = None
    decline_customers: list[str] | None = None
    credit_limits: dict[str, MinorUnits] | None = None
    capture_fail_orders: list[str] | None = None
    fraud_scores: dict[str, Score] | None = None
    default_fraud_score: Score | None = None
    seed: int | None = None
    outages: list[Outage] | None = None
    faults: dict[Partner, PartnerFaults] | None = None
    fault_timeout_s: float | None = Field(default=None, ge=0, le=600)
    webhook_duplicate_rate: Rate | None = None
    webhook_reorder_rate: Rate | None = None
    webhook_reorder_delay_s: Seconds | None = None

    def applied_to(self, behaviour: Behaviour) -> Behaviour:
        """The behaviour with the fields given here changed (validated again, so nested values are models)."""
        change = self.model_dump(exclude_unset=True, exclude_none=True)
        return Behaviour.model_validate({**behaviour.model_dump(), **change})


Clock = Callable[[], Awaitable[datetime]]


async def wall_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class SimulatorConfig:
    webhook_url: str
    webhook_secret: str
    behaviour: Behaviour
    # The simulator's notion of now, which decides outage windows (and stamps injected faults). None: the wall
    # clock. Tests on the time-skipping server pass the test server's time so outage windows are in virtual time.
    clock: Clock | None = None

    async def now(self) -> datetime:
        return await (self.clock or wall_clock)()
