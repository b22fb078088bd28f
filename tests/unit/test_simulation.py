"""Comparing two decisions per order, and adding up each side of a simulation."""

from __future__ import annotations

from datetime import date

import pytest

from domain.simulation import Difference, Outcome, compare, summarise, totals

PLACED = Outcome(
    fulfillable=True,
    node_ids=["DC-1"],
    shipments=1,
    cost_minor=900,
    distance_km=120.0,
    promised_date=date(2026, 12, 3),
    promised_days=2,
)
NOWHERE = Outcome.unfulfillable("no strategy can place the order")


@pytest.mark.parametrize(
    ("active", "candidate", "expected"),
    [
        pytest.param(PLACED, PLACED, [], id="same"),
        pytest.param(PLACED, NOWHERE, [Difference.FULFILLABLE], id="lost"),
        pytest.param(NOWHERE, PLACED, [Difference.FULFILLABLE], id="gained"),
        pytest.param(NOWHERE, Outcome.unfulfillable("other reason"), [], id="neither"),
        pytest.param(PLACED, PLACED.model_copy(update={"cost_minor": 700}), [Difference.COST], id="cost"),
        pytest.param(
            PLACED,
            PLACED.model_copy(update={"node_ids": ["DC-1", "ST-2"], "shipments": 2, "cost_minor": 1500}),
            [Difference.NODES, Difference.SHIPMENTS, Difference.COST],
            id="split",
        ),
        pytest.param(
            PLACED,
            PLACED.model_copy(update={"node_ids": ["DC-2"]}),
            [Difference.NODES],
            id="other-node-same-cost",
        ),
        pytest.param(
            PLACED,
            PLACED.model_copy(update={"promised_date": date(2026, 12, 4), "promised_days": 3}),
            [Difference.PROMISED_DATE],
            id="later",
        ),
        pytest.param(
            PLACED, PLACED.model_copy(update={"backordered_units": 2}), [Difference.BACKORDERS], id="backorders"
        ),
        pytest.param(
            PLACED, PLACED.model_copy(update={"distance_km": 80.0}), [], id="distance-alone-is-not-a-new-decision"
        ),
    ],
)
def test_compare(active: Outcome, candidate: Outcome, expected: list[Difference]) -> None:
    comparison = compare("A-1", "USD", active, candidate)
    assert comparison.differences == expected
    assert comparison.changed is bool(expected)


def test_totals_of_one_side() -> None:
    split = Outcome(
        fulfillable=True,
        node_ids=["DC-1", "ST-2"],
        shipments=2,
        cost_minor=1_500,
        distance_km=300.0,
        promised_date=date(2026, 12, 5),
        promised_days=4,
        backordered_units=1,
    )
    unlocated = Outcome(fulfillable=True, node_ids=["DC-1"], shipments=1, cost_minor=400)
    result = totals([("USD", PLACED), ("USD", split), ("EUR", unlocated), ("USD", NOWHERE)])
    assert result.orders == 4
    assert result.fulfillable == 3
    assert result.unfulfillable == 1
    assert result.cost_minor == {"EUR": 400, "USD": 2_400}
    assert result.shipments == 4
    assert result.shipments_per_order == pytest.approx(4 / 3, abs=0.01)
    # Only the shipments of orders with a known distance count: 120 + 300 over 3 shipments.
    assert result.distance_km == 420.0
    assert result.mean_distance_km == 140.0
    assert result.mean_promised_days == 3.0
    assert result.backordered_units == 1


def test_totals_of_nothing() -> None:
    result = totals([])
    assert result.orders == 0
    assert result.cost_minor == {}
    assert result.shipments_per_order is None
    assert result.mean_distance_km is None
    assert result.mean_promised_days is None


def test_summary_counts_changes_by_kind() -> None:
    cheaper = PLACED.model_copy(update={"cost_minor": 500, "node_ids": ["DC-9"]})
    comparisons = [
        compare("A-1", "USD", PLACED, PLACED),
        compare("A-2", "USD", PLACED, cheaper),
        compare("A-3", "USD", PLACED, NOWHERE),
    ]
    summary = summarise(comparisons)
    assert summary.orders == 3
    assert summary.changed == 2
    assert summary.by_difference == {Difference.FULFILLABLE: 1, Difference.NODES: 1, Difference.COST: 1}
    assert summary.active.cost_minor == {"USD": 2_700}
    assert summary.candidate.cost_minor == {"USD": 1_400}
    assert summary.candidate.unfulfillable == 1
