"""Exception playbooks (``domain.exceptions``): tables of facts and the actions they lead to, then one property.

The order workflow executes what these return (``_execute``), sleeps until ``earliest(deadlines(...))``
(``_next_deadline``) and then asks ``due`` what fell due (``_handle_due``). The tables pin down the actions and
their order; the property pins down the contract between ``deadlines`` and ``due`` that makes sleeping safe.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.exceptions import (
    Action,
    BackorderStep,
    CancelShipment,
    Escalate,
    ExceptionCode,
    Ignore,
    NotifyCustomer,
    PlaybookSettings,
    Replan,
    Repromise,
    Reship,
    ShipmentFacts,
    ShipmentIssue,
    Trace,
    Undo,
    backorder_step,
    deadlines,
    due,
    earliest,
    fraud_needs_review,
    node_unavailable,
    on_issue,
    polled_progress,
    tracking_stalled,
    undo_for,
    undo_order,
)
from domain.lifecycle import ShipmentStage
from domain.policy import Method
from workflows.contracts import ShipmentView

S = ShipmentStage
I = ShipmentIssue  # noqa: E741
C = ExceptionCode
SETTINGS = PlaybookSettings()
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)
PROMISED = date(2026, 3, 6)


def ship(stage: ShipmentStage = S.RELEASED, **changes: Any) -> ShipmentView:
    """Shipment SH-1 at DC-1, released, shipped and made ready at T0 unless changed, promised for PROMISED."""
    fields: dict[str, Any] = {
        "shipment_id": "SH-1",
        "node_id": "DC-1",
        "stage": stage,
        "allocations": [],
        "released_at": T0,
        "last_event_at": T0,
        "ready_at": T0,
        "promised_date": PROMISED,
        "current_promise": PROMISED,
    }
    return ShipmentView(**(fields | changes))


def kinds(actions: list[Action]) -> list[str]:
    """Each action's type, with its code or kind: the shape the workflow executes, in order."""
    out = []
    for a in actions:
        match a:
            case Escalate(code=code):
                out.append(f"Escalate:{code}")
            case NotifyCustomer(kind=kind):
                out.append(f"Notify:{kind}")
            case _:
                out.append(type(a).__name__)
    return out


def test_shipment_view_satisfies_the_facts_protocol():
    facts: ShipmentFacts = ship()  # mypy checks the protocol; this checks the builder
    assert facts.shipment_id == "SH-1"
    assert facts.method is Method.DELIVERY


# --- on_issue: short picks and rejections -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "issue", "expected"),
    [
        pytest.param(S.PLANNED, I.REJECTED, ["Escalate:NodeRejected", "Replan"], id="rejected-at-release"),
        pytest.param(S.RELEASED, I.REJECTED, ["Escalate:NodeRejected", "Replan"], id="rejected-released"),
        pytest.param(S.ACKNOWLEDGED, I.SHORT_PICKED, ["Escalate:ShortPick", "Replan"], id="short-acknowledged"),
        pytest.param(S.PICKED, I.SHORT_PICKED, ["Escalate:ShortPick", "Replan"], id="short-picked"),
        pytest.param(S.PACKED, I.REJECTED, ["Escalate:NodeRejected", "Replan"], id="rejected-packed"),
        pytest.param(S.READY_FOR_PICKUP, I.SHORT_PICKED, ["Escalate:ShortPick", "Replan"], id="short-ready"),
        pytest.param(S.SHIPPED, I.SHORT_PICKED, ["Ignore"], id="short-after-shipped"),
        pytest.param(S.IN_TRANSIT, I.REJECTED, ["Ignore"], id="rejected-in-transit"),
        pytest.param(S.DELIVERED, I.REJECTED, ["Ignore"], id="rejected-delivered"),
        pytest.param(S.COLLECTED, I.SHORT_PICKED, ["Ignore"], id="short-collected"),
        pytest.param(S.CANCELLED, I.REJECTED, ["Ignore"], id="rejected-cancelled"),
        pytest.param(S.LOST, I.SHORT_PICKED, ["Ignore"], id="short-lost"),
    ],
)
def test_short_pick_and_rejection(stage, issue, expected):
    actions = on_issue(ship(stage), issue, detail="bin empty", new_estimate=None, reships_done=0, settings=SETTINGS)
    assert kinds(actions) == expected


