"""The sourcing engine ``plan()`` against what docs/rules.md promises: tables of small networks, one per filter,
ranking step, split and transfer policy, fallback, selector and shipping rule, then properties over random ones.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from datetime import time, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ErrorType, OutOfStock
from domain.network import Capability, NetworkSnapshot, NodeKind, NodeStatus, NodeView
from domain.orders import ServiceLevel
from domain.policy import BUILTIN_VERSION, Method, PolicyDocument, TransferPolicy
from domain.shipping import choose_service, zone_for
from domain.sourcing import MAX_EXPLAINED_CANDIDATES, Plan
from tests.unit.sourcing_support import (
    DEST,
    NOW,
    TODAY,
    WEEKDAYS,
    customer,
    lane,
    node,
    order,
    outcome,
    policy,
    run,
    service,
    sku,
    snapshot,
    strategy,
    summary,
    verdict,
)

# --- choosing nodes under the built-in policy (fewest shipments, then distance, then node priority) ------------

CHOICE_CASES = [
    pytest.param([node("N1", 1)], {"N1": {"A": 5}}, ["A:2"], ["N1: L1x2"], id="single-node-has-everything"),
    pytest.param(
        [node("N1", 1)], {"N1": {"A": 2, "B": 1}}, ["A:2", "B:1"], ["N1: L1x2 L2x1"], id="single-node-exact-stock"
    ),
    pytest.param(
        [node("FAR", 5), node("NEAR", 1)],
        {"FAR": {"A": 9}, "NEAR": {"A": 9}},
        ["A:3"],
        ["NEAR: L1x3"],
        id="nearest-complete-wins",
    ),
    pytest.param(
        [node("FAR", 5), node("NEAR", 1)],
        {"FAR": {"A": 9, "B": 9}, "NEAR": {"A": 9}},
        ["A:3", "B:1"],
        ["FAR: L1x3 L2x1"],
        id="farther-complete-beats-nearer-split",
    ),
    pytest.param(
        [node("Z", 2, priority=10), node("A", 2, priority=50)],
        {"Z": {"A": 1}, "A": {"A": 1}},
        ["A:1"],
        ["Z: L1x1"],
        id="lower-priority-value-breaks-distance-tie",
    ),
    pytest.param(
        [node("N2", 2), node("N1", 2)],
        {"N2": {"A": 1}, "N1": {"A": 1}},
        ["A:1"],
        ["N1: L1x1"],
        id="node-id-breaks-full-tie",
    ),
    pytest.param(
        [node("N1", 1)], {"N1": {"A": 5}}, ["A:2", "A:3"], ["N1: L1x2 L2x3"], id="same-sku-on-two-lines-summed"
    ),
    pytest.param(
        [node("N1", 1), node("N2", 2)],
        {"N1": {"A": 4}, "N2": {"A": 9}},
        ["A:2", "A:3"],
        ["N2: L1x2 L2x3"],
        id="same-sku-lines-need-total-at-one-node",
    ),
    pytest.param(
        [node("N1", 1), node("N2", 2)],
        {"N1": {"A": 5}, "N2": {"B": 5}},
        ["A:2", "B:3"],
        ["N1: L1x2", "N2: L2x3"],
        id="split-one-sku-per-node",
    ),
    pytest.param(
        [node("N1", 1), node("N2", 2), node("N3", 3)],
        {"N1": {"A": 2}, "N2": {"A": 2}, "N3": {"A": 1}},
        ["A:5"],
        ["N1: L1x2", "N2: L1x2", "N3: L1x1"],
        id="split-one-line-nearest-first",
    ),
    pytest.param(
        # The greedy split takes the node covering the most of what is missing (NEAR, 3 units, against FAR's 2),
        # then the nearest for the rest (MID, before FAR).
        [node("NEAR", 1), node("MID", 2), node("FAR", 5)],
        {"NEAR": {"B": 9}, "MID": {"A": 1}, "FAR": {"A": 9, "B": 1}},
        ["A:1", "B:3"],
        ["MID: L1x1", "NEAR: L2x3"],
        id="split-covering-most-first",
    ),
    pytest.param(
        [node("NEAR", 1), node("FAR", 5)],
        {"NEAR": {"A": 1, "B": 9}, "FAR": {"A": 9, "B": 9}},
        ["A:2", "B:2"],
        ["FAR: L1x2 L2x2"],
        id="complete-node-beats-split",
    ),
]


@pytest.mark.parametrize(("nodes", "atp", "lines", "expected"), CHOICE_CASES)
def test_builtin_policy_chooses_nodes(nodes, atp, lines, expected):
    result = run(order(*lines), snapshot(nodes, atp))
    assert summary(result) == expected
    assert result.explanation.rule == "default/nearest"
    assert result.explanation.policy_version == BUILTIN_VERSION


@pytest.mark.parametrize(
    ("lines", "atp"),
    [
        pytest.param(["A:2", "B:3"], {"N1": {"A": 5}, "N2": {"B": 5}}, id="two-skus-two-nodes"),
        pytest.param(["A:5"], {"N1": {"A": 2}, "N2": {"A": 2}, "N3": {"A": 1}}, id="one-line-three-nodes"),
        pytest.param(["A:3", "A:3", "B:1"], {"N1": {"A": 4}, "N2": {"A": 2, "B": 1}}, id="same-sku-across-lines"),
    ],
)
def test_split_allocations_cover_every_line_exactly(lines, atp):
    o = order(*lines)
    nodes = [node(n, i) for i, n in enumerate(sorted(atp), start=1)]
    result = run(o, snapshot(nodes, atp))
    taken = Counter[str]()
    for a in result.allocations:
        taken[a.line_id] += a.quantity
    assert taken == {line.line_id: line.quantity for line in o.lines}
    assert len(result.shipments) > 1
    assert result.explanation.decision.startswith(f"split across {', '.join(result.node_ids)}")


@pytest.mark.parametrize(
    ("atp", "attempt", "shipment_ids"),
    [
        pytest.param({"N1": {"A": 1, "B": 1}}, 1, ["A-1001:p1:N1"], id="single-attempt-1"),
        pytest.param({"N1": {"A": 1, "B": 1}}, 4, ["A-1001:p4:N1"], id="single-attempt-4"),
        pytest.param({"N1": {"A": 1}, "N2": {"B": 1}}, 2, ["A-1001:p2:N1", "A-1001:p2:N2"], id="split-attempt-2"),
    ],
)
def test_ids_carry_the_attempt(atp, attempt, shipment_ids):
    result = run(order("A:1", "B:1"), snapshot([node("N1", 1), node("N2", 2)], atp), attempt=attempt)
    assert result.attempt == attempt
    assert result.plan_id == f"A-1001:plan-{attempt}"
    assert [s.shipment_id for s in result.shipments] == shipment_ids


@pytest.mark.parametrize(
    ("nodes", "atp", "lines", "expected"),
    [
        pytest.param(
            [node("N2", 50, priority=1), node("N1", 1, priority=5), node("N0", 1, priority=5)],
            {"N0": {"A": 1}, "N1": {"A": 1}, "N2": {"A": 1}},
            ["A:1"],
            ["N2: L1x1"],
            id="priority-then-id-ignoring-location",
        ),
        pytest.param(
            [node("N2"), node("N1")], {"N1": {"A": 1}, "N2": {"A": 1}}, ["A:2"], ["N1: L1x1", "N2: L1x1"], id="split"
        ),
    ],
)
def test_plan_without_destination(nodes, atp, lines, expected):
    first = run(order(*lines), snapshot(nodes, atp), destination=None)
    second = run(order(*lines), snapshot(list(reversed(nodes)), atp), destination=None)
    assert summary(first) == expected
    assert first.model_dump() == second.model_dump()
    assert all(c.distance_km is None for c in first.explanation.candidates)
    assert "destination not located, so distance was not used" in first.explanation.decision


# --- filters: each removes the node that would otherwise win, recorded under its name --------------------------
#
# X would win (node priority 1 against 50) and has everything; OK is the only other node. Each case changes one
# thing about X, the customer, the order or the strategy's filters, and X must be removed for that reason alone.

PRIORITY_ONLY = ("node_priority",)


def _contest(case: dict[str, Any]) -> Plan:
    x = node("X", 5, priority=1, **case.get("x", {}))
    ok = node("OK", 1, priority=50, **case.get("ok", {}))
    snap = snapshot(
        [x, ok],
        {"X": case.get("x_atp", {"A": 9}), "OK": case.get("ok_atp", {"A": 9})},
        skus=case.get("skus", ()),
        cust=case.get("cust"),
        services=case.get("services", ()),
    )
    pol = policy(strategy("s", *PRIORITY_ONLY, filters=case.get("filters", {})))
    return run(order(*case.get("lines", ["A:1"]), **case.get("order", {})), snap, pol, **case.get("kwargs", {}))


FILTER_CASES = [
    pytest.param({"kwargs": {"excluded_nodes": {"X"}}}, "excluded", "excluded after a failure there", id="excluded"),
    pytest.param(
        {"kwargs": {"excluded_nodes": {"X"}}, "x": {"paused": True}},
        "excluded",
        "excluded after a failure there",
        id="excluded-named-before-status",
    ),
    pytest.param(
        {"cust": customer(excluded=["X"])}, "customer", "customer C-1 excludes this node", id="customer-excludes"
    ),
    pytest.param(
        {"cust": customer(allowed=["OK"])}, "customer", "not among customer C-1's allowed nodes", id="customer-allows"
    ),
    pytest.param({"x": {"paused": True}}, "status", "node is paused", id="paused"),
    pytest.param(
        {"x": {"kind": NodeKind.STORE}, "filters": {"node_kinds": ["dc", "3pl"]}},
        "kind",
        "store is not among dc, 3pl",
        id="node-kinds",
    ),
    pytest.param({"x": {"caps": ["pickup"]}}, "capability", "cannot ship", id="cannot-ship"),
    pytest.param(
        {
            "x": {"kind": NodeKind.STORE},
            "ok": {"kind": NodeKind.STORE, "caps": ["ship", "ship_from_store"]},
            "filters": {"capabilities": ["ship_from_store"]},
        },
        "capability",
        "cannot ship_from_store",
        id="extra-capability",
    ),
    pytest.param(
        {"x": {"country": "MX"}, "filters": {"countries": ["US", "CA"]}},
        "geography",
        "country MX is not among US, CA",
        id="countries",
    ),
    pytest.param(
        {"x": {"region": "OK"}, "filters": {"regions": ["TX"]}},
        "geography",
        "region OK is not among TX",
        id="regions",
    ),
    pytest.param(
        {"x": {"country": "MX"}, "filters": {"same_country": True}}, "geography", "in MX, not US", id="same-country"
    ),
    pytest.param(
        {"filters": {"max_distance_km": 300}}, "geography", "556 km away, beyond 300 km", id="max-distance-km"
    ),
    pytest.param(
        {"x": {"kind": NodeKind.STORE}, "skus": [sku("A", hazmat=True)], "filters": {"handling": {"hazmat": ["dc"]}}},
        "handling",
        "hazmat items only from dc",
        id="handling-hazmat",
    ),
    pytest.param(
        {
            "x": {"kind": NodeKind.DROPSHIP},
            "skus": [sku("A"), sku("B", oversize=True)],
            "x_atp": {"A": 9, "B": 9},
            "ok_atp": {"A": 9, "B": 9},
            "lines": ["A:1", "B:1"],
            "filters": {"handling": {"oversize": ["dc", "3pl"]}},
        },
        "handling",
        "oversize items only from dc, 3pl",
        id="handling-oversize",
    ),
    pytest.param(
        {"x": {"orders_per_day": 5, "used_orders": {TODAY: 5}}},
        "capacity",
        "no order capacity left on 2026-03-04",
        id="capacity-orders",
    ),
    pytest.param(
        {"x": {"units_per_day": 40, "used_units": {TODAY: 41}}},
        "capacity",
        "no unit capacity left on 2026-03-04",
        id="capacity-units",
    ),
    pytest.param(
        # 15:00 UTC on the 4th is 04:00 on the 5th in Auckland: the node's own day is full.
        {
            "x": {
                "timezone": "Pacific/Auckland",
                "orders_per_day": 5,
                "used_orders": {TODAY + timedelta(days=1): 5, TODAY: 0},
            }
        },
        "capacity",
        "no order capacity left on 2026-03-05",
        id="capacity-local-day",
    ),
    pytest.param(
        # X is in zone 4 (556 km); the only service reaches zones 1 to 3.
        {"services": [service("STD", zones=("1", "2", "3"))]},
        "carrier",
        "no standard carrier service for zone 4",
        id="carrier-zone",
    ),
    pytest.param(
        {
            "services": [service("STD"), service("EXP", level="expedited", zones=("1", "2", "3"))],
            "order": {"service_level": "expedited"},
        },
        "carrier",
        "no expedited carrier service for zone 4",
        id="carrier-level",
    ),
    pytest.param(
        {"x_atp": {"A": 0, "B": 7}}, "stock", "no ordered SKU with 1+ units after safety stock", id="stock-none"
    ),
    pytest.param(
        {"x_atp": {"A": -2}}, "stock", "no ordered SKU with 1+ units after safety stock", id="stock-negative-atp"
    ),
    pytest.param(
        {"x_atp": {"A": 2}, "filters": {"safety_stock": 2}},
        "stock",
        "no ordered SKU with 1+ units after safety stock",
        id="safety-stock",
    ),
    pytest.param(
        {"x": {"kind": NodeKind.STORE}, "x_atp": {"A": 2}, "filters": {"safety_stock_by_kind": {"store": 2}}},
        "stock",
        "no ordered SKU with 1+ units after safety stock",
        id="safety-stock-by-kind",
    ),
    pytest.param(
        {"x_atp": {"A": 2}, "filters": {"min_atp": 3}},
        "stock",
        "no ordered SKU with 3+ units after safety stock",
        id="min-atp",
    ),
]


def test_filter_contest_without_a_filter_x_wins():
    result = _contest({})
    assert result.node_ids == ["X"]
    assert verdict(result, "X").rank == 1


@pytest.mark.parametrize(("case", "filter_name", "reason"), FILTER_CASES)
def test_filter_removes_node_with_its_name_and_reason(case, filter_name, reason):
    result = _contest(case)
    assert result.node_ids == ["OK"]
    x = verdict(result, "X")
    assert (x.eliminated_by, x.reason, x.rank) == (filter_name, reason, None)
    assert x.scores == {}
    assert result.explanation.eliminated_by_filter == {filter_name: 1}
    assert verdict(result, "OK").rank == 1


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            {"cust": customer(excluded=["X"]), "filters": {"respect_customer_nodes": False}},
            id="respect-customer-nodes-false-excluded",
        ),
        pytest.param(
            {"cust": customer(allowed=["OK"]), "filters": {"respect_customer_nodes": False}},
            id="respect-customer-nodes-false-allowed",
        ),
        pytest.param({"cust": customer(allowed=["OK", "X"])}, id="customer-allows-x"),
        pytest.param({"x": {"paused": True}, "filters": {"allow_paused": True}}, id="allow-paused"),
        pytest.param({"x": {"kind": NodeKind.STORE}, "filters": {"node_kinds": ["store"]}}, id="node-kind-listed"),
        pytest.param({"x": {"country": "MX"}, "filters": {"countries": ["MX", "US"]}}, id="country-listed"),
        pytest.param({"filters": {"max_distance_km": 600}}, id="within-max-distance"),
        pytest.param(
            {"x": {"kind": NodeKind.STORE}, "filters": {"handling": {"hazmat": ["dc"]}}}, id="handling-not-hazmat"
        ),
        pytest.param(
            {"x": {"orders_per_day": 5, "used_orders": {TODAY: 5}}, "filters": {"require_capacity": False}},
            id="require-capacity-false",
        ),
        pytest.param({"x": {"orders_per_day": 5, "used_orders": {TODAY: 4}}}, id="capacity-one-order-left"),
        pytest.param(
            # The UTC day is full, but in Auckland it is already the 5th, which is empty.
            {"x": {"timezone": "Pacific/Auckland", "orders_per_day": 5, "used_orders": {TODAY: 5}}},
            id="capacity-other-local-day",
        ),
        pytest.param({"x_atp": {"A": 3}, "filters": {"safety_stock": 2}}, id="one-unit-above-safety-stock"),
        pytest.param(
            {"x_atp": {"A": 2}, "filters": {"safety_stock": 5, "safety_stock_by_kind": {"dc": 1}}},
            id="safety-stock-by-kind-overrides-default",
        ),
        pytest.param({"x_atp": {"A": 3}, "filters": {"min_atp": 3}}, id="min-atp-reached"),
        pytest.param({"services": [service("STD")]}, id="carrier-reaches-zone"),
    ],
)
def test_filter_that_does_not_apply_leaves_x_the_winner(case):
    result = _contest(case)
    assert result.node_ids == ["X"]
    assert verdict(result, "X").eliminated_by is None


def test_safety_stock_is_never_planned_even_when_a_node_is_otherwise_kept():
    # Docs: a store with 3 units offers 1 (safety stock 2). Two units need both stores.
    nodes = [node("S1", 1, kind=NodeKind.STORE), node("S2", 2, kind=NodeKind.STORE)]
    pol = policy(strategy("s", "fewest_shipments", "distance", filters={"safety_stock_by_kind": {"store": 2}}))
    result = run(order("A:2"), snapshot(nodes, {"S1": {"A": 3}, "S2": {"A": 3}}), pol)
    assert summary(result) == ["S1: L1x1", "S2: L1x1"]
    assert verdict(result, "S1").scores["units_available"] == 1


def test_pickup_removes_every_other_node_by_method():
    nodes = [node("ST", 3, kind=NodeKind.STORE, caps=["pickup"]), node("DC", 1, caps=["ship", "pickup"])]
    result = run(order("A:2"), snapshot(nodes, {"ST": {"A": 5}, "DC": {"A": 9}}), pickup_node_id="ST")
    assert result.method is Method.PICKUP
    assert summary(result) == ["ST: L1x2"]
    (shipment,) = result.shipments
    assert (shipment.method, shipment.carrier, shipment.service_level, shipment.zone) == (
        Method.PICKUP,
        None,
        None,
        None,
    )
    assert (verdict(result, "DC").eliminated_by, verdict(result, "DC").reason) == ("method", "not the pickup node")


def test_pickup_node_without_pickup_capability_cannot_place_the_order():
    nodes = [node("ST", 3, kind=NodeKind.STORE, caps=["ship"])]
    with pytest.raises(OutOfStock) as err:
        run(order("A:2"), snapshot(nodes, {"ST": {"A": 5}}), pickup_node_id="ST")
    assert err.value.details == {"A": 2}


# --- ranking: each step alone flips the decision, and later steps only break earlier ties --------------------
#
# N1 wins every tie (node id), so N2 winning shows the step decided.

RANKING_CASES = [
    pytest.param(
        [node("N1"), node("N2")], {}, ["home_branch"], {"cust": customer(home="N2")}, ["N2"], id="home-branch"
    ),
    pytest.param([node("N1"), node("N2")], {}, ["home_branch"], {}, ["N1"], id="home-branch-no-home-ties"),
    pytest.param(
        [node("N1", priority=50), node("N2", priority=10)], {}, ["node_priority"], {}, ["N2"], id="node-priority"
    ),
    pytest.param(
        [node("N1", priority=1), node("N2", priority=100)],
        {},
        [{"step": "node_priority", "tiers": [["N2"], ["N3"]]}],
        {},
        ["N2"],
        id="node-priority-tiers-over-priority",
    ),
    pytest.param(
        [node("N1", priority=1), node("N2", priority=100), node("N3", priority=1)],
        {"N3": {"A": 9}},
        [{"step": "node_priority", "tiers": [["N4"], ["N2"]]}],
        {},
        ["N2"],
        id="node-priority-unlisted-after-every-tier",
    ),
    pytest.param([node("N1", 2), node("N2", 1)], {}, ["distance"], {}, ["N2"], id="distance"),
    pytest.param(
        # 144.6 km against 122.3 km: nearer wins ...
        [node("N1", 1.3, priority=1), node("N2", 1.1, priority=50)],
        {},
        ["distance", "node_priority"],
        {},
        ["N2"],
        id="distance-exact",
    ),
    pytest.param(
        # ... but in 100 km buckets both are in bucket 1, so node priority decides.
        [node("N1", 1.3, priority=1), node("N2", 1.1, priority=50)],
        {},
        [{"step": "distance", "bucket_km": 100}, "node_priority"],
        {},
        ["N1"],
        id="distance-bucket-lets-next-step-decide",
    ),
    pytest.param(
        [node("N1", 1.3, priority=1), node("N2", 1.1, priority=50)],
        {},
        [{"step": "distance", "bucket_km": 20}, "node_priority"],
        {},
        ["N2"],
        id="distance-bucket-too-small-to-tie",
    ),
    pytest.param(
        # Same place, same hours; N1 needs three working days to pick.
        [node("N1", hours=WEEKDAYS, pick_pack_minutes=3 * 600), node("N2", hours=WEEKDAYS)],
        {},
        ["delivery_speed"],
        {"services": [service("STD", days=2)]},
        ["N2"],
        id="delivery-speed-pick-pack",
    ),
    pytest.param(
        # N1 is nearer, but zone 3 takes five days and zone 4 one.
        [node("N1", 3, hours=WEEKDAYS), node("N2", 5, hours=WEEKDAYS)],
        {},
        ["delivery_speed", "distance"],
        {"services": [service("STD", days={z: 1 if z == "4" else 5 for z in ("1", "2", "3", "4")})]},
        ["N2"],
        id="delivery-speed-transit-days",
    ),
    pytest.param(
        [node("N1"), node("N2", hours=WEEKDAYS)],
        {},
        ["delivery_speed"],
        {"services": [service("STD")]},
        ["N2"],
        id="delivery-speed-no-hours-ranks-last",
    ),
    pytest.param(
        [node("N1", kind=NodeKind.STORE), node("N2", kind=NodeKind.DC)], {}, ["total_cost"], {}, ["N2"], id="total-cost"
    ),
    pytest.param(
        # Store 400 against DC 150, both in the 0..999 band: distance decides.
        [node("N1", 1, kind=NodeKind.STORE), node("N2", 2, kind=NodeKind.DC)],
        {},
        [{"step": "total_cost", "tolerance_minor": 1000}, "distance"],
        {},
        ["N1"],
        id="total-cost-tolerance-lets-next-step-decide",
    ),
    pytest.param(
        [node("N1", 1, kind=NodeKind.STORE), node("N2", 2, kind=NodeKind.DC)],
        {},
        [{"step": "total_cost", "tolerance_minor": 100}, "distance"],
        {},
        ["N2"],
        id="total-cost-tolerance-below-difference",
    ),
    pytest.param(
        # Same handling; the carrier rate is by zone: N1 in zone 3 pays 900, N2 in zone 2 pays 500.
        [node("N1", 3), node("N2", 2)],
        {},
        ["total_cost"],
        {
            "services": [
                service("STD", zones=("2",), base_minor=500),
                service("STD-FAR", zones=("3",), base_minor=900),
            ]
        },
        ["N2"],
        id="total-cost-carrier-rate",
    ),
    pytest.param(
        [node("N1", 1), node("N2", 1.2), node("N3", 5)],
        {"N1": {"A": 9}, "N2": {"B": 9}, "N3": {"A": 9, "B": 9}},
        ["fewest_shipments", "distance"],
        {"lines": ["A:1", "B:1"]},
        ["N3"],
        id="fewest-shipments-before-distance",
    ),
    pytest.param(
        [node("N1", 1), node("N2", 1.2), node("N3", 5)],
        {"N1": {"A": 9}, "N2": {"B": 9}, "N3": {"A": 9, "B": 9}},
        ["distance", "fewest_shipments"],
        {"lines": ["A:1", "B:1"]},
        ["N1", "N2"],
        id="distance-before-fewest-shipments",
    ),
    pytest.param(
        # Two of three leaves N1 a third of its stock; N2 keeps 80 %.
        [node("N1"), node("N2")],
        {"N1": {"A": 3}, "N2": {"A": 10}},
        ["inventory_balance"],
        {"lines": ["A:2"]},
        ["N2"],
        id="inventory-balance",
    ),
    pytest.param(
        [node("N1", orders_per_day=10, used_orders={TODAY: 8}), node("N2", orders_per_day=10, used_orders={TODAY: 1})],
        {},
        ["capacity_headroom"],
        {},
        ["N2"],
        id="capacity-headroom",
    ),
    pytest.param(
        [node("N1", orders_per_day=10, used_orders={TODAY: 1}), node("N2")],
        {},
        ["capacity_headroom"],
        {},
        ["N2"],
        id="capacity-headroom-unlimited-counts-as-all",
    ),
    pytest.param(
        [node("N1", 1, kind=NodeKind.STORE), node("N2", 3, kind=NodeKind.DC)],
        {},
        ["total_cost", "distance"],
        {},
        ["N2"],
        id="cost-then-distance",
    ),
    pytest.param(
        [node("N1", 1, kind=NodeKind.STORE), node("N2", 3, kind=NodeKind.DC)],
        {},
        ["distance", "total_cost"],
        {},
        ["N1"],
        id="distance-then-cost",
    ),
    pytest.param([node("N2"), node("N1")], {}, ["fewest_shipments"], {}, ["N1"], id="full-tie-goes-to-node-id"),
]


@pytest.mark.parametrize(("nodes", "atp", "ranking", "extra", "winners"), RANKING_CASES)
def test_ranking_step_decides(nodes, atp, ranking, extra, winners):
    stock = {n.node_id: {"A": 9} for n in nodes} | atp
    snap = snapshot(nodes, stock, cust=extra.get("cust"), services=extra.get("services", ()))
    result = run(order(*extra.get("lines", ["A:1"])), snap, policy(strategy("s", *ranking)))
    assert result.node_ids == winners
    assert result.explanation.ranking == [r if isinstance(r, str) else r["step"] for r in ranking]


def test_a_plan_that_backorders_less_beats_every_ranking_step():
    # ship_available: N1 is nearer and a DC, N2 covers everything; covering more is not negotiable.
    nodes = [node("N1", 1), node("N2", 5, kind=NodeKind.STORE)]
    pol = policy(strategy("s", "distance", "total_cost", split={"mode": "ship_available", "max_shipments": 1}))
    result = run(order("A:5"), snapshot(nodes, {"N1": {"A": 3}, "N2": {"A": 5}}), pol)
    assert result.node_ids == ["N2"]
    assert result.backorders == []


def test_survivor_scores_follow_the_ranking_steps():
    nodes = [node("N1", 1, kind=NodeKind.STORE), node("N2", 2), node("N3", 3, priority=7)]
    steps = ["fewest_shipments", "total_cost", "distance", "node_priority", "home_branch"]
    atp = {"N1": {"A": 4}, "N2": {"A": 1}, "N3": {"A": 4}}
    result = run(order("A:4"), snapshot(nodes, atp, cust=customer(home="N3")), policy(strategy("s", *steps)))
    n1, n2, n3 = (verdict(result, n) for n in ("N1", "N2", "N3"))
    assert list(n1.scores) == [*steps, "units_available"]
    # Covering more ranks first; cost per unit supplied; the home branch scores 0.
    assert (n1.scores["fewest_shipments"], n2.scores["fewest_shipments"]) == (-4, -1)
    assert (n1.scores["total_cost"], n2.scores["total_cost"], n3.scores["total_cost"]) == (100.0, 150.0, 37.5)
    assert n1.scores["distance"] == pytest.approx(111.2, abs=0.1)
    assert (n3.scores["node_priority"], n3.scores["home_branch"], n1.scores["home_branch"]) == (7, 0, 1)
    assert (n1.scores["units_available"], n2.scores["units_available"]) == (4, 1)
    assert [v.node_id for v in sorted(result.explanation.candidates, key=lambda v: v.rank or 0)] == ["N3", "N1", "N2"]
    assert result.node_ids == ["N3"]


# --- split policies ------------------------------------------------------------------------------------------------


def test_split_never_fails_and_the_fallback_places_the_order():
    nodes = [node("N1", 1), node("N2", 2)]
    pol = policy(
        strategy("one-node", "fewest_shipments", split={"mode": "never"}),
        strategy("split", "fewest_shipments", "distance", split={"mode": "allowed", "max_shipments": 2}),
    )
    result = run(order("A:1", "B:1"), snapshot(nodes, {"N1": {"A": 1}, "N2": {"B": 1}}), pol)
    assert summary(result) == ["N1: L1x1", "N2: L2x1"]
    assert result.explanation.rule == "default/split"
    assert result.explanation.strategy == "split"
    assert result.explanation.considered == ["strategy one-node: no single node can fill the whole order"]


@pytest.mark.parametrize(
    ("max_shipments", "expected"),
    [
        pytest.param(3, ["N1: L1x1", "N2: L2x1", "N3: L3x1"], id="three-allowed"),
        pytest.param(2, None, id="two-allowed-three-needed"),
    ],
)
def test_split_allowed_up_to_max_shipments(max_shipments, expected):
    nodes = [node("N1", 1), node("N2", 2), node("N3", 3)]
    pol = policy(strategy("s", "fewest_shipments", "distance", split={"max_shipments": max_shipments}))
    snap = snapshot(nodes, {"N1": {"A": 1}, "N2": {"B": 1}, "N3": {"C": 1}})
    result = outcome(order("A:1", "B:1", "C:1"), snap, pol)
    if expected is not None:
        assert isinstance(result, Plan)
        assert summary(result) == expected
        return
    assert isinstance(result, OutOfStock)
    assert result.message == (
        "no strategy of profile default can place the order (s: cannot cover the order within 2 shipment(s))"
    )
    # The nearest two are taken, and what they leave is the shortfall.
    assert result.details == {"C": 1}


@pytest.mark.parametrize(
    ("atp", "max_shipments", "expected", "backorders"),
    [
        pytest.param({"N1": {"A": 3}}, 3, ["N1: L1x3"], [("L1", "A", 2)], id="network-short"),
        pytest.param(
            {"N1": {"A": 3}, "N2": {"A": 1}}, 1, ["N1: L1x3"], [("L1", "A", 2)], id="limit-short-best-single-node"
        ),
        pytest.param({"N1": {"A": 3}, "N2": {"A": 2}}, 2, ["N1: L1x3", "N2: L1x2"], [], id="covered-by-split"),
    ],
)
def test_ship_available_backorders_what_no_node_can_cover(atp, max_shipments, expected, backorders):
    nodes = [node("N1", 1), node("N2", 2)]
    pol = policy(
        strategy("s", "fewest_shipments", "distance", split={"mode": "ship_available", "max_shipments": max_shipments})
    )
    result = run(order("A:5"), snapshot(nodes, atp), pol)
    assert summary(result) == expected
    assert [(b.line_id, b.sku, b.quantity) for b in result.backorders] == backorders
    if backorders:
        assert result.explanation.decision.endswith("; backordered: 2 x A")


def test_ship_available_backorders_are_per_line():
    pol = policy(strategy("s", split={"mode": "ship_available"}))
    result = run(order("A:2", "A:3", "B:1"), snapshot([node("N1")], {"N1": {"A": 3}}), pol)
    assert summary(result) == ["N1: L1x2 L2x1"]
    assert [(b.line_id, b.sku, b.quantity) for b in result.backorders] == [("L2", "A", 2), ("L3", "B", 1)]


# --- transfers -------------------------------------------------------------------------------------------------
#
# The customer's home branch BR (a store, 111 km away) has 4 blades; Houston (a DC, 445 km away) has 200. The
# primary strategy only ships from within 200 km, so Houston can only help by transferring stock into BR.


def _branch_network(
    lane_hours: int = 9,
    *,
    br_caps: tuple[str, ...] = ("ship", "transfer_destination"),
    lane_days: tuple[str, ...] = (),
    departs: time | None = None,
    others: tuple[NodeView, ...] = (),
) -> NetworkSnapshot:
    nodes = [
        node("BR", 1, kind=NodeKind.STORE, caps=br_caps, hours=WEEKDAYS),
        node("HOU", 4, caps=["ship", "transfer_origin"], hours=WEEKDAYS),
        *others,
    ]
    atp = {"BR": {"A": 4}, "HOU": {"A": 200}, **{n.node_id: {"B": 9} for n in others}}
    lanes = [lane("HOU", "BR", lane_hours, cost_minor=700, days=lane_days, departs=departs)]
    return snapshot(nodes, atp, cust=customer(segment="b2b", home="BR"), lanes=lanes, services=[service("STD")])


def _branch_policy(max_origins: int = 2, *, fallback: bool = True) -> PolicyDocument:
    primary = strategy(
        "branch-or-transfer",
        "home_branch",
        "fewest_shipments",
        "delivery_speed",
        "total_cost",
        filters={"max_distance_km": 200},
        split={"mode": "never"},
        transfer={"max_hours": 48, "max_origins": max_origins},
    )
    nearest = strategy("nearest-split", "fewest_shipments", "distance")
    return policy(primary, *([nearest] if fallback else []))


def test_transfer_into_home_branch_within_max_hours():
    result = run(order("A:10"), _branch_network(9), _branch_policy())
    assert summary(result) == ["BR: L1x4 L1x6@HOU"]
    (shipment,) = result.shipments
    (transfer,) = shipment.transfers_in
    assert (transfer.origin_node_id, transfer.sku, transfer.quantity, transfer.cost_minor) == ("HOU", "A", 6, 700)
    # Houston picks by 17:00 Wednesday, the lane takes 9 h: the blades arrive 02:00 Thursday, and BR (opening at
    # 08:00, two hours to pick) has the order ready at 10:00, the morning after.
    assert transfer.arrives_at == NOW.replace(day=5, hour=2)
    assert shipment.ready_by == NOW.replace(day=5, hour=10)
    assert shipment.ready_by > transfer.arrives_at
    # Store handling 400, the lane 700, the carrier 500.
    assert shipment.cost_minor == 400 + 700 + 500
    assert result.explanation.rule == "default/branch-or-transfer"
    assert result.explanation.engine == "rules"
    assert result.explanation.decision == "consolidate at BR with stock transferred from HOU"
    assert verdict(result, "HOU").eliminated_by == "geography"


@pytest.mark.parametrize(
    ("lane_days", "arrives", "ready"),
    [
        # The truck leaves Thursday 18:00: the blades arrive 03:00 Friday, ready 10:00 Friday.
        pytest.param(("mon", "thu"), NOW.replace(day=6, hour=3), NOW.replace(day=6, hour=10), id="next-departure"),
        # Wednesday's truck (18:00) is still in the yard when Houston is ready at 17:00.
        pytest.param(("wed",), NOW.replace(day=5, hour=3), NOW.replace(day=5, hour=10), id="same-day-departure"),
        # Friday's truck arrives Saturday 03:00, after the 48 hours: the fallback ships from Houston instead.
        pytest.param(("fri",), None, None, id="departure-too-late"),
    ],
)
def test_transfer_lanes_depart_on_their_schedule(lane_days, arrives, ready):
    result = run(order("A:10"), _branch_network(9, lane_days=lane_days, departs=time(18, 0)), _branch_policy())
    if arrives is None:
        assert result.explanation.rule == "default/nearest-split"
        assert "cannot cover A short by 6" in result.explanation.considered[0]
        return
    (shipment,) = result.shipments
    assert shipment.transfers_in[0].arrives_at == arrives
    assert shipment.ready_by == ready


def test_transfer_policy_keeps_only_the_receiving_node_without_stock():
    others = (node("EMPTY", 0.5, caps=["ship", "transfer_destination"]),)
    snap = _branch_network(9, others=others)
    result = run(order("A:10"), snap.model_copy(update={"atp": {**snap.atp, "BR": {}}}), _branch_policy(3))
    assert summary(result) == ["BR: L1x10@HOU"]
    assert (verdict(result, "EMPTY").eliminated_by, verdict(result, "BR").rank) == ("stock", 1)
    assert verdict(result, "BR").scores["units_available"] == 0


def test_transfer_refused_when_too_slow_and_the_fallback_ships():
    result = run(order("A:10"), _branch_network(72), _branch_policy())
    assert result.explanation.rule == "default/nearest-split"
    assert summary(result) == ["HOU: L1x10"]
    (considered,) = result.explanation.considered
    assert considered.startswith("strategy branch-or-transfer: no single node can fill the whole order")
    assert "transfer: transfers arriving within 48 h cannot cover A short by 6" in considered


def test_transfer_needs_the_receiving_node_to_accept_transfers():
    with pytest.raises(OutOfStock) as err:
        run(order("A:10"), _branch_network(9, br_caps=("ship",)), _branch_policy(fallback=False))
    assert "BR cannot receive transfers" in err.value.message


@pytest.mark.parametrize(
    ("max_origins", "expected"),
    [
        pytest.param(3, ["BR: L1x2 L1x3@O1 L1x3@O2 L1x2@O3"], id="three-origins"),
        pytest.param(2, None, id="two-origins-not-enough"),
    ],
)
def test_transfer_max_origins_earliest_arrival_first(max_origins, expected):
    origins = [node(f"O{i}", 4 + i, caps=["transfer_origin"]) for i in (1, 2, 3)]
    snap = snapshot(
        [node("BR", 1, kind=NodeKind.STORE, caps=["ship", "transfer_destination"]), *origins],
        {"BR": {"A": 2}, "O1": {"A": 3}, "O2": {"A": 3}, "O3": {"A": 9}},
        cust=customer(home="BR"),
        # O3 has plenty but arrives last.
        lanes=[lane("O1", "BR", 5), lane("O2", "BR", 6), lane("O3", "BR", 7)],
    )
    result = outcome(order("A:10"), snap, _branch_policy(max_origins, fallback=False))
    if expected is not None:
        assert isinstance(result, Plan)
        assert summary(result) == expected
        assert [t.origin_node_id for t in result.transfers] == ["O1", "O2", "O3"]
        return
    assert isinstance(result, OutOfStock)
    assert "transfers arriving within 48 h cannot cover A short by 2" in result.message


def test_pickup_node_short_gets_a_transfer():
    nodes = [
        node("ST", 3, kind=NodeKind.STORE, caps=["pickup", "transfer_destination"], hours=WEEKDAYS),
        node("DC", 1, caps=["ship", "transfer_origin"], hours=WEEKDAYS),
    ]
    snap = snapshot(nodes, {"DC": {"A": 9}}, lanes=[lane("DC", "ST", 4)])
    pol = policy(strategy("s", split={"mode": "never"}, transfer={"max_hours": 24}))
    result = run(order("A:2"), snap, pol, pickup_node_id="ST")
    assert result.method is Method.PICKUP
    assert summary(result) == ["ST: L1x2@DC"]
    (shipment,) = result.shipments
    assert shipment.method is Method.PICKUP
    arrives_at = shipment.transfers_in[0].arrives_at
    assert shipment.ready_by is not None
    assert arrives_at is not None
    assert shipment.ready_by > arrives_at
    assert result.promised_date() == shipment.ready_by.date()


# --- fallback and failure ------------------------------------------------------------------------------------


def test_all_strategies_fail_out_of_stock_names_each():
    nodes = [node("N1", 1, kind=NodeKind.STORE), node("N2", 2)]
    pol = policy(
        strategy("dcs-only", filters={"node_kinds": ["dc"]}, split={"mode": "never"}),
        strategy("anywhere", split={"mode": "allowed"}),
    )
    with pytest.raises(OutOfStock) as err:
        run(order("A:5", "B:1"), snapshot(nodes, {"N1": {"A": 2}, "N2": {"A": 1}}), pol)
    assert err.value.type is ErrorType.OUT_OF_STOCK
    assert err.value.message == (
        "no strategy of profile default can place the order ("
        "dcs-only: no single node can fill the whole order; "
        "anywhere: not enough stock at eligible nodes: A short by 2, B short by 1)"
    )
    # The details are the primary strategy's shortfall (N2, the only DC, has 1 of 5 A), not the fallback's.
    assert err.value.details == {"A": 4, "B": 1}


@pytest.mark.parametrize(
    ("nodes", "atp", "lines", "excluded", "shortfall"),
    [
        pytest.param([node("N1")], {"N1": {"A": 1}}, ["A:3"], (), {"A": 2}, id="one-sku-short"),
        pytest.param([node("N1")], {}, ["A:1", "B:2"], (), {"A": 1, "B": 2}, id="nothing-anywhere"),
        pytest.param(
            [node("N1"), node("N2")], {"N1": {"A": 2}, "N2": {"A": 2}}, ["A:3", "A:3"], (), {"A": 2}, id="lines-summed"
        ),
        pytest.param(
            [node("N1"), node("N2", paused=True)], {"N1": {"A": 1}, "N2": {"A": 9}}, ["A:2"], (), {"A": 1}, id="paused"
        ),
        pytest.param(
            [node("N1"), node("N2")], {"N1": {"A": 1}, "N2": {"A": 9}}, ["A:2"], ("N2",), {"A": 1}, id="excluded"
        ),
        pytest.param(
            [node("N1"), node("N2", caps=["pickup"])],
            {"N1": {"B": 9}, "N2": {"A": 9}},
            ["A:1", "B:1"],
            (),
            {"A": 1},
            id="cannot-ship",
        ),
        pytest.param([], {}, ["A:1"], (), {"A": 1}, id="empty-network"),
    ],
)
def test_builtin_out_of_stock_reports_shortfall_per_sku(nodes, atp, lines, excluded, shortfall):
    with pytest.raises(OutOfStock) as err:
        run(order(*lines), snapshot(nodes, atp), excluded_nodes=excluded)
    assert err.value.details == shortfall
    for s, qty in shortfall.items():
        assert f"{s} short by {qty}" in err.value.message
    assert err.value.message.startswith("no strategy of profile default can place the order (nearest: ")


# --- profiles and effective dates -----------------------------------------------------------------------------

SELECTOR_PROFILES = [
    {"id": "b2b", "when": {"segments": ["b2b"]}, "strategies": [strategy("b")]},
    {"id": "vip", "when": {"tiers": ["vip"]}, "strategies": [strategy("v")]},
    {"id": "web", "when": {"channels": ["web"]}, "strategies": [strategy("w")]},
    {"id": "big", "when": {"min_value_minor": 50_000}, "strategies": [strategy("g")]},
    {"id": "heavy", "when": {"min_weight_g": 20_000}, "strategies": [strategy("h")]},
    {"id": "pickup", "when": {"methods": ["pickup"]}, "strategies": [strategy("p")]},
    {"id": "canada", "when": {"countries": ["CA"]}, "strategies": [strategy("c")]},
]
SKIPPED = {
    "b2b": "profile b2b: segment b2c not in the list",
    "vip": "profile vip: tier none not in the list",
    "web": "profile web: channel api not in the list",
    "big": "profile big: value 2000 below 50000",
    "heavy": "profile heavy: weight 2000 g below 20000 g",
    "pickup": "profile pickup: method delivery not in the list",
    "canada": "profile canada: country US not in the list",
}


@pytest.mark.parametrize(
    ("order_kw", "cust", "weight_g", "pickup", "rule"),
    [
        pytest.param({}, customer(segment="b2b"), 1000, None, "b2b/b", id="segment"),
        pytest.param({}, customer(tier="vip"), 1000, None, "vip/v", id="tier"),
        pytest.param({"channel": "web"}, None, 1000, None, "web/w", id="channel"),
        pytest.param({"unit_price_minor": 25_000}, None, 1000, None, "big/g", id="value-inclusive"),
        pytest.param({}, None, 10_000, None, "heavy/h", id="weight-inclusive"),
        pytest.param({}, None, 1000, "N1", "pickup/p", id="method"),
        pytest.param({"country": "CA"}, None, 1000, None, "canada/c", id="country"),
        pytest.param({}, None, 1000, None, "default/s", id="falls-through"),
    ],
)
def test_first_matching_profile_decides_and_skipped_ones_are_listed(order_kw, cust, weight_g, pickup, rule):
    snap = snapshot(
        [node("N1", caps=["ship", "pickup"])], {"N1": {"A": 9}}, skus=[sku("A", weight_g=weight_g)], cust=cust
    )
    o = order("A:2", **{"channel": "api", **order_kw})
    result = run(o, snap, policy(profiles=SELECTOR_PROFILES), pickup_node_id=pickup)
    assert result.explanation.rule == rule
    assert result.explanation.profile == rule.split("/")[0]
    profile_ids = [*(p["id"] for p in SELECTOR_PROFILES), "default"]
    skipped = profile_ids[: profile_ids.index(rule.split("/")[0])]
    assert [c.split(":")[0] for c in result.explanation.considered] == [f"profile {p}" for p in skipped]
    if rule == "default/s":
        assert result.explanation.considered == list(SKIPPED.values())


@pytest.mark.parametrize(
    ("now", "rule", "considered"),
    [
        pytest.param(NOW, "peak/s", [], id="from-is-inclusive"),
        pytest.param(
            NOW - timedelta(seconds=1),
            "default/s",
            ["profile peak: not effective until 2026-03-04T15:00:00+00:00"],
            id="before-window",
        ),
        pytest.param(NOW + timedelta(hours=23, minutes=59), "peak/s", [], id="inside-window"),
        pytest.param(
            NOW + timedelta(days=1),
            "default/s",
            ["profile peak: expired at 2026-03-05T15:00:00+00:00"],
            id="until-exclusive",
        ),
    ],
)
def test_profile_effective_window(now, rule, considered):
    peak = {
        "id": "peak",
        "effective_from": NOW.isoformat(),
        "effective_until": (NOW + timedelta(days=1)).isoformat(),
        "strategies": [strategy()],
    }
    result = run(order("A:1"), snapshot([node("N1")], {"N1": {"A": 9}}), policy(profiles=[peak]), now=now)
    assert result.explanation.rule == rule
    assert result.explanation.considered == considered


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        run(order("A:1"), snapshot([node("N1")], {"N1": {"A": 9}}), now=NOW.replace(tzinfo=None))


# --- shipping methods --------------------------------------------------------------------------------------------

SERVICES = [
    service("STD", carrier="ACME", base_minor=500, days=3),
    service("STD-UPS", carrier="UPS", base_minor=800, days=2),
    service("EXP", carrier="ACME", level="expedited", base_minor=1500, days=1),
]


@pytest.mark.parametrize(
    ("rules", "cust", "level", "service_id", "carrier"),
    [
        pytest.param([], None, "standard", "STD", "ACME", id="no-rule-cheapest"),
        pytest.param(
            [{"id": "vip-expedite", "when": {"tiers": ["vip"]}, "service_level": "expedited"}],
            customer(tier="vip"),
            "expedited",
            "EXP",
            "ACME",
            id="vip-upgraded-to-expedited",
        ),
        pytest.param(
            [{"id": "vip-expedite", "when": {"tiers": ["vip"]}, "service_level": "expedited"}],
            customer(tier="gold"),
            "standard",
            "STD",
            "ACME",
            id="other-tier-keeps-its-level",
        ),
        pytest.param(
            [{"id": "ups", "carriers": ["UPS"]}], None, "standard", "STD-UPS", "UPS", id="carrier-restriction"
        ),
        pytest.param([{"id": "fast", "choose": "fastest"}], None, "standard", "STD-UPS", "UPS", id="fastest"),
        pytest.param(
            [{"id": "cheap", "choose": "cheapest"}, {"id": "fast", "choose": "fastest"}],
            None,
            "standard",
            "STD",
            "ACME",
            id="first-rule-wins",
        ),
    ],
)
def test_shipping_method_rules(rules, cust, level, service_id, carrier):
    snap = snapshot([node("N1", hours=WEEKDAYS)], {"N1": {"A": 9}}, cust=cust, services=SERVICES)
    result = run(order("A:1"), snap, policy(shipping_methods=rules))
    (shipment,) = result.shipments
    assert (result.service_level, shipment.service_level) == (level, level)
    assert (shipment.carrier_service_id, shipment.carrier) == (service_id, carrier)
    assert shipment.zone == "2"
    rate = {"STD": 500, "STD-UPS": 800, "EXP": 1500}[service_id]
    assert shipment.cost_minor == result.cost_minor == rate + 150
    # Ready 17:00 Wednesday, handed over at once, then the transit days Monday to Friday.
    transit = {"STD": 3, "STD-UPS": 2, "EXP": 1}[service_id]
    assert shipment.deliver_by == (TODAY + timedelta(days=transit if transit < 3 else 5))


def test_carrier_restriction_can_leave_a_zone_unserved():
    snap = snapshot(
        [node("N1"), node("N2", 5)],
        {"N1": {"A": 9}, "N2": {"A": 9}},
        services=[
            service("STD", carrier="ACME"),
            service("UPS-LOCAL", carrier="UPS", zones=("1", "2")),
        ],
    )
    result = run(order("A:1"), snap, policy(shipping_methods=[{"id": "ups", "carriers": ["UPS"]}]))
    assert result.node_ids == ["N1"]
    assert (verdict(result, "N2").eliminated_by, verdict(result, "N2").reason) == (
        "carrier",
        "no standard carrier service for zone 4",
    )


@pytest.mark.parametrize(
    ("node_kw", "carrier_cutoff", "units", "ready", "ship", "deliver"),
    [
        # Received 15:00 Wednesday, two hours to pick, handed over at once, three business days.
        pytest.param({}, None, 3, "03-04T17", "03-04T17", "03-09", id="plain"),
        pytest.param({"cutoff_local": time(14, 0)}, None, 3, "03-05T10", "03-05T10", "03-10", id="node-cutoff"),
        pytest.param({}, time(16, 0), 3, "03-04T17", "03-05T16", "03-10", id="carrier-cutoff"),
        pytest.param({}, time(18, 0), 3, "03-04T17", "03-04T18", "03-09", id="carrier-cutoff-made"),
        # Four of ten units are left today: three fit, five wait for Thursday.
        pytest.param(
            {"units_per_day": 10, "used_units": {TODAY: 6}}, None, 3, "03-04T17", "03-04T17", "03-09", id="fits"
        ),
        pytest.param(
            {"units_per_day": 10, "used_units": {TODAY: 6}},
            None,
            5,
            "03-05T10",
            "03-05T10",
            "03-10",
            id="capacity-full",
        ),
    ],
)
def test_shipment_promise(node_kw, carrier_cutoff, units, ready, ship, deliver):
    snap = snapshot(
        [node("N1", hours=WEEKDAYS, **node_kw)],
        {"N1": {"A": 9}},
        services=[service("STD", days=3, cutoff=carrier_cutoff)],
    )
    (shipment,) = run(order(f"A:{units}"), snap).shipments
    assert shipment.ready_by is not None
    assert shipment.ship_by is not None
    assert shipment.ready_by.strftime("%m-%dT%H") == ready
    assert shipment.ship_by.strftime("%m-%dT%H") == ship
    assert shipment.deliver_by is not None
    assert shipment.deliver_by.strftime("%m-%d") == deliver


def test_shipment_cost_is_rate_by_weight_plus_handling():
    # 2 x 1.5 kg from a store 111 km away (zone 2): 500 + 100/kg x 3 kg, store handling 400 + 2 x 25 per unit.
    snap = snapshot(
        [node("ST", 1, kind=NodeKind.STORE)],
        {"ST": {"A": 5}},
        skus=[sku("A", weight_g=1500)],
        services=[service("STD", base_minor=500, per_kg_minor=100)],
    )
    pol = policy(costs={"handling_per_shipment_minor": {"store": 400}, "handling_per_unit_minor": {"store": 25}})
    result = run(order("A:2"), snap, pol)
    assert result.cost_minor == result.shipments[0].cost_minor == 500 + 300 + 400 + 50


@pytest.mark.parametrize(
    ("distance_km", "zone"),
    [
        pytest.param(0.0, "1", id="0"),
        pytest.param(79.9, "1", id="79.9"),
        pytest.param(80.0, "2", id="80"),
        pytest.param(239.9, "2", id="239.9"),
        pytest.param(240.0, "3", id="240"),
        pytest.param(960.0, "5", id="960"),
        pytest.param(2879.9, "7", id="2879.9"),
        pytest.param(2880.0, "8", id="2880"),
        pytest.param(12_000.0, "8", id="far"),
    ],
)
def test_zones_are_distance_bands(distance_km, zone):
    assert zone_for(distance_km) == zone


@pytest.mark.parametrize(
    ("fastest", "carriers", "expected"),
    [
        pytest.param(False, (), "CHEAP", id="cheapest"),
        pytest.param(True, (), "FAST", id="fastest"),
        pytest.param(False, ("UPS",), "FAST", id="carrier-restricted"),
        pytest.param(False, ("DHL",), None, id="no-carrier-fits"),
    ],
)
def test_choose_service(fastest, carriers, expected):
    services = [
        service("FAST", carrier="UPS", base_minor=900, days=1),
        service("CHEAP", carrier="ACME", base_minor=400, days=4),
        service("CHEAP-TWIN", carrier="ACME", base_minor=400, days=4),  # a full tie goes to the service id
        service("EXP", carrier="ACME", level="expedited", base_minor=100, days=0),
    ]
    chosen = choose_service(
        services, level=ServiceLevel.STANDARD, zone="3", weight_g=0, carriers=carriers, fastest=fastest
    )
    assert (chosen.service_id if chosen else None) == expected


# --- the optimizer ---------------------------------------------------------------------------------------------
#
# X (a store: 400 handling) covers three of the four units, so the greedy rules take it first and finish with W;
# Y and W (DCs: 150 each) cover everything for 300.

OPT_NODES = [
    node("W", 1, kind=NodeKind.DC),
    node("X", 1, kind=NodeKind.STORE),
    node("Y", 1, kind=NodeKind.DC),
    node("Z", 1, kind=NodeKind.STORE),
]
OPT_ATP = {"W": {"B": 2}, "X": {"A": 2, "B": 1}, "Y": {"A": 2}, "Z": {"B": 1}}


@pytest.mark.parametrize(
    ("engine", "nodes", "cost", "engine_name"),
    [
        pytest.param("rules", ["W", "X"], 550, "rules", id="rules-greedy"),
        pytest.param("optimizer", ["W", "Y"], 300, "optimizer", id="optimizer"),
    ],
)
def test_optimizer_finds_the_cheaper_split_the_greedy_rules_miss(engine, nodes, cost, engine_name):
    pol = policy(strategy("s", "fewest_shipments", "total_cost", engine=engine, split={"max_shipments": 3}))
    result = run(order("A:2", "B:2"), snapshot(OPT_NODES, OPT_ATP), pol)
    assert result.node_ids == nodes
    assert result.cost_minor == cost
    assert result.explanation.engine == engine_name
    if engine == "optimizer":
        assert result.explanation.optimizer is not None
        assert result.explanation.optimizer.status == "optimal"
        assert result.explanation.optimizer.objective == pytest.approx(300)
        assert result.explanation.optimizer.budget_ms == 500
        assert result.explanation.decision.startswith("optimizer chose W, Y (proven minimum cost")
    else:
        assert result.explanation.optimizer is None


def test_optimizer_proves_infeasible_and_the_fallback_places_it():
    pol = policy(
        strategy("opt", engine="optimizer", split={"max_shipments": 1}),
        strategy("split", "fewest_shipments", "total_cost"),
    )
    result = run(order("A:2", "B:2"), snapshot(OPT_NODES, OPT_ATP), pol)
    assert result.explanation.rule == "default/split"
    assert result.explanation.considered == ["strategy opt: the optimizer proved no assignment within 1 shipment(s)"]


def test_optimizer_proves_infeasible_out_of_stock_says_what_is_short():
    pol = policy(strategy("opt", engine="optimizer", split={"max_shipments": 1}))
    with pytest.raises(OutOfStock) as err:
        run(order("A:2", "B:2"), snapshot(OPT_NODES, OPT_ATP), pol)
    assert err.value.message == (
        "no strategy of profile default can place the order "
        "(opt: the optimizer proved no assignment within 1 shipment(s))"
    )
    # Enough stock in the network, not at one node: what the best single node leaves short.
    assert err.value.details == {"B": 1}


@pytest.mark.parametrize(
    ("require_capacity", "nodes"),
    [
        pytest.param(True, ["W", "Y"], id="full-node-not-used"),
        pytest.param(False, ["X"], id="require-capacity-false-ignores-it"),
    ],
)
def test_optimizer_reads_capacity_like_the_filter(require_capacity, nodes):
    # X alone would be cheapest (one store shipment, 400) once Y and W cost more, but X is full today.
    full_x = [
        n if n.node_id != "X" else node("X", 1, kind=NodeKind.STORE, units_per_day=5, used_units={TODAY: 5})
        for n in OPT_NODES
    ]
    atp = OPT_ATP | {"X": {"A": 2, "B": 2}}
    pol = policy(
        strategy("s", engine="optimizer", filters={"require_capacity": require_capacity}),
        costs={"handling_per_shipment_minor": {"dc": 250, "store": 400}},
    )
    result = run(order("A:2", "B:2"), snapshot(full_x, atp), pol)
    assert result.node_ids == nodes
    assert result.explanation.optimizer is not None
    assert result.explanation.optimizer.status == "optimal"


def test_optimizer_backorders_under_ship_available():
    pol = policy(strategy("s", engine="optimizer", split={"mode": "ship_available"}))
    result = run(order("A:5"), snapshot(OPT_NODES, OPT_ATP), pol)
    assert summary(result) == ["X: L1x2", "Y: L1x2"]
    assert [(b.line_id, b.quantity) for b in result.backorders] == [("L1", 1)]
    assert result.explanation.engine == "optimizer"


# --- the explanation ---------------------------------------------------------------------------------------------


def test_explanation_lists_every_candidate_once_with_filter_or_rank():
    nodes = [
        node("E", 1),
        node("D", 2, paused=True),
        node("C", 3, caps=["pickup"]),
        node("B", 4),
        node("A", 5),
        node("F", 6),
        node("G", 0.5, kind=NodeKind.STORE),
    ]
    atp = {"E": {"A": 1}, "D": {"A": 9}, "C": {"A": 9}, "B": {"Q": 9}, "A": {"A": 9}, "F": {"A": 9}, "G": {"A": 9}}
    pol = policy(strategy("s", "fewest_shipments", "distance", filters={"node_kinds": ["dc"]}))
    result = run(order("A:2"), snapshot(nodes, atp), pol, excluded_nodes={"F"}, policy_version="v7")
    explanation = result.explanation
    assert [c.node_id for c in explanation.candidates] == ["A", "B", "C", "D", "E", "F", "G"]
    assert {c.node_id: (c.eliminated_by, c.rank) for c in explanation.candidates} == {
        "A": (None, 1),
        "B": ("stock", None),
        "C": ("capability", None),
        "D": ("status", None),
        "E": (None, 2),
        "F": ("excluded", None),
        "G": ("kind", None),
    }
    assert all(c.reason for c in explanation.candidates if c.eliminated_by)
    assert all(c.reason is None for c in explanation.candidates if c.rank)
    assert verdict(result, "A").scores == {
        "fewest_shipments": -2,
        "distance": pytest.approx(556.0),
        "units_available": 2,
    }
    assert verdict(result, "E").scores["units_available"] == 1
    assert explanation.eliminated_by_filter == {"capability": 1, "excluded": 1, "kind": 1, "status": 1, "stock": 1}
    assert explanation.candidates_total == 7
    assert (explanation.rule, explanation.profile, explanation.strategy) == ("default/s", "default", "s")
    assert explanation.policy_version == "v7"
    assert explanation.ranking == ["fewest_shipments", "distance"]
    assert explanation.engine == "rules"
    assert explanation.considered == []
    assert explanation.decision == "A fills the order and ranks first by fewest_shipments > distance"
    assert verdict(result, "A").distance_km == pytest.approx(556.0, abs=0.1)
    assert result.shipments[0].distance_km == pytest.approx(556.0, abs=0.1)


def test_explanation_caps_the_candidates_but_counts_them_all():
    count = MAX_EXPLAINED_CANDIDATES + 10
    nodes = [node(f"N{i:03}", 1 + i / 100, paused=i % 2 == 1) for i in range(count)]
    result = run(order("A:1"), snapshot(nodes, {n.node_id: {"A": 1} for n in nodes}))
    ids = [c.node_id for c in result.explanation.candidates]
    assert len(ids) == len(set(ids)) == MAX_EXPLAINED_CANDIDATES
    assert result.explanation.candidates_total == count
    assert result.explanation.eliminated_by_filter == {"status": count // 2}
    # Survivors come first, so every ranked node is there.
    assert sum(1 for c in result.explanation.candidates if c.rank) == count // 2


def _rich_case() -> tuple[Any, Any, PolicyDocument]:
    nodes = [
        node("DC1", 2, hours=WEEKDAYS, orders_per_day=50, used_orders={TODAY: 10}),
        node("DC2", 3, hours=WEEKDAYS),
        node("ST1", 0.5, kind=NodeKind.STORE, hours=WEEKDAYS, caps=["ship", "transfer_destination"]),
        node("ST2", 1, kind=NodeKind.STORE, paused=True),
        node("3P", 6, kind=NodeKind.THREE_PL, hours=WEEKDAYS, caps=["ship", "transfer_origin"]),
    ]
    atp = {
        "DC1": {"A": 3, "B": 1},
        "DC2": {"A": 2, "C": 4},
        "ST1": {"A": 2, "B": 3},
        "ST2": {"A": 9},
        "3P": {"A": 9, "B": 9, "C": 9},
    }
    snap = snapshot(
        nodes,
        atp,
        skus=[sku("A", weight_g=500), sku("B", weight_g=2000), sku("C", weight_g=100)],
        cust=customer(home="ST1"),
        lanes=[lane("3P", "ST1", 20)],
        services=[service("STD", per_kg_minor=100), service("STD2", carrier="UPS", base_minor=450, days=4)],
    )
    pol = policy(
        strategy(
            "s",
            "fewest_shipments",
            {"step": "total_cost", "tolerance_minor": 50},
            "delivery_speed",
            "inventory_balance",
            "capacity_headroom",
            "distance",
            filters={"safety_stock_by_kind": {"store": 1}},
            transfer={"max_hours": 48},
        )
    )
    return order("A:4", "B:2", "C:1"), snap, pol


def test_same_inputs_give_the_same_plan_whatever_the_node_order():
    o, snap, pol = _rich_case()
    first = run(o, snap, pol).model_dump()
    assert run(o, snap, pol).model_dump() == first
    for seed in range(3):
        shuffled = snap.model_copy(update={"nodes": random.Random(seed).sample(snap.nodes, len(snap.nodes))})
        assert run(o, shuffled, pol).model_dump() == first


# --- properties ----------------------------------------------------------------------------------------------

SKUS = ["A", "B", "C"]
RARELY = st.sampled_from([False, False, False, True])
STEPS = [
    "home_branch",
    "node_priority",
    "distance",
    "delivery_speed",
    "total_cost",
    "fewest_shipments",
    "inventory_balance",
    "capacity_headroom",
]


@st.composite
def scenarios(draw):
    count = draw(st.sampled_from([0, 1, 2, 3, 3, 4, 4, 5]))
    nodes = []
    for i in range(count):
        caps = {"ship", "transfer_origin", "transfer_destination"}
        if draw(RARELY):
            caps.discard("ship")
        nodes.append(
            node(
                f"N{i}",
                draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 10.0])),
                lat=draw(st.sampled_from([0.0, 1.0, -3.0])),
                kind=draw(st.sampled_from([NodeKind.DC, NodeKind.STORE])),
                priority=draw(st.sampled_from([1, 100])),
                paused=draw(RARELY),
                caps=caps,
                hours=draw(st.sampled_from([None, WEEKDAYS])),
            )
        )
    ids = [n.node_id for n in nodes]
    atp = {n: {s: draw(st.sampled_from([-1, 0, 0, 1, 2, 3, 5, 9])) for s in SKUS} for n in ids}
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(SKUS), st.integers(min_value=1, max_value=5)).map(lambda t: f"{t[0]}:{t[1]}"),
            min_size=1,
            max_size=3,
        )
    )
    excluded = draw(st.sets(st.sampled_from(ids), max_size=1)) if ids else set()
    cust = customer(
        home=draw(st.sampled_from(ids)) if ids and not draw(RARELY) else None,
        excluded=draw(st.sets(st.sampled_from(ids), max_size=1)) if ids else (),
    )
    lanes = [lane(a, b, draw(st.sampled_from([4, 30, 80]))) for a in ids for b in ids if a != b and draw(st.booleans())]
    filters = {
        "safety_stock": draw(st.sampled_from([0, 0, 1, 2])),
        "safety_stock_by_kind": draw(st.sampled_from([{}, {"store": 3}, {"dc": 0}])),
        "min_atp": draw(st.integers(min_value=1, max_value=2)),
    }
    ranking = draw(st.lists(st.sampled_from(STEPS), min_size=1, max_size=4, unique=True))
    if "home_branch" not in ranking and draw(st.booleans()):
        ranking.insert(0, "home_branch")  # so that consolidating at the home branch often wins
    primary = strategy(
        "primary",
        *ranking,
        engine=draw(st.sampled_from(["rules", "rules", "rules", "optimizer"])),
        filters=filters,
        split=draw(
            st.sampled_from(
                [
                    {"mode": "never"},
                    {"mode": "allowed", "max_shipments": 1},
                    {"mode": "allowed", "max_shipments": 2},
                    {"mode": "allowed", "max_shipments": 3},
                    {"mode": "ship_available", "max_shipments": 2},
                ]
            )
        ),
        **({"transfer": {"max_hours": 48, "max_origins": 2}} if draw(st.booleans()) else {}),
    )
    strategies = [primary]
    fallback = draw(st.sampled_from([None, "allowed", "ship_available"]))
    if fallback is not None:
        strategies.append(
            strategy("fallback", "fewest_shipments", "distance", filters=filters, split={"mode": fallback})
        )
    destination = draw(st.sampled_from([DEST, None]))
    return (
        order(*specs),
        snapshot(nodes, atp, cust=cust, lanes=lanes, services=[service("STD")] if draw(st.booleans()) else []),
        policy(*strategies),
        excluded,
        destination,
    )


def _assert_answer_keeps_the_invariants(o, snap, pol, excluded, result: Plan | OutOfStock) -> None:
    if isinstance(result, OutOfStock):
        # Otherwise OutOfStock, naming a positive shortfall of an ordered SKU.
        details = result.details
        assert isinstance(details, dict)
        assert any(units > 0 for units in details.values()), f"no shortfall in {details}"
        assert set(details) <= set(o.quantities_by_sku())
        return

    filters = pol.profiles[-1].strategies[0].filters  # every strategy in these policies shares them
    nodes = {n.node_id: n for n in snap.nodes}
    taken = Counter[tuple[str, str]]()
    per_line = Counter[str]()
    for a in result.allocations:
        taken[(a.node_id, a.sku)] += a.quantity
        per_line[a.line_id] += a.quantity
    for b in result.backorders:
        per_line[b.line_id] += b.quantity
    # Never more than ATP minus safety stock at any (node, SKU), summed over the lines sharing the SKU.
    for (node_id, s), units in taken.items():
        assert units <= snap.atp_of(node_id, s) - filters.safety_for(nodes[node_id].kind), (node_id, s)
    # Allocations and backorders cover every line exactly.
    assert per_line == {line.line_id: line.quantity for line in o.lines}
    # Never ship from a node the explanation eliminated, nor take stock from one the randomised filters rule out.
    eliminated = {c.node_id for c in result.explanation.candidates if c.eliminated_by}
    assert not eliminated & set(result.node_ids)
    assert len(set(result.node_ids)) == len(result.node_ids)
    customer_excluded = snap.customer.excluded_node_ids if snap.customer else frozenset()
    for node_id in {a.node_id for a in result.allocations}:
        assert nodes[node_id].status is NodeStatus.ACTIVE
        assert node_id not in excluded
        assert node_id not in customer_excluded
    for shipment in result.shipments:
        assert Capability.SHIP in nodes[shipment.node_id].capabilities
        origins = {t.origin_node_id for t in shipment.transfers_in}
        assert {a.node_id for a in shipment.allocations} <= {shipment.node_id, *origins}
        assert len(origins) <= (pol.profiles[-1].strategies[0].transfer or TransferPolicy()).max_origins
    # Every node explained once (small networks: under the cap), and the counts agree.
    assert sorted(c.node_id for c in result.explanation.candidates) == sorted(nodes)
    assert sum(result.explanation.eliminated_by_filter.values()) == len(eliminated)
    assert result.cost_minor == sum(s.cost_minor for s in result.shipments)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_property_plans_respect_stock_and_filters_and_cover_every_line(scenario):
    o, snap, pol, excluded, destination = scenario
    result = outcome(o, snap, pol, destination=destination, excluded_nodes=excluded)
    _assert_answer_keeps_the_invariants(o, snap, pol, excluded, result)


@st.composite
def transfer_scenarios(draw):
    """A home branch that is often short, origins with lanes into it, and a policy that consolidates there."""
    home = node(
        "H",
        1,
        kind=NodeKind.STORE,
        caps=["ship", "transfer_destination"],
        hours=draw(st.sampled_from([None, WEEKDAYS])),
    )
    origins = [
        node(
            f"O{i}",
            draw(st.sampled_from([2.0, 4.0, 8.0])),
            caps=draw(st.sampled_from([["transfer_origin"], ["ship", "transfer_origin"], ["ship"]])),
            paused=draw(RARELY),
            hours=draw(st.sampled_from([None, WEEKDAYS])),
        )
        for i in range(draw(st.integers(min_value=1, max_value=4)))
    ]
    ids = [n.node_id for n in origins]
    atp = {n.node_id: {s: draw(st.sampled_from([-1, 0, 1, 2, 4, 9])) for s in SKUS} for n in [home, *origins]}
    lanes = [lane(i, "H", draw(st.sampled_from([2, 20, 60]))) for i in ids if draw(st.booleans()) or i == "O0"]
    excluded = draw(st.sets(st.sampled_from(ids), max_size=1))
    cust = customer(home="H", excluded=draw(st.sets(st.sampled_from(ids), max_size=1)))
    filters = {"safety_stock": draw(st.sampled_from([0, 1])), "safety_stock_by_kind": {"store": 1}}
    primary = strategy(
        "primary",
        "home_branch",
        *draw(st.lists(st.sampled_from(STEPS[1:]), max_size=2, unique=True)),
        filters={**filters, "max_distance_km": draw(st.sampled_from([150, 10_000]))},
        split=draw(st.sampled_from([{"mode": "never"}, {"mode": "allowed", "max_shipments": 2}])),
        transfer={"max_hours": draw(st.sampled_from([24, 48])), "max_origins": draw(st.integers(1, 3))},
    )
    fallback = strategy("fallback", "distance", filters=filters, split={"mode": "ship_available"})
    specs = draw(
        st.lists(
            st.tuples(st.sampled_from(SKUS), st.integers(min_value=1, max_value=5)).map(lambda t: f"{t[0]}:{t[1]}"),
            min_size=1,
            max_size=3,
        )
    )
    return order(*specs), snapshot([home, *origins], atp, cust=cust, lanes=lanes), policy(primary, fallback), excluded


@settings(max_examples=150, deadline=None)
@given(transfer_scenarios())
def test_property_transfers_respect_stock_and_filters_and_cover_every_line(scenario):
    o, snap, pol, excluded = scenario
    result = outcome(o, snap, pol, excluded_nodes=excluded)
    _assert_answer_keeps_the_invariants(o, snap, pol, excluded, result)
    if isinstance(result, Plan) and result.transfers:
        (shipment,) = result.shipments
        assert shipment.node_id == "H"
        transfer_policy = pol.profiles[-1].strategies[0].transfer
        assert transfer_policy is not None
        deadline = NOW + timedelta(hours=transfer_policy.max_hours)
        for transfer in shipment.transfers_in:
            assert transfer.arrives_at is not None
            assert transfer.arrives_at <= deadline
            if shipment.ready_by is not None:
                assert shipment.ready_by > transfer.arrives_at


def _without_solve_time(result: Plan) -> dict[str, Any]:
    """The plan, less how long the optimizer took (wall time: the one thing two identical runs may differ in)."""
    dumped = result.model_dump()
    explanation = dumped["explanation"]
    if explanation["optimizer"] is not None:
        explanation["optimizer"]["solve_ms"] = None
        explanation["decision"] = re.sub(r", \d+ ms\)", ")", explanation["decision"])
    return dumped


@settings(max_examples=60, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_property_same_inputs_same_answer_whatever_the_node_order(scenario, rnd):
    o, snap, pol, excluded, destination = scenario
    shuffled = snap.model_copy(update={"nodes": rnd.sample(snap.nodes, len(snap.nodes))})
    kwargs = {"destination": destination, "excluded_nodes": excluded, "attempt": 3}

    def comparable(result: Plan | OutOfStock) -> object:
        if isinstance(result, OutOfStock):
            return result.message, result.details
        return _without_solve_time(result)

    first = comparable(outcome(o, snap, pol, **kwargs))
    assert comparable(outcome(o, snap, pol, **kwargs)) == first
    assert comparable(outcome(o, shuffled, pol, **kwargs)) == first
