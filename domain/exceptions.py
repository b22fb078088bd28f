"""Exception playbooks: what to do when a plan meets the world, decided without doing it.

Each function looks at facts about an order's shipments (what stage, since when, what was promised) and
returns actions. The order workflow executes them: it owns the side effects, the timers and the journal;
these functions own the judgement, so every branch is a table-driven unit test and a CSR can read the rules
in one place. Nothing here reads a clock: ``now`` is always passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from domain.lifecycle import FINISHED_STAGES, ShipmentStage, advances, has_left_node
from domain.policy import Method


class PlaybookSettings(BaseModel):
    """The timers and limits of the playbooks, fixed for an order when it starts.

    They travel in the workflow input (and across continue-as-new), so changing the defaults affects new
    orders only and a replay always sees the values the order ran with.
    """

    model_config = ConfigDict(frozen=True)

    # Fraud: a score at or above this holds the order for a CSR's review.
    fraud_review_threshold: float = Field(default=0.8, ge=0, le=1)
    # A review, a payment hold or a CSR hold not decided within this is escalated (and again each period).
    escalate_after: timedelta = timedelta(hours=4)
    # A released shipment the node has not acknowledged within this is cancelled there and planned elsewhere.
    ack_sla: timedelta = timedelta(hours=2)
    # Nothing available: wait this long for stock (checked each ``backorder_recheck`` and on stock signals),
    # then cancel the units still short.
    backorder_wait: timedelta = timedelta(days=14)
    backorder_recheck: timedelta = timedelta(hours=6)
    # A pickup waits this long once ready; a reminder goes out ``pickup_reminder_before`` the deadline.
    pickup_hold: timedelta = timedelta(days=5)
    pickup_reminder_before: timedelta = timedelta(days=2)
    # No carrier event for this long after shipping: the parcel is traced and the CSRs are told.
    tracking_stall: timedelta = timedelta(days=3)
    # A carrier delay that moves the promise by more than this is escalated, not only re-promised.
    delay_escalation: timedelta = timedelta(days=2)
    # A parcel lost in transit is re-shipped this many times at most; after that its lines are refunded.
    max_reships: int = Field(default=1, ge=0)
    # Plans decided for this order in all (re-plans included) before it fails for good.
    max_plan_attempts: int = Field(default=12, ge=1)
    # Continue-as-new once the history has this many events (Temporal may suggest it earlier).
    history_event_limit: int = Field(default=10_000, ge=50)
    # Nothing is released until this long after the order was received; until then the customer may change
    # branch, service, address or lines with nothing to cancel at a node. Zero releases as soon as planned.
    change_window: timedelta = timedelta(0)


class ShipmentIssue(StrEnum):
    """What can go wrong with a released shipment, as its provider or carrier reports it."""

    SHORT_PICKED = "short_picked"
    REJECTED = "rejected"
    DELAYED = "delayed"
    LOST = "lost"


class ShipmentFacts(Protocol):
    """What the playbooks read about a shipment (the workflow's ``ShipmentView`` has these and more)."""

    @property
    def shipment_id(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def stage(self) -> ShipmentStage: ...
    @property
    def method(self) -> Method: ...
    @property
    def released_at(self) -> datetime | None: ...
    @property
    def last_event_at(self) -> datetime | None: ...
    @property
    def ready_at(self) -> datetime | None: ...
    @property
    def reminded(self) -> bool: ...
    @property
    def escalated(self) -> bool: ...
    @property
    def current_promise(self) -> date | None: ...
    @property
    def promised_date(self) -> date | None: ...


# --- actions --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replan:
    """End the shipment (cancel it at the node if released, give its stock back) and plan its units again,
    never again from ``exclude_node``."""

    shipment_id: str
    reason: str
    exclude_node: str | None


@dataclass(frozen=True)
class Repromise:
    shipment_id: str
    new_date: date
    reason: str


@dataclass(frozen=True)
class Escalate:
    """Tell the CSR queue; ``code`` becomes the order's exception code (a search attribute)."""

    code: str
    reason: str
    shipment_id: str | None = None


@dataclass(frozen=True)
class NotifyCustomer:
    kind: str
    message: str
    shipment_id: str | None = None


@dataclass(frozen=True)
class Trace:
    """Ask the carrier to trace a parcel that has gone quiet."""

    shipment_id: str
    reason: str


@dataclass(frozen=True)
class Reship:
    """The parcel is gone: mark it lost and plan its units again from wherever they are now."""

    shipment_id: str
    reason: str


@dataclass(frozen=True)
class CancelShipment:
    """End the shipment and cancel its units for good (stock back to available, money back)."""

    shipment_id: str
    reason: str


@dataclass(frozen=True)
class Ignore:
    """Nothing to do, but the timeline says why."""

    reason: str


Action = Replan | Repromise | Escalate | NotifyCustomer | Trace | Reship | CancelShipment | Ignore


class ExceptionCode(StrEnum):
    """The order's exception code (search attribute ``ExceptionCode``): one filter finds every such order."""

    NODE_REJECTED = "NodeRejected"
    SHORT_PICK = "ShortPick"
    NO_ACK = "NoAcknowledgement"
    NODE_UNAVAILABLE = "NodeUnavailable"
    BACKORDERED = "Backordered"
    CARRIER_DELAY = "CarrierDelay"
    TRACKING_STALLED = "TrackingStalled"
    LOST_IN_TRANSIT = "LostInTransit"
    PICKUP_NOT_COLLECTED = "PickupNotCollected"
    CAPTURE_FAILED = "CaptureFailed"
    REVIEW_OVERDUE = "ReviewOverdue"
    HOLD_OVERDUE = "HoldOverdue"
    PLAN_ATTEMPTS_EXHAUSTED = "PlanAttemptsExhausted"


# --- the playbooks --------------------------------------------------------------------------------------


def on_issue(
    shipment: ShipmentFacts,
    issue: ShipmentIssue,
    *,
    detail: str,
    new_estimate: date | None,
    reships_done: int,
    settings: PlaybookSettings,
) -> list[Action]:
    """What a reported problem with a shipment leads to."""
    where = f"{shipment.shipment_id} at {shipment.node_id}"
    if shipment.stage in (ShipmentStage.CANCELLED, ShipmentStage.LOST):
        return [Ignore(f"{issue} reported for {where}, which has already ended")]
    if issue in (ShipmentIssue.SHORT_PICKED, ShipmentIssue.REJECTED):
        if has_left_node(shipment.stage):
            # The node shipped after all (the report crossed the shipment): trust what physically happened.
            return [Ignore(f"{issue} reported for {where} after it shipped")]
        code = ExceptionCode.SHORT_PICK if issue is ShipmentIssue.SHORT_PICKED else ExceptionCode.NODE_REJECTED
        reason = f"{shipment.node_id} {'short-picked' if code is ExceptionCode.SHORT_PICK else 'rejected'} it"
        reason += f": {detail}" if detail else ""
        return [Escalate(code, reason, shipment.shipment_id), Replan(shipment.shipment_id, reason, shipment.node_id)]
    if issue is ShipmentIssue.DELAYED:
        if shipment.stage in FINISHED_STAGES:
            return [Ignore(f"delay reported for {where} after it was {shipment.stage}")]
        return on_delay(shipment, new_estimate, detail=detail, settings=settings)
    # Lost in transit.
    if shipment.stage not in (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT):
        return [Ignore(f"lost reported for {where} while it is {shipment.stage}")]
    reason = f"lost in transit{': ' + detail if detail else ''}"
    if reships_done < settings.max_reships:
        return [
            Escalate(ExceptionCode.LOST_IN_TRANSIT, reason, shipment.shipment_id),
            Reship(shipment.shipment_id, reason),
            NotifyCustomer("reshipped", "Your parcel was lost in transit; we are sending a replacement.",
                           shipment.shipment_id),
        ]  # fmt: skip
    return [
        Escalate(ExceptionCode.LOST_IN_TRANSIT, f"{reason}; no re-ship left: refunding", shipment.shipment_id),
        CancelShipment(shipment.shipment_id, f"{reason}; re-ship limit of {settings.max_reships} reached"),
        NotifyCustomer("refunded", "Your parcel was lost in transit; you have been refunded.", shipment.shipment_id),
    ]


def on_delay(
    shipment: ShipmentFacts, new_estimate: date | None, *, detail: str, settings: PlaybookSettings
) -> list[Action]:
    """A carrier delay: re-promise and tell the customer; escalate when it slips past the tolerance."""
    if new_estimate is None:
        return [Escalate(ExceptionCode.CARRIER_DELAY, f"delay without a new estimate: {detail}", shipment.shipment_id)]
    current = shipment.current_promise
    if current is not None and new_estimate <= current:
        return [Ignore(f"delay reported but {new_estimate} keeps the promise of {current}")]
    actions: list[Action] = [
        Repromise(shipment.shipment_id, new_estimate, f"carrier delay{': ' + detail if detail else ''}"),
        NotifyCustomer("delayed", f"Your delivery is delayed; it is now expected on {new_estimate}.",
                       shipment.shipment_id),
    ]  # fmt: skip
    original = shipment.promised_date
    if original is None or new_estimate - original > settings.delay_escalation:
        slip = "unknown" if original is None else f"{(new_estimate - original).days} day(s)"
        actions.append(
            Escalate(ExceptionCode.CARRIER_DELAY, f"promise slipped by {slip} to {new_estimate}", shipment.shipment_id)
        )
    return actions


def deadlines(shipment: ShipmentFacts, settings: PlaybookSettings) -> list[datetime]:
    """When something about this shipment falls due if nothing else happens first."""
    if shipment.stage is ShipmentStage.RELEASED and shipment.released_at is not None:
        return [shipment.released_at + settings.ack_sla]
    if shipment.stage in (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT) and shipment.last_event_at is not None:
        return [] if shipment.escalated else [shipment.last_event_at + settings.tracking_stall]
    if shipment.stage is ShipmentStage.READY_FOR_PICKUP and shipment.ready_at is not None:
        deadline = shipment.ready_at + settings.pickup_hold
        return [deadline] if shipment.reminded else [deadline - settings.pickup_reminder_before, deadline]
    return []


def due(shipment: ShipmentFacts, now: datetime, settings: PlaybookSettings) -> list[Action]:
    """What a timer firing means for this shipment: a missed SLA, a stalled parcel, an uncollected pickup."""
    where = f"{shipment.shipment_id} at {shipment.node_id}"
    if shipment.stage is ShipmentStage.RELEASED and shipment.released_at is not None:
        if ack_overdue(shipment, now, settings):
            reason = f"{shipment.node_id} did not acknowledge within {_hours(settings.ack_sla)}"
            return [Escalate(ExceptionCode.NO_ACK, reason, shipment.shipment_id),
                    Replan(shipment.shipment_id, reason, shipment.node_id)]  # fmt: skip
        return []
    if shipment.stage in (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT) and shipment.last_event_at is not None:
        if tracking_stalled(shipment, now, settings):
            reason = f"no carrier event for {where} in {_hours(settings.tracking_stall)}"
            return [Trace(shipment.shipment_id, reason),
                    Escalate(ExceptionCode.TRACKING_STALLED, reason, shipment.shipment_id)]  # fmt: skip
        return []
    if shipment.stage is ShipmentStage.READY_FOR_PICKUP and shipment.ready_at is not None:
        deadline = shipment.ready_at + settings.pickup_hold
        if now >= deadline:
            reason = f"not collected by {deadline:%Y-%m-%d %H:%M} UTC"
            return [
                Escalate(ExceptionCode.PICKUP_NOT_COLLECTED, reason, shipment.shipment_id),
                CancelShipment(shipment.shipment_id, reason),
                NotifyCustomer("pickup_cancelled", f"Your pickup was {reason} and has been cancelled; "
                               "you have not been charged for it.", shipment.shipment_id),
            ]  # fmt: skip
        if not shipment.reminded and now >= deadline - settings.pickup_reminder_before:
            return [NotifyCustomer("pickup_reminder", f"Your order is waiting for you at {shipment.node_id} until "
                                   f"{deadline:%Y-%m-%d %H:%M} UTC.", shipment.shipment_id)]  # fmt: skip
    return []


def tracking_stalled(shipment: ShipmentFacts, now: datetime, settings: PlaybookSettings) -> bool:
    """A parcel on its way with no carrier event for ``tracking_stall``, not yet traced for this quiet period."""
    return (
        shipment.stage in (ShipmentStage.SHIPPED, ShipmentStage.IN_TRANSIT)
        and shipment.last_event_at is not None
        and not shipment.escalated
        and now >= shipment.last_event_at + settings.tracking_stall
    )


def ack_overdue(shipment: ShipmentFacts, now: datetime, settings: PlaybookSettings) -> bool:
    """A released shipment its node has not acknowledged within ``ack_sla``."""
    return (
        shipment.stage is ShipmentStage.RELEASED
        and shipment.released_at is not None
        and now >= shipment.released_at + settings.ack_sla
    )


def polled_progress(shipment: ShipmentFacts, reported: ShipmentStage | None) -> ShipmentStage | None:
    """What a poll of a silent partner moves the shipment to: the reported stage when it is later than the
    shipment's (applied like a received event, so the playbook has nothing to do), else None (nothing new: the
    playbook goes on: a stalled parcel is traced and escalated, an unacknowledged release escalated and
    planned elsewhere)."""
    if reported is None or not advances(shipment.stage, reported):
        return None
    return reported


def node_unavailable(shipment: ShipmentFacts, reason: str) -> list[Action]:
    """A node paused or full before its shipment was released: plan elsewhere for now (not for good)."""
    why = f"{shipment.node_id} is {reason}"
    return [Escalate(ExceptionCode.NODE_UNAVAILABLE, why, shipment.shipment_id),
            Replan(shipment.shipment_id, why, exclude_node=None)]  # fmt: skip


@dataclass(frozen=True)
class BackorderStep:
    """``replan`` try again now; ``expire`` cancel what is still short; neither: keep waiting."""

    replan: bool
    expire: bool


def backorder_step(now: datetime, *, deadline: datetime, next_check: datetime, stock_signalled: bool) -> BackorderStep:
    if now >= deadline:
        return BackorderStep(replan=False, expire=True)
    return BackorderStep(replan=stock_signalled or now >= next_check, expire=False)


def fraud_needs_review(score: float, settings: PlaybookSettings) -> bool:
    return score >= settings.fraud_review_threshold


# --- compensation ---------------------------------------------------------------------------------------


class Undo(StrEnum):
    """How one shipment is undone when its units are cancelled."""

    DROP = "drop"  # not released yet: only the reservation to give back
    CANCEL_AT_NODE = "cancel_at_node"  # released, not shipped: the node stops it, then the reservation
    INTERCEPT = "intercept"  # on its way: ask the carrier to bring it back
    RETURN = "return"  # delivered or collected: ask the customer to send it back
    NOTHING = "nothing"  # already ended


def undo_for(stage: ShipmentStage) -> Undo:
    """A step that cannot be undone (the parcel left) turns into the follow-up that can."""
    if stage in (ShipmentStage.CANCELLED, ShipmentStage.LOST):
        return Undo.NOTHING
    if stage is ShipmentStage.PLANNED:
        return Undo.DROP
    if stage in (ShipmentStage.DELIVERED, ShipmentStage.COLLECTED):
        return Undo.RETURN
    if has_left_node(stage):
        return Undo.INTERCEPT
    return Undo.CANCEL_AT_NODE


def undo_order(shipments: Sequence[ShipmentFacts]) -> list[tuple[str, Undo]]:
    """Undo in reverse: the latest shipments first, so the newest commitment is the first one withdrawn."""
    return [(s.shipment_id, undo_for(s.stage)) for s in reversed(shipments) if undo_for(s.stage) is not Undo.NOTHING]


def earliest(times: Iterable[datetime | None]) -> datetime | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def _hours(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 else f"{hours / 24:g} day(s)"
