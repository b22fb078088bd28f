"""Order and shipment stages: the progression, and the one rule for moving along it."""

from __future__ import annotations

import itertools

import pytest

from domain.lifecycle import (
    ENDED_STAGES,
    FINISHED_STAGES,
    REPORTABLE_STAGES,
    SHIPMENT_PROGRESSION,
    OrderStage,
    ShipmentStage,
    advances,
    has_left_node,
)

S = ShipmentStage


def test_progression_is_the_documented_order():
    assert [s.value for s in SHIPMENT_PROGRESSION] == [
        "planned",
        "released",
        "acknowledged",
        "picked",
        "packed",
        "ready_for_pickup",
        "shipped",
        "in_transit",
        "delivered",
        "collected",
    ]


# The progression before pickups and ended shipments existed: stored histories compare stages by it.
OLD_PROGRESSION = [S.PLANNED, S.RELEASED, S.ACKNOWLEDGED, S.PICKED, S.PACKED, S.SHIPPED, S.IN_TRANSIT, S.DELIVERED]


def test_new_stages_keep_the_old_relative_order():
    assert [s for s in SHIPMENT_PROGRESSION if s in OLD_PROGRESSION] == OLD_PROGRESSION
    for a, b in itertools.combinations(OLD_PROGRESSION, 2):
        assert advances(a, b), (a, b)
        assert not advances(b, a), (b, a)


def test_every_stage_is_on_the_path_or_ended():
    assert set(SHIPMENT_PROGRESSION) | ENDED_STAGES == set(ShipmentStage)
    assert not set(SHIPMENT_PROGRESSION) & ENDED_STAGES
    assert len(set(SHIPMENT_PROGRESSION)) == len(SHIPMENT_PROGRESSION)


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        pytest.param(S.PLANNED, S.RELEASED, True, id="planned-released"),
        pytest.param(S.RELEASED, S.ACKNOWLEDGED, True, id="released-acknowledged"),
        pytest.param(S.ACKNOWLEDGED, S.PICKED, True, id="acknowledged-picked"),
        pytest.param(S.PICKED, S.PACKED, True, id="picked-packed"),
        pytest.param(S.PACKED, S.SHIPPED, True, id="packed-shipped"),
        pytest.param(S.SHIPPED, S.IN_TRANSIT, True, id="shipped-in_transit"),
        pytest.param(S.IN_TRANSIT, S.DELIVERED, True, id="in_transit-delivered"),
        pytest.param(S.RELEASED, S.DELIVERED, True, id="skip-ahead"),
        pytest.param(S.PLANNED, S.DELIVERED, True, id="first-to-last"),
        pytest.param(S.PICKED, S.PICKED, False, id="same-stage-twice"),
        pytest.param(S.DELIVERED, S.DELIVERED, False, id="delivered-twice"),
        pytest.param(S.SHIPPED, S.PICKED, False, id="late-picked-after-shipped"),
        pytest.param(S.DELIVERED, S.IN_TRANSIT, False, id="late-in_transit-after-delivered"),
        pytest.param(S.ACKNOWLEDGED, S.RELEASED, False, id="backwards-one"),
        pytest.param(S.DELIVERED, S.PLANNED, False, id="last-to-first"),
        # Pickups: packed -> ready at the branch -> collected.
        pytest.param(S.PACKED, S.READY_FOR_PICKUP, True, id="packed-ready_for_pickup"),
        pytest.param(S.READY_FOR_PICKUP, S.COLLECTED, True, id="ready_for_pickup-collected"),
        pytest.param(S.RELEASED, S.READY_FOR_PICKUP, True, id="released-skip-to-ready"),
        pytest.param(S.READY_FOR_PICKUP, S.READY_FOR_PICKUP, False, id="ready-twice"),
        pytest.param(S.READY_FOR_PICKUP, S.PACKED, False, id="late-packed-after-ready"),
        pytest.param(S.COLLECTED, S.READY_FOR_PICKUP, False, id="late-ready-after-collected"),
        pytest.param(S.COLLECTED, S.COLLECTED, False, id="collected-twice"),
        # One line for both methods: advances() does not know the method, so a stray COLLECTED for a delivered
        # shipment would still move it (harmless: both are finished and have left the node).
        pytest.param(S.DELIVERED, S.COLLECTED, True, id="collected-is-last-on-the-path"),
        # Ended shipments never move, and nothing reported can end one.
        pytest.param(S.CANCELLED, S.DELIVERED, False, id="cancelled-then-delivered"),
        pytest.param(S.CANCELLED, S.COLLECTED, False, id="cancelled-then-collected"),
        pytest.param(S.LOST, S.DELIVERED, False, id="lost-then-delivered"),
        pytest.param(S.LOST, S.IN_TRANSIT, False, id="lost-then-in_transit"),
        pytest.param(S.PLANNED, S.CANCELLED, False, id="reported-cancelled"),
        pytest.param(S.IN_TRANSIT, S.LOST, False, id="reported-lost"),
        pytest.param(S.CANCELLED, S.LOST, False, id="cancelled-lost"),
        pytest.param(S.LOST, S.CANCELLED, False, id="lost-cancelled"),
    ],
)
def test_advances_table(current, reported, expected):
    assert advances(current, reported) is expected


