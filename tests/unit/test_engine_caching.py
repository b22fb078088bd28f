"""Per-node facts shared between engine runs (``sourcing.NetworkFacts``): they save time and change nothing.

Checkout options run the engine several times on one snapshot (pickups, delivery shapes, expedited) and share
one ``NetworkFacts`` between the runs. Every plan must be the one a run on its own gives, in whatever order the
variants come, whatever the earlier runs put in the memo; and facts worked out for other inputs are refused.
"""

from __future__ import annotations

import random
from datetime import time, timedelta
from typing import Any

import pytest

from domain import promise
from domain.errors import OutOfStock
from domain.network import NetworkSnapshot, NodeKind, OperatingHours, Zone
from domain.options import PlanVariant, Shape, plan_variant
from domain.orders import GeoPoint, Order, ServiceLevel
from domain.policy import Method, PolicyDocument
from domain.sourcing import NetworkFacts, Plan, plan
from tests.unit.options_support import (
    BRANCH_CAPS,
    SERVICES,
    branch,
    checkout_network,
    network,
    options,
    plain_policy,
    split_network,
    transfer_policy,
)
from tests.unit.sourcing_support import DEST, NOW, TODAY, WEEKDAYS, lane, node, order, policy, service, strategy

SATURDAYS = OperatingHours(sat=("09:00", "13:00"))
SCHEDULES: tuple[dict[str, Any], ...] = ({}, {"days": ("mon", "wed", "fri"), "departs": time(17)})
KINDS = (
    (NodeKind.STORE, BRANCH_CAPS),
    (NodeKind.DC, ("ship", "transfer_origin")),
    (NodeKind.THREE_PL, ("ship", "transfer_origin", "pickup")),
)


def variants(snap: NetworkSnapshot) -> list[PlanVariant]:
    """Every variant options could ask for on ``snap``: each shape at both service levels, and a pickup at
    every node (the engine refuses the ones that cannot hand over, which is an answer too)."""
    delivery = [
        PlanVariant(method=Method.DELIVERY, service_level=level, shape=shape)
        for level in ServiceLevel
        for shape in Shape
    ]
    pickup = [PlanVariant(method=Method.PICKUP, pickup_node_id=n.node_id) for n in snap.nodes]
    return [*delivery, *pickup]


def answer(
    cart: Order,
    snap: NetworkSnapshot,
    pol: PolicyDocument,
    variant: PlanVariant,
    facts: NetworkFacts | None,
    destination: GeoPoint | None = DEST,
) -> Plan | str:
    try:
        return plan_variant(cart, snap, pol, NOW, variant, destination=destination, network_facts=facts)
    except OutOfStock as err:
        return f"OutOfStock: {err} {err.details}"


def assert_shared_equals_alone(
    cart: Order, snap: NetworkSnapshot, pol: PolicyDocument, order_seed: int, destination: GeoPoint | None = DEST
) -> None:
    asked = variants(snap)
    random.Random(order_seed).shuffle(asked)
    shared = NetworkFacts(snap, NOW, destination)
    for variant in asked:
        alone = answer(cart, snap, pol, variant, None, destination)
        assert answer(cart, snap, pol, variant, shared, destination) == alone, variant


CASES = [
    ("home short, transfer allowed", checkout_network(), transfer_policy(), ("A:2", "B:1")),
    ("home short, no transfers", checkout_network(), plain_policy(), ("A:2", "B:1")),
    ("home has everything", checkout_network(home_has=5), transfer_policy(), ("A:2",)),
    ("split or consolidate", split_network(), transfer_policy(), ("A:10",)),
    (
        "split, cost first",
        split_network(),
        plain_policy("total_cost", "delivery_speed", split={"max_shipments": 3}),
        ("A:10",),
    ),
    (
        "ship what is there",
        split_network(),
        plain_policy("delivery_speed", "distance", split={"mode": "ship_available", "max_shipments": 1}),
        ("A:12",),
    ),
    ("nothing anywhere", checkout_network(), transfer_policy(), ("Z:1",)),
]


