"""Checkout options (``domain.options``): which kinds appear for which network, what each promises and costs,
and that every option is a plan the engine gives again for the same variant, so an order can execute it."""

from __future__ import annotations

import random
from collections import Counter
from datetime import time, timedelta

import pytest

from domain.options import (
    OptionKind,
    PlanVariant,
    Shape,
    option_id,
    plan_fingerprint,
    plan_variant,
    variant_inputs,
)
from domain.orders import ServiceLevel
from domain.policy import Method, SplitMode
from domain.quotes import cart_fingerprint, quote_payload, sign_quote, verify_quote
from domain.sourcing import plan
from tests.unit.options_support import (
    STANDARD,
    branch,
    by_kind,
    checkout_network,
    dc,
    kinds,
    network,
    options,
    plain_policy,
    split_network,
    transfer_policy,
)
from tests.unit.sourcing_support import DEST, NOW, node, order, policy, service, strategy

# --- which kinds appear ------------------------------------------------------------------------------------------

ONE_DC = network([dc("DC", 0.5)], {"DC": {"A": 9, "B": 9}})

KIND_CASES = [
    pytest.param(ONE_DC, plain_policy(), ["A:2", "B:1"], ["ship_standard", "ship_expedited"], id="one-node-has-all"),
    pytest.param(
        network([dc("DC", 0.5)], {"DC": {"A": 9}}, services=[STANDARD]),
        plain_policy(),
        ["A:2"],
        ["ship_standard"],
        id="no-expedited-service",
    ),
    pytest.param(
        network([dc("DC", 0.5)], {"DC": {"A": 9}}, services=[STANDARD, service("SLOW-EXP", level="expedited")]),
        plain_policy(),
        ["A:2"],
        ["ship_standard"],
        id="expedited-not-faster",
    ),
    pytest.param(
        ONE_DC,
        policy(strategy(), shipping_methods=[{"id": "always-standard", "service_level": "standard"}]),
        ["A:2"],
        ["ship_standard"],
        id="policy-forces-standard",
    ),
    pytest.param(
        checkout_network(),
        transfer_policy(),
        ["A:2", "B:1"],
        # Expedited (from BR, where the policy sends it) arrives Friday, as ST's standard parcel does: not offered.
        ["pickup_home", "pickup_nearest", "ship_standard", "ship_consolidated"],
        id="home-short-store-has-all",
    ),
    pytest.param(
        checkout_network(home_has=9),
        transfer_policy(),
        ["A:2"],
        ["pickup_home", "ship_standard", "ship_expedited"],
        id="home-has-all-and-is-nearest",
    ),
    pytest.param(
        split_network(),
        transfer_policy(),
        ["A:10"],
        ["pickup_home", "ship_split", "ship_consolidated", "ship_expedited"],
        id="split-or-consolidate",
    ),
    pytest.param(
        split_network(), plain_policy(), ["A:10"], ["ship_split", "ship_expedited"], id="split-without-transfers"
    ),
    pytest.param(
        split_network(),
        plain_policy(split={"mode": "never"}),
        ["A:10"],
        [],
        id="never-split-nothing-fits",
    ),
    pytest.param(
        split_network(),
        plain_policy(split={"mode": "ship_available"}),
        ["A:12"],
        ["pickup_home", "ship_split", "ship_expedited"],
        id="ship-available-backorders",
    ),
    pytest.param(
        network([dc("DC", 0.5, caps=("ship", "pickup"))], {"DC": {"A": 9}}, services=[STANDARD]),
        plain_policy(),
        ["A:1"],
        ["pickup_nearest", "ship_standard"],
        id="dc-with-pickup-counter",
    ),
    pytest.param(
        network([branch("BR", 0.1, caps=("ship",)), dc("DC", 2)], {"BR": {"A": 9}, "DC": {"A": 9}}, home="BR"),
        transfer_policy(),
        ["A:1"],
        ["ship_standard", "ship_expedited"],
        id="home-without-pickup-capability",
    ),
    pytest.param(
        network([node("X", 0.5, caps=("ship", "pickup"))], {"X": {"A": 9}}),
        plain_policy(),
        ["A:1"],
        ["pickup_nearest", "ship_standard"],
        id="no-hours-no-promise-still-offered",
    ),
    pytest.param(ONE_DC, plain_policy(), ["A:99"], [], id="nothing-in-stock"),
]


@pytest.mark.parametrize(("snap", "pol", "lines", "expected"), KIND_CASES)
def test_kinds_offered(snap, pol, lines, expected):
    found = options(order(*lines), snap, pol)
    assert kinds(found) == expected
    assert len({o.plan_fingerprint for o in found}) == len(found), "the same plan offered twice"
    assert len({o.option_id for o in found}) == len(found)