PAIRS = list(itertools.product(SHIPMENT_PROGRESSION, repeat=2))


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_advances_is_strict_and_total_on_the_path(a, b):
    # Irreflexive, asymmetric, and any two distinct stages on the path are comparable one way exactly.
    if a == b:
        assert not advances(a, b)
    else:
        assert advances(a, b) != advances(b, a)
    assert advances(a, b) == (SHIPMENT_PROGRESSION.index(b) > SHIPMENT_PROGRESSION.index(a))


@pytest.mark.parametrize("ended", sorted(ENDED_STAGES), ids=str)
def test_ended_stages_neither_move_nor_are_reached(ended):
    for other in ShipmentStage:
        assert not advances(ended, other), other
        assert not advances(other, ended), other


def test_advances_is_transitive():
    for a, b, c in itertools.product(ShipmentStage, repeat=3):
        if advances(a, b) and advances(b, c):
            assert advances(a, c), (a, b, c)


@pytest.mark.parametrize(
    ("stage", "left"),
    [
        (S.PLANNED, False),
        (S.RELEASED, False),
        (S.ACKNOWLEDGED, False),
        (S.PICKED, False),
        (S.PACKED, False),
        (S.READY_FOR_PICKUP, False),
        (S.SHIPPED, True),
        (S.IN_TRANSIT, True),
        (S.DELIVERED, True),
        (S.COLLECTED, True),
        # Cancelled before it left (the stock was given back); lost after it left (the stock is gone).
        (S.CANCELLED, False),
        (S.LOST, True),
    ],
    ids=lambda v: str(v),
)
def test_has_left_node(stage, left):
    assert has_left_node(stage) is left


def test_on_the_path_a_shipment_has_left_from_shipped_on():
    on_path_left = {s for s in SHIPMENT_PROGRESSION if has_left_node(s)}
    assert on_path_left == set(SHIPMENT_PROGRESSION[SHIPMENT_PROGRESSION.index(S.SHIPPED) :])


def test_finished_and_ended_stages():
    assert {S.DELIVERED, S.COLLECTED} == FINISHED_STAGES
    assert {S.CANCELLED, S.LOST} == ENDED_STAGES
    assert not FINISHED_STAGES & ENDED_STAGES
    # Handed over to the customer: the stock left the node, so compensation is a return, not a cancel.
    assert all(has_left_node(s) for s in FINISHED_STAGES)


def test_reportable_stages_are_from_acknowledged_on():
    assert {
        S.ACKNOWLEDGED,
        S.PICKED,
        S.PACKED,
        S.READY_FOR_PICKUP,
        S.SHIPPED,
        S.IN_TRANSIT,
        S.DELIVERED,
        S.COLLECTED,
    } == REPORTABLE_STAGES
    assert S.PLANNED not in REPORTABLE_STAGES
    assert S.RELEASED not in REPORTABLE_STAGES
    assert not REPORTABLE_STAGES & ENDED_STAGES


@pytest.mark.parametrize(
    ("stage", "terminal"),
    [
        (OrderStage.RECEIVED, False),
        (OrderStage.VALIDATED, False),
        (OrderStage.ON_HOLD, False),
        (OrderStage.REJECTED, True),
        (OrderStage.PLANNED, False),
        (OrderStage.RESERVED, False),
        (OrderStage.BACKORDERED, False),
        (OrderStage.RELEASED, False),
        (OrderStage.IN_FULFILMENT, False),
        (OrderStage.COMPLETED, True),
        (OrderStage.CANCELLED, True),
        (OrderStage.FAILED, True),
    ],
    ids=lambda v: str(v),
)
def test_order_stage_is_terminal(stage, terminal):
    assert stage.is_terminal is terminal


def test_every_order_stage_is_in_the_terminal_table():
    # A new stage must be classified on purpose: this fails until the table above is extended.
    assert {s.value for s in OrderStage} == {
        "received",
        "validated",
        "on_hold",
        "rejected",
        "planned",
        "reserved",
        "backordered",
        "released",
        "in_fulfilment",
        "completed",
        "cancelled",
        "failed",
    }