@pytest.mark.parametrize(
    ("issue", "code", "verb"),
    [(I.SHORT_PICKED, C.SHORT_PICK, "short-picked"), (I.REJECTED, C.NODE_REJECTED, "rejected")],
)
@pytest.mark.parametrize(("detail", "suffix"), [("bin empty", ": bin empty"), ("", "")], ids=["detail", "no-detail"])
def test_short_pick_and_rejection_replan_elsewhere(issue, code, verb, detail, suffix):
    actions = on_issue(ship(S.PICKED), issue, detail=detail, new_estimate=None, reships_done=0, settings=SETTINGS)
    reason = f"DC-1 {verb} it{suffix}"
    # Escalate first (sets the exception code), then the re-plan that excludes the node for good.
    assert actions == [Escalate(code, reason, "SH-1"), Replan("SH-1", reason, exclude_node="DC-1")]


@pytest.mark.parametrize("issue", list(ShipmentIssue))
@pytest.mark.parametrize("stage", [S.CANCELLED, S.LOST])
def test_any_issue_for_an_ended_shipment_is_ignored(issue, stage):
    actions = on_issue(
        ship(stage), issue, detail="x", new_estimate=PROMISED + timedelta(days=9), reships_done=0, settings=SETTINGS
    )
    assert actions == [Ignore(f"{issue} reported for SH-1 at DC-1, which has already ended")]


# --- on_issue: delays ---------------------------------------------------------------------------------------


def days(n: int) -> date:
    return PROMISED + timedelta(days=n)


@pytest.mark.parametrize(
    ("promised", "current", "estimate", "expected"),
    [
        pytest.param(PROMISED, PROMISED, None, ["Escalate:CarrierDelay"], id="no-estimate"),
        pytest.param(PROMISED, PROMISED, days(-1), ["Ignore"], id="earlier-than-promise"),
        pytest.param(PROMISED, PROMISED, days(0), ["Ignore"], id="keeps-promise"),
        pytest.param(PROMISED, days(2), days(1), ["Ignore"], id="keeps-moved-promise"),
        pytest.param(PROMISED, PROMISED, days(1), ["Repromise", "Notify:delayed"], id="one-day"),
        pytest.param(PROMISED, PROMISED, days(2), ["Repromise", "Notify:delayed"], id="at-threshold"),
        pytest.param(
            PROMISED, PROMISED, days(3), ["Repromise", "Notify:delayed", "Escalate:CarrierDelay"], id="over-threshold"
        ),
        # The slip is measured from the promise first made, not the one it stands at now.
        pytest.param(
            PROMISED, days(2), days(3), ["Repromise", "Notify:delayed", "Escalate:CarrierDelay"], id="cumulative"
        ),
        pytest.param(
            None, None, days(1), ["Repromise", "Notify:delayed", "Escalate:CarrierDelay"], id="nothing-promised"
        ),
        pytest.param(PROMISED, None, days(1), ["Repromise", "Notify:delayed"], id="no-current-promise"),
    ],
)
def test_delay(promised, current, estimate, expected):
    view = ship(S.IN_TRANSIT, promised_date=promised, current_promise=current)
    actions = on_issue(view, I.DELAYED, detail="weather", new_estimate=estimate, reships_done=0, settings=SETTINGS)
    assert kinds(actions) == expected