@pytest.mark.parametrize(("snap", "pol", "lines", "expected"), KIND_CASES)
def test_every_option_is_the_plan_its_variant_gives(snap, pol, lines, expected):
    """The workflow can re-plan under the chosen option and get the same plan (for the same ``now``)."""
    cart = order(*lines)
    for option in options(cart, snap, pol):
        again = plan_variant(cart, snap, pol, NOW, option.variant, destination=DEST)
        assert again.model_dump() == option.plan.model_dump()
        assert option_id(option.kind, again) == option.option_id


@pytest.mark.parametrize(("snap", "pol", "lines", "expected"), KIND_CASES)
def test_lines_cover_the_cart_exactly(snap, pol, lines, expected):
    cart = order(*lines)
    for option in options(cart, snap, pol):
        taken = Counter[str]()
        for line in option.lines:
            taken[line.line_id] += line.quantity
            if line.shipment is None:
                assert line.node_id is None
                continue
            shipment = option.plan.shipments[line.shipment]
            assert line.node_id in {shipment.node_id, *(t.origin_node_id for t in shipment.transfers_in)}
        assert taken == {line.line_id: line.quantity for line in cart.lines}
        assert option.shipments == len(option.plan.shipments)
        assert option.backordered_units == sum(line.quantity for line in option.lines if line.shipment is None)


@pytest.mark.parametrize(("snap", "pol", "lines", "expected"), KIND_CASES)
def test_the_policy_choice_is_recommended(snap, pol, lines, expected):
    cart = order(*lines)
    found = options(cart, snap, pol)
    recommended = [o for o in found if o.recommended]
    if not found:
        return
    (chosen,) = recommended
    assert chosen.plan_fingerprint == plan_fingerprint(plan(cart, snap, pol, NOW, destination=DEST))


# --- what each kind means -----------------------------------------------------------------------------------------


def test_checkout_trade_offs():
    found = options(order("A:2", "B:1"), checkout_network(), transfer_policy())
    assert [o.trade_off for o in found] == [
        "Pick up at your home branch, Node BR tomorrow 10:00 (via transfer)",
        "Pick up at Node ST today 17:00 (33 km away)",
        "Ships standard in one shipment, arrives Friday 6 Mar",
        "One shipment from Node BR once stock arrives from Node DC, arrives Monday 9 Mar",
    ]
    home, nearest, standard, consolidated = found
    assert (home.method, home.service_level, home.node_ids, home.via_transfer) == (Method.PICKUP, None, ["BR"], True)
    assert (nearest.node_ids, nearest.distance_km, nearest.via_transfer) == (["ST"], 33.4, False)
    # Collecting is free; a parcel costs the carrier's rate. Handling and lanes are cost to serve, not price.
    assert [o.price_minor for o in found] == [0, 0, 500, 500]
    assert [o.cost_minor for o in found] == [o.plan.cost_minor for o in found]
    assert consolidated.cost_minor == 400 + 300 + 500  # store handling, the lane, the carrier
    assert consolidated.recommended
    assert not standard.recommended
    assert all(o.currency == "USD" for o in found)


def test_home_pickup_via_transfer_is_ready_after_a_branch_with_stock():
    found = options(order("A:2", "B:1"), checkout_network(), transfer_policy())
    home, nearest = by_kind(found, "pickup_home"), by_kind(found, "pickup_nearest")
    assert home.via_transfer
    assert not nearest.via_transfer
    assert home.ready_by is not None
    assert nearest.ready_by is not None
    assert home.ready_by > nearest.ready_by
    assert {t.origin_node_id for t in home.plan.transfers} == {"DC"}
    assert all(t.arrives_at is not None and t.arrives_at < home.ready_by for t in home.plan.transfers)
    assert home.deliver_by is None
    assert nearest.deliver_by is None


def test_home_branch_with_everything_is_one_option_not_two():
    found = options(order("A:2"), checkout_network(home_has=9), transfer_policy())
    home = by_kind(found, "pickup_home")
    assert not home.via_transfer
    assert "pickup_nearest" not in kinds(found)  # the nearest branch with everything is the same plan