@pytest.mark.parametrize(("snap", "pol", "lines"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("order_seed", [1, 2, 3])
def test_a_shared_memo_gives_the_plan_a_run_alone_gives(snap, pol, lines, order_seed):
    assert_shared_equals_alone(order(*lines), snap, pol, order_seed)


def test_without_a_destination_too():
    assert_shared_equals_alone(order("A:2", "B:1"), checkout_network(), transfer_policy(), 4, destination=None)


def busy_network(seed: int) -> NetworkSnapshot:
    """Nodes that differ in everything a promise reads: time zones, cut-offs, holidays, capacity already taken
    today and tomorrow, pick/pack time, Saturday-only hours, no hours at all; a carrier cut-off; lanes."""
    rng = random.Random(seed)
    zones = ("UTC", "America/New_York", "America/Los_Angeles", "Asia/Tokyo")
    nodes = []
    atp: dict[str, dict[str, int]] = {}
    for i in range(12):
        node_id = f"N{i:02d}"
        kwargs: dict[str, Any] = {
            "timezone": rng.choice(zones),
            "cutoff_local": rng.choice((None, time(12), time(16, 30))),
            "pick_pack_minutes": rng.choice((0, 60, 240, 700)),
            "units_per_day": rng.choice((None, 3, 8)),
            "orders_per_day": rng.choice((None, 1, 5)),
            "used_units": {TODAY: rng.randint(0, 4), TODAY + timedelta(days=1): rng.randint(0, 8)},
            "used_orders": {TODAY: rng.randint(0, 1)},
        }
        hours = rng.choice((WEEKDAYS, WEEKDAYS, SATURDAYS, None))
        kind, caps = rng.choice(KINDS) if i else KINDS[0]
        nodes.append(node(node_id, rng.uniform(0.05, 25), kind=kind, caps=caps, hours=hours, **kwargs))
        atp[node_id] = {sku: rng.choice((0, 1, 2, 5, 20)) for sku in ("A", "B", "C")}
    home = nodes[0].node_id
    lanes = [lane(n.node_id, home, rng.choice((6, 20, 60)), **rng.choice(SCHEDULES)) for n in nodes[1:5]]
    services = [*SERVICES, service("LATE", days=2, cutoff=time(15), base_minor=450)]
    return network(nodes, atp, home=home, lanes=lanes, services=services)


@pytest.mark.parametrize("seed", range(8))
def test_a_shared_memo_changes_nothing_on_varied_networks(seed):
    snap = busy_network(seed)
    pol = policy(
        strategy(
            "home",
            "home_branch",
            "delivery_speed",
            "distance",
            transfer={"max_hours": 72, "max_origins": 2},
            split={"max_shipments": 2},
        ),
        strategy(
            "rest", "delivery_speed", "total_cost", "distance", split={"mode": "ship_available", "max_shipments": 3}
        ),
    )
    cart = order("A:3", "B:2", "C:1")
    assert_shared_equals_alone(cart, snap, pol, seed)


def test_options_are_the_plans_each_variant_gives_alone():
    snap = busy_network(3)
    found = options(order("A:2", "B:1"), snap, transfer_policy())
    assert found
    for option in found:
        assert answer(order("A:2", "B:1"), snap, transfer_policy(), option.variant, None) == option.plan


def test_facts_for_other_inputs_are_refused():
    snap, cart, pol = checkout_network(), order("A:1"), transfer_policy()
    facts = NetworkFacts(snap, NOW, DEST)
    plan(cart, snap, pol, NOW, destination=DEST, network_facts=facts)  # the inputs it was made for
    equal_copy = snap.model_copy()
    with pytest.raises(ValueError, match="another snapshot"):
        plan(cart, equal_copy, pol, NOW, destination=DEST, network_facts=facts)  # an equal snapshot is another object
    with pytest.raises(ValueError, match="another snapshot"):
        plan(cart, snap, pol, NOW + timedelta(minutes=1), destination=DEST, network_facts=facts)
    with pytest.raises(ValueError, match="another snapshot"):
        plan(cart, snap, pol, NOW, destination=GeoPoint(lat=1.0, lon=1.0), network_facts=facts)
    with pytest.raises(ValueError, match="another snapshot"):
        plan(cart, snap, pol, NOW, destination=None, network_facts=facts)


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        NetworkFacts(checkout_network(), NOW.replace(tzinfo=None), DEST)


def test_a_calendar_is_built_once_per_node():
    snap = network([branch("BR", 0.1), node("NH", 0.2)], {"BR": {"A": 1}, "NH": {"A": 1}})
    facts = NetworkFacts(snap, NOW, DEST)
    branch_node, no_hours = snap.nodes
    first = facts.calendar(branch_node)
    assert first is not None
    assert facts.calendar(branch_node) is first
    assert facts.calendar(no_hours) is None  # no hours declared: no promise


# --- each memo is keyed on everything its answer depends on ----------------------------------------------------

CAPPED = node("CAP", 0.1, hours=WEEKDAYS, units_per_day=5, used_units={TODAY: 3}, cutoff_local=time(16))


def test_ready_by_is_kept_per_units_and_start():
    facts = NetworkFacts(network([CAPPED], {}), NOW, DEST)
    calendar = facts.calendar(CAPPED)
    assert calendar is not None
    starts = (None, NOW + timedelta(hours=20), NOW + timedelta(days=2, hours=1), None)
    answers = {(start, units): facts.ready_at(CAPPED, start, units) for start in starts for units in (1, 3, 2, 6, 1)}
    for (start, units), ready in answers.items():
        assert ready == promise.ready_by(calendar, max(NOW, start or NOW), units=units)
    # Today has room for 2 more units: 3 wait for tomorrow, 6 (more than a day's 5) take a day alone.
    assert answers[None, 1] == answers[None, 2] != answers[None, 3]
    assert len({answers[start, 1] for start in starts}) == 3


EARLY = service("EARLY", days=1, cutoff=time(12))
LATE = service("LATE", days=1, cutoff=time(17, 30))
SLOW = service("SLOW", days=3, cutoff=time(17, 30))


def test_handover_and_delivery_are_kept_per_service():
    facts = NetworkFacts(network([CAPPED], {}, services=(EARLY, LATE, SLOW)), NOW, DEST)
    calendar = facts.calendar(CAPPED)
    ready = facts.ready_at(CAPPED)
    assert calendar is not None
    assert ready is not None
    answers = {s.service_id: facts.shipped(CAPPED, ready, s) for s in (LATE, EARLY, SLOW, LATE)}
    for s in (EARLY, LATE, SLOW):
        ship = promise.carrier_handover(calendar, ready, s.cutoff_local)
        assert answers[s.service_id] == (ship, promise.delivery_date(ship, 1 if s is not SLOW else 3, "UTC"))
    assert len(set(answers.values())) == 3


def test_the_service_is_kept_per_level_zone_weight_carriers_and_choice():
    light = service("LIGHT", base_minor=100, per_kg_minor=1_000, days=1)
    flat = service("FLAT", carrier="OTHER", base_minor=900, days={"1": 4, "2": 4})
    fast = service("FAST", level="expedited", base_minor=2_000, days=1)
    snap = network([CAPPED], {}, services=(light, flat, fast))
    facts = NetworkFacts(snap, NOW, DEST)
    asked: list[tuple[ServiceLevel, Zone, int, tuple[str, ...], bool]] = [
        (ServiceLevel.STANDARD, "1", 0, (), False),
        (ServiceLevel.STANDARD, "1", 5_000, (), False),
        (ServiceLevel.STANDARD, "8", 5_000, (), False),
        (ServiceLevel.STANDARD, "1", 5_000, (), True),
        (ServiceLevel.STANDARD, "1", 5_000, ("ACME",), False),
        (ServiceLevel.EXPEDITED, "1", 0, (), False),
        (ServiceLevel.EXPEDITED, "1", 0, ("OTHER",), False),
        (ServiceLevel.STANDARD, "1", 0, (), False),
    ]
    chosen = [
        facts.service(level=level, zone=zone, weight_g=weight, carriers=carriers, fastest=fastest)
        for level, zone, weight, carriers, fastest in asked
    ]
    assert [None if s is None else s.service_id for s in chosen] == [
        "LIGHT",
        "FLAT",
        "LIGHT",
        "LIGHT",
        "LIGHT",
        "FAST",
        None,
        "LIGHT",
    ]