def test_delay_over_threshold_in_full():
    actions = on_issue(
        ship(S.IN_TRANSIT), I.DELAYED, detail="weather", new_estimate=days(3), reships_done=0, settings=SETTINGS
    )
    assert actions == [
        Repromise("SH-1", days(3), "carrier delay: weather"),
        NotifyCustomer("delayed", f"Your delivery is delayed; it is now expected on {days(3)}.", "SH-1"),
        Escalate(C.CARRIER_DELAY, f"promise slipped by 3 day(s) to {days(3)}", "SH-1"),
    ]


def test_delay_threshold_is_a_setting():
    strict = PlaybookSettings(delay_escalation=timedelta(0))
    view = ship(S.SHIPPED)
    assert kinds(on_issue(view, I.DELAYED, detail="", new_estimate=days(1), reships_done=0, settings=strict))[-1] == (
        "Escalate:CarrierDelay"
    )


def test_delay_without_estimate_names_the_detail():
    actions = on_issue(ship(S.SHIPPED), I.DELAYED, detail="hub closed", new_estimate=None, reships_done=0,
                       settings=SETTINGS)  # fmt: skip
    assert actions == [Escalate(C.CARRIER_DELAY, "delay without a new estimate: hub closed", "SH-1")]


# --- on_issue: lost in transit ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "reships_done", "max_reships", "expected"),
    [
        pytest.param(S.SHIPPED, 0, 1, ["Escalate:LostInTransit", "Reship", "Notify:reshipped"], id="shipped-first"),
        pytest.param(S.IN_TRANSIT, 0, 1, ["Escalate:LostInTransit", "Reship", "Notify:reshipped"], id="transit"),
        pytest.param(S.IN_TRANSIT, 1, 2, ["Escalate:LostInTransit", "Reship", "Notify:reshipped"], id="one-left"),
        pytest.param(
            S.IN_TRANSIT, 1, 1, ["Escalate:LostInTransit", "CancelShipment", "Notify:refunded"], id="exhausted"
        ),
        pytest.param(
            S.SHIPPED, 0, 0, ["Escalate:LostInTransit", "CancelShipment", "Notify:refunded"], id="no-reships-allowed"
        ),
        pytest.param(S.PLANNED, 0, 1, ["Ignore"], id="planned"),
        pytest.param(S.RELEASED, 0, 1, ["Ignore"], id="released"),
        pytest.param(S.PACKED, 0, 1, ["Ignore"], id="packed"),
        pytest.param(S.READY_FOR_PICKUP, 0, 1, ["Ignore"], id="ready-for-pickup"),
        pytest.param(S.DELIVERED, 0, 1, ["Ignore"], id="delivered"),
        pytest.param(S.COLLECTED, 0, 1, ["Ignore"], id="collected"),
        pytest.param(S.LOST, 0, 1, ["Ignore"], id="already-lost"),
    ],
)
def test_lost(stage, reships_done, max_reships, expected):
    settings = PlaybookSettings(max_reships=max_reships)
    actions = on_issue(ship(stage), I.LOST, detail="", new_estimate=None, reships_done=reships_done, settings=settings)
    assert kinds(actions) == expected


def test_lost_not_in_transit_says_where_it_is():
    actions = on_issue(ship(S.DELIVERED), I.LOST, detail="", new_estimate=None, reships_done=0, settings=SETTINGS)
    assert actions == [Ignore("lost reported for SH-1 at DC-1 while it is delivered")]


def test_lost_with_a_reship_left_in_full():
    actions = on_issue(ship(S.IN_TRANSIT), I.LOST, detail="depot fire", new_estimate=None, reships_done=0,
                       settings=SETTINGS)  # fmt: skip
    reason = "lost in transit: depot fire"
    assert actions == [
        Escalate(C.LOST_IN_TRANSIT, reason, "SH-1"),
        Reship("SH-1", reason),
        NotifyCustomer("reshipped", "Your parcel was lost in transit; we are sending a replacement.", "SH-1"),
    ]