def test_split_and_consolidated_trade_offs():
    found = options(order("A:10"), split_network(), transfer_policy())
    split, consolidated = by_kind(found, "ship_split"), by_kind(found, "ship_consolidated")
    assert split.trade_off == "Two shipments: 4 items Friday 6 Mar, the rest Monday 9 Mar"
    assert (split.shipments, split.node_ids, split.price_minor) == (2, ["BR", "N2"], 1000)
    assert [(line.node_id, line.quantity, line.shipment) for line in split.lines] == [("BR", 4, 0), ("N2", 6, 1)]
    assert split.variant.shape is Shape.NO_TRANSFER
    assert consolidated.shipments == 1
    assert consolidated.via_transfer
    assert consolidated.price_minor == 500  # one parcel instead of two
    assert consolidated.deliver_by is not None
    assert split.deliver_by is not None
    # Waiting for one parcel costs no time here: N2's half of the split takes as long by road as by transfer.
    assert consolidated.deliver_by == split.deliver_by


def test_split_with_backorder_says_what_waits_for_stock():
    found = options(order("A:12"), split_network(), plain_policy(split={"mode": "ship_available"}))
    split = by_kind(found, "ship_split")
    assert split.trade_off == "Two shipments: 4 items Friday 6 Mar, 6 items Monday 9 Mar; 2 items when back in stock"
    assert split.backordered_units == 2
    assert split.lines[-1].model_dump() == {
        "line_id": "L1",
        "sku": "A",
        "quantity": 2,
        "node_id": None,
        "shipment": None,
    }
    home = by_kind(found, "pickup_home")
    assert home.trade_off == "Pick up at your home branch, Node BR today 17:00; 8 items when back in stock"


def test_no_split_when_one_node_has_everything():
    # BR has 4, N2 has 6, and FAR has all 10: one node can fill the order, so nobody is offered a split.
    snap = network(
        [branch("BR", 0.1), dc("N2", 1.5), dc("FAR", 5)], {"BR": {"A": 4}, "N2": {"A": 6}, "FAR": {"A": 10}}, home="BR"
    )
    found = options(order("A:10"), snap, plain_policy())
    assert "ship_split" not in kinds(found)
    assert by_kind(found, "ship_standard").node_ids == ["FAR"]


def test_no_pickup_when_no_branch_can_hand_over():
    found = options(order("A:1"), split_network(), plain_policy(), methods=[Method.DELIVERY])
    assert all(o.method is Method.DELIVERY for o in found)
    snap = network([dc("DC", 0.5)], {"DC": {"A": 9}}, home="DC")
    assert all(o.method is Method.DELIVERY for o in options(order("A:1"), snap, plain_policy()))


@pytest.mark.parametrize(
    ("snap", "pol", "lines"),
    [
        pytest.param(ONE_DC, plain_policy(), ["A:2"], id="one-node"),
        pytest.param(split_network(), plain_policy(), ["A:10"], id="split"),
        pytest.param(checkout_network(home_has=9), transfer_policy(), ["A:2"], id="home"),
        pytest.param(ONE_DC, plain_policy("delivery_speed", "total_cost"), ["A:2", "B:9"], id="speed-first"),
    ],
)
def test_expedited_arrives_sooner_and_costs_at_least_as_much(snap, pol, lines):
    found = options(order(*lines), snap, pol)
    fast = by_kind(found, "ship_expedited")
    standard_level = [o for o in found if o.method is Method.DELIVERY and o.kind != "ship_expedited"]
    assert standard_level
    assert fast.service_level is ServiceLevel.EXPEDITED
    assert fast.trade_off.startswith("Ships expedited")
    for other in standard_level:
        assert other.service_level is ServiceLevel.STANDARD
        assert fast.deliver_by is not None
        assert other.deliver_by is not None
        assert fast.deliver_by < other.deliver_by
        assert fast.price_minor >= other.price_minor


@pytest.mark.parametrize(
    ("now", "ready"),
    [
        pytest.param(NOW.replace(hour=13, minute=59), NOW.replace(hour=15, minute=59), id="just-before-cut-off"),
        pytest.param(NOW.replace(hour=14, minute=0), NOW.replace(hour=16, minute=0), id="at-cut-off"),
        pytest.param(NOW.replace(hour=14, minute=1), NOW.replace(day=5, hour=10), id="just-after-cut-off"),
    ],
)
def test_cut_off_moves_the_pickup_ready_by(now, ready):
    snap = network([branch("ST", 0.3, cutoff_local=time(14, 0))], {"ST": {"A": 5}})
    nearest = by_kind(options(order("A:1"), snap, plain_policy(), now=now), "pickup_nearest")
    assert nearest.ready_by == ready
    assert nearest.trade_off.startswith("Pick up at Node ST " + ("today" if ready.day == 4 else "tomorrow"))


