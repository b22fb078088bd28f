"""Order and shipment stages: the progression, and the one rule for moving along it."""

from __future__ import annotations

import itertools

import pytest

from domain.lifecycle import (
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
        "shipped",
        "in_transit",
        "delivered",
    ]


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
    ],
)
def test_advances_table(current, reported, expected):
    assert advances(current, reported) is expected


PAIRS = list(itertools.product(ShipmentStage, repeat=2))


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_advances_is_strict_and_total(a, b):
    # Irreflexive, asymmetric, and any two distinct stages are comparable one way exactly.
    if a == b:
        assert not advances(a, b)
    else:
        assert advances(a, b) != advances(b, a)
    assert advances(a, b) == (SHIPMENT_PROGRESSION.index(b) > SHIPMENT_PROGRESSION.index(a))


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
        (S.SHIPPED, True),
        (S.IN_TRANSIT, True),
        (S.DELIVERED, True),
    ],
    ids=lambda v: str(v),
)
def test_has_left_node(stage, left):
    assert has_left_node(stage) is left


def test_reportable_stages_are_from_acknowledged_on():
    assert {
        S.ACKNOWLEDGED,
        S.PICKED,
        S.PACKED,
        S.SHIPPED,
        S.IN_TRANSIT,
        S.DELIVERED,
    } == REPORTABLE_STAGES
    assert S.PLANNED not in REPORTABLE_STAGES
    assert S.RELEASED not in REPORTABLE_STAGES


@pytest.mark.parametrize(
    ("stage", "terminal"),
    [
        (OrderStage.RECEIVED, False),
        (OrderStage.VALIDATED, False),
        (OrderStage.REJECTED, True),
        (OrderStage.PLANNED, False),
        (OrderStage.RESERVED, False),
        (OrderStage.RELEASED, False),
        (OrderStage.IN_FULFILMENT, False),
        (OrderStage.COMPLETED, True),
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
        "rejected",
        "planned",
        "reserved",
        "released",
        "in_fulfilment",
        "completed",
        "failed",
    }