def test_lost_with_no_reship_left_in_full():
    actions = on_issue(ship(S.IN_TRANSIT), I.LOST, detail="", new_estimate=None, reships_done=1, settings=SETTINGS)
    assert actions == [
        Escalate(C.LOST_IN_TRANSIT, "lost in transit; no re-ship left: refunding", "SH-1"),
        CancelShipment("SH-1", "lost in transit; re-ship limit of 1 reached"),
        NotifyCustomer("refunded", "Your parcel was lost in transit; you have been refunded.", "SH-1"),
    ]


# --- deadlines and due --------------------------------------------------------------------------------------

ACK = T0 + SETTINGS.ack_sla
STALL = T0 + SETTINGS.tracking_stall
PICKUP_DEADLINE = T0 + SETTINGS.pickup_hold
REMINDER = PICKUP_DEADLINE - SETTINGS.pickup_reminder_before


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        pytest.param(ship(S.RELEASED), [ACK], id="released"),
        pytest.param(ship(S.RELEASED, released_at=None), [], id="released-without-time"),
        pytest.param(ship(S.SHIPPED), [STALL], id="shipped"),
        pytest.param(ship(S.IN_TRANSIT), [STALL], id="in-transit"),
        pytest.param(ship(S.IN_TRANSIT, escalated=True), [], id="in-transit-escalated"),
        pytest.param(ship(S.SHIPPED, last_event_at=None), [], id="shipped-without-event"),
        pytest.param(ship(S.READY_FOR_PICKUP), [REMINDER, PICKUP_DEADLINE], id="ready"),
        pytest.param(ship(S.READY_FOR_PICKUP, reminded=True), [PICKUP_DEADLINE], id="ready-reminded"),
        pytest.param(ship(S.READY_FOR_PICKUP, ready_at=None), [], id="ready-without-time"),
        *(
            pytest.param(ship(stage), [], id=str(stage))
            for stage in (S.PLANNED, S.ACKNOWLEDGED, S.PICKED, S.PACKED, S.DELIVERED, S.COLLECTED, S.CANCELLED, S.LOST)
        ),
    ],
)
def test_deadlines(view, expected):
    assert deadlines(view, SETTINGS) == expected


@pytest.mark.parametrize(
    ("view", "now", "expected"),
    [
        pytest.param(ship(S.RELEASED), ACK - US, [], id="ack-just-before"),
        pytest.param(ship(S.RELEASED), ACK, ["Escalate:NoAcknowledgement", "Replan"], id="ack-at"),
        pytest.param(ship(S.RELEASED), ACK + timedelta(days=1), ["Escalate:NoAcknowledgement", "Replan"],
                     id="ack-after"),
        pytest.param(ship(S.RELEASED, released_at=None), ACK, [], id="ack-never-released"),
        pytest.param(ship(S.ACKNOWLEDGED), ACK + timedelta(days=30), [], id="acknowledged-in-time"),
        pytest.param(ship(S.SHIPPED), STALL - US, [], id="stall-just-before"),
        pytest.param(ship(S.SHIPPED), STALL, ["Trace", "Escalate:TrackingStalled"], id="stall-at"),
        pytest.param(ship(S.IN_TRANSIT), STALL + timedelta(days=1), ["Trace", "Escalate:TrackingStalled"],
                     id="stall-after"),
        pytest.param(ship(S.IN_TRANSIT, escalated=True), STALL + timedelta(days=1), [], id="stall-escalated"),
        pytest.param(ship(S.IN_TRANSIT, last_event_at=None), STALL, [], id="stall-no-event"),
        pytest.param(ship(S.READY_FOR_PICKUP), REMINDER - US, [], id="reminder-just-before"),
        pytest.param(ship(S.READY_FOR_PICKUP), REMINDER, ["Notify:pickup_reminder"], id="reminder-at"),
        pytest.param(ship(S.READY_FOR_PICKUP), PICKUP_DEADLINE - US, ["Notify:pickup_reminder"],
                     id="reminder-late"),
        pytest.param(ship(S.READY_FOR_PICKUP, reminded=True), REMINDER, [], id="reminded-already"),
        pytest.param(ship(S.READY_FOR_PICKUP, reminded=True), PICKUP_DEADLINE - US, [], id="deadline-just-before"),
        pytest.param(ship(S.READY_FOR_PICKUP, reminded=True), PICKUP_DEADLINE,
                     ["Escalate:PickupNotCollected", "CancelShipment", "Notify:pickup_cancelled"], id="deadline-at"),
        # Never reminded (the worker was down): at the deadline it is cancelled, not reminded.
        pytest.param(ship(S.READY_FOR_PICKUP), PICKUP_DEADLINE + timedelta(hours=1),
                     ["Escalate:PickupNotCollected", "CancelShipment", "Notify:pickup_cancelled"],
                     id="deadline-after-unreminded"),
        pytest.param(ship(S.READY_FOR_PICKUP, ready_at=None), PICKUP_DEADLINE, [], id="never-ready"),
        pytest.param(ship(S.COLLECTED), PICKUP_DEADLINE, [], id="collected"),
        pytest.param(ship(S.DELIVERED), STALL, [], id="delivered"),
        pytest.param(ship(S.CANCELLED), ACK, [], id="cancelled"),
        pytest.param(ship(S.LOST), STALL, [], id="lost"),
    ],
)  # fmt: skip
def test_due(view, now, expected):
    assert kinds(due(view, now, SETTINGS)) == expected