def test_cut_off_in_the_branch_time_zone():
    # 14:00 in Chicago is 20:00 UTC: at 19:30 UTC the Chicago branch is still before its cut-off.
    chicago = branch("CHI", 0.3, timezone="America/Chicago", cutoff_local=time(14, 0))
    snap = network([chicago], {"CHI": {"A": 5}})
    nearest = by_kind(
        options(order("A:1"), snap, plain_policy(), now=NOW.replace(hour=19, minute=30)), "pickup_nearest"
    )
    assert nearest.ready_by == NOW.replace(hour=21, minute=30)
    assert nearest.trade_off == "Pick up at Node CHI today 15:30 (33 km away)"


def test_nearest_pickup_prefers_the_earliest_day_then_the_nearest():
    # NEAR has no room today (capacity used), MID is ready today: the customer collects sooner at MID.
    near = branch("NEAR", 0.1, orders_per_day=1, used_orders={NOW.date(): 1})
    mid = branch("MID", 0.4)
    far = branch("FAR", 0.9)
    snap = network([far, near, mid], {"NEAR": {"A": 3}, "MID": {"A": 3}, "FAR": {"A": 3}})
    pol = plain_policy(filters={"require_capacity": False})
    assert by_kind(options(order("A:1"), snap, pol), "pickup_nearest").node_ids == ["MID"]
    snap_room = network([far, branch("NEAR", 0.1), mid], snap.atp)
    assert by_kind(options(order("A:1"), snap_room, pol), "pickup_nearest").node_ids == ["NEAR"]


def test_chosen_branch_comes_first_and_is_recommended():
    cart = order("A:2", "B:1").model_copy(update={"pickup_node_id": "ST"})
    found = options(cart, checkout_network(), transfer_policy())
    assert kinds(found)[:2] == ["pickup_chosen", "pickup_home"]
    chosen = found[0]
    assert chosen.recommended
    assert chosen.node_ids == ["ST"]
    assert "pickup_nearest" not in kinds(found)  # ST is also the nearest with everything: the same plan


def test_methods_limit_the_options():
    snap, pol, cart = checkout_network(), transfer_policy(), order("A:2", "B:1")
    assert {o.method for o in options(cart, snap, pol, methods=[Method.PICKUP])} == {Method.PICKUP}
    assert {o.method for o in options(cart, snap, pol, methods=[Method.DELIVERY])} == {Method.DELIVERY}


def test_excluded_nodes_are_not_offered():
    found = options(order("A:2", "B:1"), checkout_network(), transfer_policy(), excluded_nodes=["ST"])
    assert all("ST" not in o.node_ids for o in found)
    assert "pickup_nearest" not in kinds(found)


def test_without_a_destination_no_distance_is_shown():
    found = options(order("A:1"), network([branch("ST", 0.3)], {"ST": {"A": 5}}), plain_policy(), destination=None)
    nearest = by_kind(found, "pickup_nearest")
    assert nearest.distance_km is None
    assert nearest.trade_off == "Pick up at Node ST today 17:00"


# --- determinism, ids, variants ----------------------------------------------------------------------------------

DETERMINISM_CASES = [
    pytest.param(checkout_network(), transfer_policy(), ["A:2", "B:1"], id="checkout"),
    pytest.param(split_network(), transfer_policy(), ["A:10"], id="split"),
    pytest.param(split_network(), plain_policy(split={"mode": "ship_available"}), ["A:12"], id="backorder"),
]


@pytest.mark.parametrize(("snap", "pol", "lines"), DETERMINISM_CASES)
def test_deterministic_whatever_the_node_order(snap, pol, lines):
    cart = order(*lines)
    first = [o.model_dump() for o in options(cart, snap, pol)]
    assert first == [o.model_dump() for o in options(cart, snap, pol)]
    shuffled = list(snap.nodes)
    random.Random(7).shuffle(shuffled)
    again = options(cart, snap.model_copy(update={"nodes": list(reversed(shuffled))}), pol)
    assert [o.model_dump() for o in again] == first


@pytest.mark.parametrize(("snap", "pol", "lines"), DETERMINISM_CASES)
def test_option_ids_are_stable(snap, pol, lines):
    ids = [o.option_id for o in options(order(*lines), snap, pol)]
    # Another cart id and a later moment the same day: the same options, the same ids and plans.
    later = options(order(*lines, order_id="CART-9"), snap, pol, now=NOW + timedelta(minutes=20))
    assert [o.option_id for o in later] == ids
    assert [o.plan_fingerprint for o in later] == [o.plan_fingerprint for o in options(order(*lines), snap, pol)]
    assert all(i.startswith(k + "-") and len(i) == len(k) + 13 for i, k in zip(ids, kinds(later), strict=True))


def test_option_id_follows_the_nodes_and_the_service():
    found = options(order("A:2", "B:1"), checkout_network(), transfer_policy())
    standard = by_kind(found, "ship_standard")
    elsewhere = standard.plan.model_copy(
        update={"shipments": [standard.plan.shipments[0].model_copy(update={"node_id": "DC"})]}
    )
    faster = standard.plan.model_copy(update={"service_level": ServiceLevel.EXPEDITED})
    assert option_id(OptionKind.SHIP_STANDARD, elsewhere) != standard.option_id
    assert option_id(OptionKind.SHIP_STANDARD, faster) != standard.option_id
    assert option_id(OptionKind.SHIP_SPLIT, standard.plan) != standard.option_id


def test_plan_fingerprint_ignores_ids_and_promise_times_only():
    p = by_kind(options(order("A:10"), split_network(), transfer_policy()), "ship_split").plan
    renamed = p.model_copy(update={"plan_id": "X:plan-3", "attempt": 3})
    assert plan_fingerprint(renamed) == plan_fingerprint(p)
    moved = p.model_copy(update={"shipments": [s.model_copy(update={"ready_by": NOW}) for s in p.shipments]})
    assert plan_fingerprint(moved) == plan_fingerprint(p)
    dearer = p.model_copy(update={"cost_minor": p.cost_minor + 1})
    assert plan_fingerprint(dearer) != plan_fingerprint(p)
    fewer = p.model_copy(update={"shipments": p.shipments[:1]})
    assert plan_fingerprint(fewer) != plan_fingerprint(p)


@pytest.mark.parametrize(
    ("shape", "split", "transfer"),
    [
        (Shape.AS_POLICY, SplitMode.ALLOWED, True),
        (Shape.NO_TRANSFER, SplitMode.ALLOWED, False),
        (Shape.ONE_NODE, SplitMode.NEVER, False),
        (Shape.ONE_SHIPMENT, SplitMode.NEVER, True),
    ],
)
def test_variants_only_narrow_split_and_transfer(shape, split, transfer):
    pol = policy(
        strategy("a", transfer={"max_hours": 24}, split={"mode": "allowed", "max_shipments": 4}),
        strategy("b", "distance", transfer={"max_hours": 24}),
    )
    cart = order("A:1")
    variant = PlanVariant(method=Method.DELIVERY, service_level=ServiceLevel.EXPEDITED, shape=shape)
    o, narrowed = variant_inputs(cart, pol, variant)
    assert (o.service_level, o.pickup_node_id) == (ServiceLevel.EXPEDITED, None)
    strategies = narrowed.profiles[-1].strategies
    assert [s.split.mode for s in strategies] == [split, split]
    assert [s.transfer is not None for s in strategies] == [transfer, transfer]
    assert [s.ranking for s in strategies] == [s.ranking for s in pol.profiles[-1].strategies]
    assert narrowed.costs == pol.costs
    assert narrowed.shipping_methods == pol.shipping_methods
    assert pol.profiles[-1].strategies[0].split.max_shipments == 4  # the given policy is untouched


def test_variant_method_and_branch_agree():
    with pytest.raises(ValueError, match="names its branch"):
        variant_inputs(order("A:1"), plain_policy(), PlanVariant(method=Method.PICKUP))
    with pytest.raises(ValueError, match="names its branch"):
        variant_inputs(order("A:1"), plain_policy(), PlanVariant(method=Method.DELIVERY, pickup_node_id="ST"))


def test_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        options(order("A:1"), ONE_DC, plain_policy(), now=NOW.replace(tzinfo=None))


def test_a_quote_binds_the_option_and_the_cart():
    cart = order("A:2", "B:1")
    option = by_kind(options(cart, checkout_network(), transfer_policy()), "ship_standard")
    payload = quote_payload(cart, option)
    assert (payload.option_id, payload.plan_fingerprint) == (option.option_id, option.plan_fingerprint)
    assert payload.variant == option.variant
    assert (payload.price_minor, payload.currency, payload.deliver_by) == (500, "USD", option.deliver_by)
    assert payload.cart_fingerprint == cart_fingerprint(cart)
    token = sign_quote(payload, "s" * 32, NOW, timedelta(minutes=15))
    verified = verify_quote(token, ["s" * 32], NOW)
    assert verified.option_id == option.option_id
    # What the order needs to re-plan under the customer's choice travels in the quote itself.
    again = plan_variant(cart, checkout_network(), transfer_policy(), NOW, verified.variant, destination=DEST)
    assert plan_fingerprint(again) == verified.plan_fingerprint