def test_due_in_full():
    ack = due(ship(S.RELEASED), ACK, SETTINGS)
    reason = "DC-1 did not acknowledge within 2 h"
    assert ack == [Escalate(C.NO_ACK, reason, "SH-1"), Replan("SH-1", reason, exclude_node="DC-1")]

    stall = due(ship(S.IN_TRANSIT), STALL, SETTINGS)
    reason = "no carrier event for SH-1 at DC-1 in 3 day(s)"
    assert stall == [Trace("SH-1", reason), Escalate(C.TRACKING_STALLED, reason, "SH-1")]

    reminder = due(ship(S.READY_FOR_PICKUP), REMINDER, SETTINGS)
    assert reminder == [
        NotifyCustomer("pickup_reminder", "Your order is waiting for you at DC-1 until 2026-03-07 12:00 UTC.", "SH-1")
    ]

    expired = due(ship(S.READY_FOR_PICKUP, reminded=True), PICKUP_DEADLINE, SETTINGS)
    reason = "not collected by 2026-03-07 12:00 UTC"
    assert expired == [
        Escalate(C.PICKUP_NOT_COLLECTED, reason, "SH-1"),
        CancelShipment("SH-1", reason),
        NotifyCustomer(
            "pickup_cancelled",
            f"Your pickup was {reason} and has been cancelled; you have not been charged for it.",
            "SH-1",
        ),
    ]


@pytest.mark.parametrize(
    ("view", "now", "expected"),
    [
        pytest.param(ship(S.SHIPPED), STALL - US, False, id="just-before"),
        pytest.param(ship(S.SHIPPED), STALL, True, id="shipped-at"),
        pytest.param(ship(S.IN_TRANSIT), STALL + timedelta(days=1), True, id="in-transit-after"),
        pytest.param(ship(S.IN_TRANSIT, escalated=True), STALL, False, id="already-traced"),
        pytest.param(ship(S.IN_TRANSIT, last_event_at=None), STALL, False, id="no-event"),
        pytest.param(ship(S.DELIVERED), STALL, False, id="delivered"),
        pytest.param(ship(S.RELEASED), STALL, False, id="released"),
    ],
)
def test_tracking_stalled_is_when_due_traces(view, now, expected):
    assert tracking_stalled(view, now, SETTINGS) is expected
    assert ("Trace" in kinds(due(view, now, SETTINGS))) is expected


@pytest.mark.parametrize(
    ("stage", "reported", "expected"),
    [
        (S.SHIPPED, S.IN_TRANSIT, S.IN_TRANSIT),
        (S.SHIPPED, S.DELIVERED, S.DELIVERED),
        (S.IN_TRANSIT, S.DELIVERED, S.DELIVERED),
        (S.IN_TRANSIT, S.IN_TRANSIT, None),
        (S.IN_TRANSIT, S.SHIPPED, None),
        (S.SHIPPED, None, None),
        (S.SHIPPED, S.LOST, None),
        (S.LOST, S.DELIVERED, None),
    ],
)
def test_a_carrier_poll_moves_a_stalled_parcel_only_forward(stage, reported, expected):
    assert polled_progress(ship(stage), reported) == expected


def test_what_the_workflow_records_after_a_timer_moves_the_next_deadline_on():
    # _execute marks a reminded pickup ``reminded`` and a traced parcel ``escalated``: the same instant is not
    # due again, so the loop does not spin on it.
    ready = ship(S.READY_FOR_PICKUP)
    assert due(ready, REMINDER, SETTINGS)
    after = ready.model_copy(update={"reminded": True})
    assert due(after, REMINDER, SETTINGS) == []
    assert earliest(deadlines(after, SETTINGS)) == PICKUP_DEADLINE

    stalled = ship(S.IN_TRANSIT)
    assert due(stalled, STALL, SETTINGS)
    traced = stalled.model_copy(update={"escalated": True})
    assert due(traced, STALL, SETTINGS) == []
    assert deadlines(traced, SETTINGS) == []


# --- node unavailable, backorders, fraud --------------------------------------------------------------------


def test_node_unavailable_replans_without_excluding_the_node():
    why = "DC-1 is paused"
    assert node_unavailable(ship(S.PLANNED), "paused") == [
        Escalate(C.NODE_UNAVAILABLE, why, "SH-1"),
        Replan("SH-1", why, exclude_node=None),
    ]


DEADLINE = T0 + timedelta(days=14)
NEXT_CHECK = T0 + timedelta(hours=6)


@pytest.mark.parametrize(
    ("now", "signalled", "expected"),
    [
        pytest.param(T0, False, BackorderStep(replan=False, expire=False), id="waiting"),
        pytest.param(NEXT_CHECK - US, False, BackorderStep(replan=False, expire=False), id="recheck-just-before"),
        pytest.param(NEXT_CHECK, False, BackorderStep(replan=True, expire=False), id="recheck-at"),
        pytest.param(NEXT_CHECK + US, False, BackorderStep(replan=True, expire=False), id="recheck-after"),
        pytest.param(T0, True, BackorderStep(replan=True, expire=False), id="signalled"),
        pytest.param(DEADLINE - US, True, BackorderStep(replan=True, expire=False), id="signalled-just-before"),
        pytest.param(DEADLINE - US, False, BackorderStep(replan=True, expire=False), id="deadline-just-before"),
        pytest.param(DEADLINE, False, BackorderStep(replan=False, expire=True), id="deadline-at"),
        pytest.param(DEADLINE, True, BackorderStep(replan=False, expire=True), id="deadline-beats-signal"),
        pytest.param(
            DEADLINE + timedelta(days=1), False, BackorderStep(replan=False, expire=True), id="deadline-after"
        ),
    ],
)
def test_backorder_step(now, signalled, expected):
    assert backorder_step(now, deadline=DEADLINE, next_check=NEXT_CHECK, stock_signalled=signalled) == expected


@pytest.mark.parametrize(
    ("score", "threshold", "review"),
    [
        pytest.param(0.79, 0.8, False, id="below"),
        pytest.param(0.8, 0.8, True, id="equal"),
        pytest.param(0.81, 0.8, True, id="above"),
        pytest.param(0.0, 0.0, True, id="zero-threshold-reviews-all"),
        pytest.param(0.99, 1.0, False, id="one-threshold"),
        pytest.param(1.0, 1.0, True, id="one-threshold-equal"),
    ],
)
def test_fraud_needs_review(score, threshold, review):
    assert fraud_needs_review(score, PlaybookSettings(fraud_review_threshold=threshold)) is review


# --- compensation -------------------------------------------------------------------------------------------

UNDO = {
    S.PLANNED: Undo.DROP,
    S.RELEASED: Undo.CANCEL_AT_NODE,
    S.ACKNOWLEDGED: Undo.CANCEL_AT_NODE,
    S.PICKED: Undo.CANCEL_AT_NODE,
    S.PACKED: Undo.CANCEL_AT_NODE,
    S.READY_FOR_PICKUP: Undo.CANCEL_AT_NODE,
    S.SHIPPED: Undo.INTERCEPT,
    S.IN_TRANSIT: Undo.INTERCEPT,
    S.DELIVERED: Undo.RETURN,
    S.COLLECTED: Undo.RETURN,
    S.CANCELLED: Undo.NOTHING,
    S.LOST: Undo.NOTHING,
}


def test_undo_table_covers_every_stage():
    assert set(UNDO) == set(ShipmentStage)


@pytest.mark.parametrize(("stage", "undo"), UNDO.items(), ids=[str(s) for s in UNDO])
def test_undo_for(stage, undo):
    assert undo_for(stage) is undo


def test_undo_order_is_reverse_and_skips_ended():
    views = [
        ship(S.DELIVERED, shipment_id="A"),
        ship(S.CANCELLED, shipment_id="B"),
        ship(S.IN_TRANSIT, shipment_id="C"),
        ship(S.LOST, shipment_id="D"),
        ship(S.RELEASED, shipment_id="E"),
        ship(S.PLANNED, shipment_id="F"),
    ]
    assert undo_order(views) == [
        ("F", Undo.DROP),
        ("E", Undo.CANCEL_AT_NODE),
        ("C", Undo.INTERCEPT),
        ("A", Undo.RETURN),
    ]
    assert undo_order([]) == []
    assert undo_order([ship(S.CANCELLED), ship(S.LOST)]) == []


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([], None),
        ([None, None], None),
        ([T0 + US, None, T0, T0 + timedelta(days=1)], T0),
        ([None, STALL], STALL),
    ],
)
def test_earliest(times, expected):
    assert earliest(times) == expected


# --- the contract between deadlines and due -----------------------------------------------------------------

instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC))
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30))


@given(
    stage=st.sampled_from(ShipmentStage),
    released_at=st.none() | instants,
    last_event_at=st.none() | instants,
    ready_at=st.none() | instants,
    reminded=st.booleans(),
    escalated=st.booleans(),
    ack_sla=spans,
    tracking_stall=spans,
    pickup_hold=spans,
    pickup_reminder_before=spans,
    before=st.timedeltas(min_value=US, max_value=timedelta(days=400)),
)
def test_nothing_is_due_before_the_earliest_deadline_and_something_is_at_it(
    stage, released_at, last_event_at, ready_at, reminded, escalated, ack_sla, tracking_stall, pickup_hold,
    pickup_reminder_before, before,
):  # fmt: skip
    # The workflow sleeps until earliest(deadlines) and only then asks due(): anything due earlier would be late,
    # and a deadline at which nothing is due would wake it for nothing (and, if nothing changes, again and again).
    settings = PlaybookSettings(
        ack_sla=ack_sla,
        tracking_stall=tracking_stall,
        pickup_hold=pickup_hold,
        pickup_reminder_before=pickup_reminder_before,
    )
    view = ship(
        stage,
        released_at=released_at,
        last_event_at=last_event_at,
        ready_at=ready_at,
        reminded=reminded,
        escalated=escalated,
    )
    times = deadlines(view, settings)
    first = earliest(times)
    if first is None:
        # No timer: nothing may ever fall due, however late the loop wakes for another reason.
        for t in (released_at, last_event_at, ready_at, datetime(2031, 1, 1, tzinfo=UTC)):
            if t is not None:
                assert due(view, t + before, settings) == []
        return
    assert due(view, first - before, settings) == []
    assert due(view, first - US, settings) == []
    assert due(view, first, settings) != []
