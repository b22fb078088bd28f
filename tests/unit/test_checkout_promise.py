"""The promise as a customer sees it at checkout: ``fulfilment_options`` (and ``sourcing.plan`` under it) on small
networks at explicit instants, read as exact ready-by instants, deliver-by days and the words shown.

Every expected value is worked out by hand in the table or the comment beside it. Conventions, unless a case
says otherwise: the week of Monday 2026-03-02; a branch ("SHOP", 33 km away: zone 1) open Monday to Friday
08:00-18:00 *local*, order cut-off 15:00 local, two hours to pick and pack; the carrier table of
``options_support``: standard is 2 business days in zone 1, expedited 1, Monday to Friday. Offsets that week:
New York UTC-5 (EST), Berlin UTC+1 (CET), Tokyo UTC+9. US DST starts Sunday 2026-03-08 (EDT, UTC-4) and ends
Sunday 2026-11-01; Europe's starts Sunday 2026-03-29 (CEST, UTC+2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.network import CarrierServiceSpec, NetworkSnapshot, NodeKind, NodeView, OperatingHours, TransferLaneSpec
from domain.options import FulfilmentOption
from domain.policy import PolicyDocument
from tests.unit.options_support import (
    BRANCH_CAPS,
    SERVICES,
    branch,
    dc,
    kinds,
    network,
    options,
    plain_policy,
    transfer_policy,
)
from tests.unit.sourcing_support import lane, node, order, run, service

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
TOKYO = "Asia/Tokyo"
CUT_OFF = time(15, 0)
EVERY_DAY = OperatingHours(**{d: ("08:00", "18:00") for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
ROUND_THE_CLOCK = OperatingHours(**{d: ("00:00", "24:00") for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
# The capacity filter off: a full node stays a candidate and its promise moves instead.
RELAXED = plain_policy(filters={"require_capacity": False})

MON_2, WED_4, THU_5, FRI_6 = date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6)
MON_9, TUE_10, WED_11, THU_12 = date(2026, 3, 9), date(2026, 3, 10), date(2026, 3, 11), date(2026, 3, 12)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def shop(tz: str = BERLIN, **kwargs: Any) -> NodeView:
    """The branch of the module docstring, in ``tz``."""
    kwargs.setdefault("cutoff_local", CUT_OFF)
    return branch("SHOP", 0.3, timezone=tz, **kwargs)


def shop_hours(tz: str = BERLIN, *, hours: OperatingHours = EVERY_DAY, **kwargs: Any) -> NodeView:
    """The same branch with other hours (seven days a week unless given)."""
    kwargs.setdefault("cutoff_local", CUT_OFF)
    return node("SHOP", 0.3, kind=NodeKind.STORE, caps=BRANCH_CAPS, hours=hours, timezone=tz, **kwargs)


def on_holiday(view: NodeView, *days: date) -> NodeView:
    return view.model_copy(update={"holidays": frozenset(days)})


def checkout(
    view: NodeView,
    now: datetime,
    *lines: str,
    pol: PolicyDocument | None = None,
    services: Iterable[CarrierServiceSpec] = SERVICES,
) -> dict[str, FulfilmentOption]:
    """The options for a cart at a one-branch network, by kind."""
    snap = network([view], {view.node_id: {"A": 9}}, services=services)
    found = options(order(*(lines or ("A:1",))), snap, pol or plain_policy(), now=now)
    return {o.kind.value: o for o in found}


def pickup_words(when: str) -> str:
    return f"Pick up at Node SHOP {when} (33 km away)"


def assert_promise(
    found: Mapping[str, FulfilmentOption], ready: datetime, when: str, deliver: date, fast: date | None = None
) -> None:
    """Pickup ready-by and its words, the standard parcel's day, and the expedited one's when given."""
    pickup = found["pickup_nearest"]
    assert pickup.ready_by == ready
    assert pickup.trade_off == pickup_words(when)
    assert pickup.deliver_by is None
    assert found["ship_standard"].deliver_by == deliver
    if fast is not None:
        assert found["ship_expedited"].deliver_by == fast


# --- time zones -----------------------------------------------------------------------------------------------

SAME_INSTANT = [
    # 14:30 UTC on Wednesday 4 March.
    # New York 09:30 EST, before its cut-off: 2 h of work, ready 11:30 EST = 16:30Z; the parcel leaves Wednesday,
    # 2 business days: Friday; expedited: Thursday.
    pytest.param(NEW_YORK, "2026-03-04 14:30", "2026-03-04 16:30", "today 11:30", FRI_6, THU_5, id="14:30Z-new-york"),
    # Berlin 15:30 CET, past its 15:00 cut-off: Thursday 08:00-10:00 CET = 09:00Z; Thursday + 2 = Monday.
    pytest.param(BERLIN, "2026-03-04 14:30", "2026-03-05 09:00", "tomorrow 10:00", MON_9, FRI_6, id="14:30Z-berlin"),
    # Tokyo 23:30 JST Wednesday, closed: Thursday 08:00-10:00 JST = 01:00Z Thursday.
    pytest.param(TOKYO, "2026-03-04 14:30", "2026-03-05 01:00", "tomorrow 10:00", MON_9, FRI_6, id="14:30Z-tokyo"),
    # 22:30 UTC on Wednesday.
    # New York 17:30 EST, past the cut-off: Thursday 10:00 EST = 15:00Z.
    pytest.param(
        NEW_YORK, "2026-03-04 22:30", "2026-03-05 15:00", "tomorrow 10:00", MON_9, FRI_6, id="22:30Z-new-york"
    ),
    # Berlin 23:30 CET Wednesday: Thursday 10:00 CET = 09:00Z.
    pytest.param(BERLIN, "2026-03-04 22:30", "2026-03-05 09:00", "tomorrow 10:00", MON_9, FRI_6, id="22:30Z-berlin"),
    # Tokyo 07:30 JST *Thursday*, before opening: the same 10:00 JST Thursday is "today" there, and the expedited
    # parcel (Friday) arrives "tomorrow".
    pytest.param(TOKYO, "2026-03-04 22:30", "2026-03-05 01:00", "today 10:00", MON_9, FRI_6, id="22:30Z-tokyo"),
]


@pytest.mark.parametrize(("tz", "now", "ready", "when", "deliver", "fast"), SAME_INSTANT)
def test_one_utc_instant_is_a_different_local_day_at_each_branch(
    tz: str, now: str, ready: str, when: str, deliver: date, fast: date
) -> None:
    """The branch's own clock decides: whether the cut-off has passed, which day is "today", when work starts."""
    assert_promise(checkout(shop(tz), utc(now)), utc(ready), when, deliver, fast)


def test_words_for_the_delivery_days_are_relative_to_the_branch_local_today() -> None:
    """22:30Z Wednesday is Thursday in Tokyo: the expedited parcel due Friday arrives "tomorrow" there, but on
    "Friday 6 Mar" as seen from New York, still on Wednesday."""
    tokyo = checkout(shop(TOKYO), utc("2026-03-04 22:30"))
    new_york = checkout(shop(NEW_YORK), utc("2026-03-04 22:30"))
    assert tokyo["ship_expedited"].trade_off == "Ships expedited, arrives tomorrow"
    assert new_york["ship_expedited"].trade_off == "Ships expedited, arrives Friday 6 Mar"
    assert tokyo["ship_standard"].trade_off == "Ships standard in one shipment, arrives Monday 9 Mar"
    assert new_york["ship_standard"].trade_off == "Ships standard in one shipment, arrives Monday 9 Mar"


@pytest.mark.parametrize(
    ("tz", "now", "ready"),
    [
        # 13:00 local everywhere, plus two hours: 15:00 local, three different instants.
        pytest.param(NEW_YORK, "2026-03-04 18:00", "2026-03-04 20:00", id="new-york-15:00-EST-is-20:00Z"),
        pytest.param(BERLIN, "2026-03-04 12:00", "2026-03-04 14:00", id="berlin-15:00-CET-is-14:00Z"),
        pytest.param(TOKYO, "2026-03-04 04:00", "2026-03-04 06:00", id="tokyo-15:00-JST-is-06:00Z"),
    ],
)
def test_pickup_today_15_00_is_the_branch_local_time(tz: str, now: str, ready: str) -> None:
    """ "today 15:00" on the page is the branch's wall clock, not UTC and not the customer's."""
    pickup = checkout(shop(tz), utc(now))["pickup_nearest"]
    assert pickup.ready_by == utc(ready)
    assert pickup.ready_by.astimezone(ZoneInfo(tz)) == datetime(2026, 3, 4, 15, 0, tzinfo=ZoneInfo(tz))
    assert pickup.trade_off == pickup_words("today 15:00")


# --- order cut-off ----------------------------------------------------------------------------------------------

CUT_OFFS = [
    # New York: 15:00 EST is 20:00Z.
    pytest.param(NEW_YORK, "2026-03-04 19:59", "2026-03-04 21:59", "today 16:59", FRI_6, THU_5, id="new-york-14:59"),
    pytest.param(NEW_YORK, "2026-03-04 20:00", "2026-03-04 22:00", "today 17:00", FRI_6, THU_5, id="new-york-15:00"),
    # One minute late: Thursday 08:00-10:00 EST = 15:00Z, and the parcel leaves Thursday: Thursday + 2 = Monday.
    pytest.param(NEW_YORK, "2026-03-04 20:01", "2026-03-05 15:00", "tomorrow 10:00", MON_9, FRI_6, id="new-york-15:01"),
    # Berlin: 15:00 CET is 14:00Z.
    pytest.param(BERLIN, "2026-03-04 13:59", "2026-03-04 15:59", "today 16:59", FRI_6, THU_5, id="berlin-14:59"),
    pytest.param(BERLIN, "2026-03-04 14:01", "2026-03-05 09:00", "tomorrow 10:00", MON_9, FRI_6, id="berlin-15:01"),
    # Tokyo: 15:00 JST is 06:00Z.
    pytest.param(TOKYO, "2026-03-04 05:59", "2026-03-04 07:59", "today 16:59", FRI_6, THU_5, id="tokyo-14:59"),
    pytest.param(TOKYO, "2026-03-04 06:01", "2026-03-05 01:00", "tomorrow 10:00", MON_9, FRI_6, id="tokyo-15:01"),
]


@pytest.mark.parametrize(("tz", "now", "ready", "when", "deliver", "fast"), CUT_OFFS)
def test_order_cut_off_one_minute_either_side(
    tz: str, now: str, ready: str, when: str, deliver: date, fast: date
) -> None:
    """An order at the cut-off (local) is still picked today; one minute after, pickup and delivery both move
    to the next operating day."""
    assert_promise(checkout(shop(tz), utc(now)), utc(ready), when, deliver, fast)


def test_cut_off_words_at_checkout() -> None:
    """What the customer reads either side of the New York cut-off."""
    before = checkout(shop(NEW_YORK), utc("2026-03-04 19:59"))
    after = checkout(shop(NEW_YORK), utc("2026-03-04 20:01"))
    assert kinds(before.values()) == kinds(after.values()) == ["pickup_nearest", "ship_standard", "ship_expedited"]
    assert [o.trade_off for o in before.values()] == [
        "Pick up at Node SHOP today 16:59 (33 km away)",
        "Ships standard in one shipment, arrives Friday 6 Mar",
        "Ships expedited, arrives tomorrow",
    ]
    assert [o.trade_off for o in after.values()] == [
        "Pick up at Node SHOP tomorrow 10:00 (33 km away)",
        "Ships standard in one shipment, arrives Monday 9 Mar",
        "Ships expedited, arrives Friday 6 Mar",
    ]


CARRIER_COLLECTS_AT_17 = service("STD", days=2, cutoff=time(17, 0))


@pytest.mark.parametrize(
    ("node_cut_off", "now", "ready", "ship", "deliver"),
    [
        # 14:59 EST: ready 16:59 EST, collected at 17:00 EST (22:00Z) the same day: Friday.
        pytest.param(CUT_OFF, "2026-03-04 19:59", "2026-03-04 21:59", "2026-03-04 22:00", FRI_6, id="node-14:59"),
        # 15:01 EST: the node starts Thursday, ready 10:00 EST, collected Thursday 17:00 EST: Monday.
        pytest.param(CUT_OFF, "2026-03-04 20:01", "2026-03-05 15:00", "2026-03-05 22:00", MON_9, id="node-15:01"),
        # No node cut-off; ready 17:00 EST exactly as the carrier calls: it goes today.
        pytest.param(None, "2026-03-04 20:00", "2026-03-04 22:00", "2026-03-04 22:00", FRI_6, id="ready-at-17:00"),
        # Ready 17:01 EST: the pickup would be today, but the parcel waits for Thursday's 17:00 collection.
        pytest.param(None, "2026-03-04 20:01", "2026-03-04 22:01", "2026-03-05 22:00", MON_9, id="ready-at-17:01"),
    ],
)
def test_node_and_carrier_cut_offs_in_the_plan(
    node_cut_off: time | None, now: str, ready: str, ship: str, deliver: date
) -> None:
    """The engine's shipment carries all three instants: ready-by (node cut-off), ship-by (carrier cut-off, node
    local) and deliver-by (business days from the handover day)."""
    view = shop(NEW_YORK, cutoff_local=node_cut_off)
    snap = network([view], {"SHOP": {"A": 9}}, services=[CARRIER_COLLECTS_AT_17])
    (shipment,) = run(order("A:1"), snap, plain_policy(), now=utc(now)).shipments
    assert (shipment.ready_by, shipment.ship_by, shipment.deliver_by) == (utc(ready), utc(ship), deliver)


# --- weekends ---------------------------------------------------------------------------------------------------

WEEKENDS = [
    # Friday 14:59 CET: ready 16:59 CET = 15:59Z; handed over Friday, 2 business days: Monday, Tuesday.
    pytest.param("2026-03-06 13:59", "2026-03-06 15:59", "today 16:59", TUE_10, MON_9, id="friday-before-cut-off"),
    # Friday 15:01 CET: the branch is shut Saturday and Sunday, so Monday 08:00-10:00 CET = 09:00Z; Wednesday.
    pytest.param(
        "2026-03-06 14:01", "2026-03-09 09:00", "Monday 9 Mar 10:00", WED_11, TUE_10, id="friday-after-cut-off"
    ),
    # Saturday 11:00 CET: Monday, which is not "tomorrow" on a Saturday.
    pytest.param("2026-03-07 10:00", "2026-03-09 09:00", "Monday 9 Mar 10:00", WED_11, TUE_10, id="saturday"),
    # Sunday 13:00 CET: the same Monday, "tomorrow" now.
    pytest.param("2026-03-08 12:00", "2026-03-09 09:00", "tomorrow 10:00", WED_11, TUE_10, id="sunday"),
]


@pytest.mark.parametrize(("now", "ready", "when", "deliver", "fast"), WEEKENDS)
def test_a_branch_closed_at_weekends_starts_on_monday(
    now: str, ready: str, when: str, deliver: date, fast: date
) -> None:
    """Friday after the cut-off, Saturday and Sunday all become Monday's work (Berlin, no DST change here)."""
    assert_promise(checkout(shop(BERLIN), utc(now)), utc(ready), when, deliver, fast)


@pytest.mark.parametrize(
    ("now", "ready", "when"),
    [
        # Friday 15:01 CET at a branch that works Saturdays: Saturday 10:00 CET = 09:00Z.
        pytest.param("2026-03-06 14:01", "2026-03-07 09:00", "tomorrow 10:00", id="friday-after-cut-off"),
        # Saturday 11:00 CET: ready 13:00 CET = 12:00Z the same day.
        pytest.param("2026-03-07 10:00", "2026-03-07 12:00", "today 13:00", id="saturday"),
    ],
)
def test_the_carrier_does_not_deliver_at_weekends(now: str, ready: str, when: str) -> None:
    """The branch packs on Saturday, but a parcel handed over on Saturday counts its transit from Monday:
    standard (2 days) Tuesday, expedited (1 day) Monday; the same as a Friday handover."""
    found = checkout(shop_hours(BERLIN), utc(now))
    assert_promise(found, utc(ready), when, TUE_10, MON_9)
    assert found["ship_standard"].plan.shipments[0].ship_by == utc(ready)  # no carrier cut-off: it leaves at once


@pytest.mark.parametrize(
    ("now", "deliver", "words"),
    [
        # Wednesday 10:00 CET, ready 12:00: delivered the same day.
        pytest.param("2026-03-04 09:00", WED_4, "arrives today", id="wednesday"),
        # Friday 15:01 CET: packed Saturday; a 0-day parcel handed over on a Saturday arrives Monday.
        pytest.param("2026-03-06 14:01", MON_9, "arrives Monday 9 Mar", id="friday-after-cut-off"),
        # Sunday 10:00 CET, ready 12:00 Sunday: Monday, "tomorrow".
        pytest.param("2026-03-08 09:00", MON_9, "arrives tomorrow", id="sunday"),
    ],
)
def test_same_day_delivery_skips_the_weekend(now: str, deliver: date, words: str) -> None:
    """Zero transit days still means a weekday."""
    same_day = service("SAME", days=0)
    found = checkout(shop_hours(BERLIN), utc(now), services=[same_day])
    assert found["ship_standard"].deliver_by == deliver
    assert found["ship_standard"].trade_off == f"Ships standard in one shipment, {words}"


# --- holidays ---------------------------------------------------------------------------------------------------

HOLIDAYS = [
    # No holiday: Wednesday 15:01 CET goes to Thursday 10:00 CET = 09:00Z; Thursday + 2 = Monday.
    pytest.param((), "2026-03-04 14:01", "2026-03-05 09:00", "tomorrow 10:00", MON_9, id="control"),
    # Thursday off: Friday 10:00 CET; Friday + 2 = Tuesday.
    pytest.param((THU_5,), "2026-03-04 14:01", "2026-03-06 09:00", "Friday 6 Mar 10:00", TUE_10, id="next-day-off"),
    # Ordered on the holiday itself, 09:00 CET: Friday, which is "tomorrow".
    pytest.param((THU_5,), "2026-03-05 08:00", "2026-03-06 09:00", "tomorrow 10:00", TUE_10, id="ordered-on-it"),
    # Thursday and Friday off, then the weekend: Monday; Monday + 2 = Wednesday.
    pytest.param((THU_5, FRI_6), "2026-03-04 14:01", "2026-03-09 09:00", "Monday 9 Mar 10:00", WED_11, id="two-off"),
    # Friday after the cut-off with Monday off: Tuesday 10:00 CET; Tuesday + 2 = Thursday.
    pytest.param((MON_9,), "2026-03-06 14:01", "2026-03-10 09:00", "Tuesday 10 Mar 10:00", THU_12, id="monday-off"),
    # The holiday is the branch's, not the carrier's: packed Wednesday 12:00 CET, the parcel still travels on
    # Thursday: Friday.
    pytest.param((THU_5,), "2026-03-04 09:00", "2026-03-04 11:00", "today 12:00", FRI_6, id="carrier-works-it"),
]


@pytest.mark.parametrize(("holidays", "now", "ready", "when", "deliver"), HOLIDAYS)
def test_a_branch_holiday_moves_the_promise_to_the_next_operating_day(
    holidays: tuple[date, ...], now: str, ready: str, when: str, deliver: date
) -> None:
    """Holidays are local days the branch does not work (Berlin)."""
    assert_promise(checkout(on_holiday(shop(BERLIN), *holidays), utc(now)), utc(ready), when, deliver)


# --- capacity ---------------------------------------------------------------------------------------------------

CAPACITY = [
    # Wednesday 10:00 CET (09:00Z) unless said: with room, ready 12:00 CET = 11:00Z, delivered Friday.
    pytest.param(
        {"orders_per_day": 5, "used_orders": {WED_4: 4}},
        "A:1",
        None,
        "2026-03-04 09:00",
        "2026-03-04 11:00",
        "today 12:00",
        FRI_6,
        id="last-order-slot",
    ),
    pytest.param(
        {"orders_per_day": 5, "used_orders": {WED_4: 5}},
        "A:1",
        RELAXED,
        "2026-03-04 09:00",
        "2026-03-05 09:00",
        "tomorrow 10:00",
        MON_9,
        id="orders-full-today",
    ),
    pytest.param(
        {"orders_per_day": 5, "used_orders": {WED_4: 5, THU_5: 5}},
        "A:1",
        RELAXED,
        "2026-03-04 09:00",
        "2026-03-06 09:00",
        "Friday 6 Mar 10:00",
        TUE_10,
        id="orders-full-two-days",
    ),
    pytest.param(
        {"orders_per_day": 5, "used_orders": {FRI_6: 5}},
        "A:1",
        RELAXED,
        "2026-03-06 09:00",
        "2026-03-09 09:00",
        "Monday 9 Mar 10:00",
        WED_11,
        id="orders-full-friday",
    ),
    pytest.param(
        # Yesterday's usage is yesterday's.
        {"orders_per_day": 5, "used_orders": {date(2026, 3, 3): 5}},
        "A:1",
        None,
        "2026-03-04 09:00",
        "2026-03-04 11:00",
        "today 12:00",
        FRI_6,
        id="yesterday-full",
    ),
    pytest.param(
        # 8 of 10 units used: two more fit.
        {"units_per_day": 10, "used_units": {WED_4: 8}},
        "A:2",
        None,
        "2026-03-04 09:00",
        "2026-03-04 11:00",
        "today 12:00",
        FRI_6,
        id="units-fit-exactly",
    ),
    pytest.param(
        # Three do not, while two units left today keep the node past the capacity filter: Thursday.
        {"units_per_day": 10, "used_units": {WED_4: 8}},
        "A:3",
        None,
        "2026-03-04 09:00",
        "2026-03-05 09:00",
        "tomorrow 10:00",
        MON_9,
        id="units-one-too-many",
    ),
]


@pytest.mark.parametrize(("capacity", "line", "pol", "now", "ready", "when", "deliver"), CAPACITY)
def test_used_capacity_moves_the_promise(
    capacity: dict[str, Any], line: str, pol: PolicyDocument | None, now: str, ready: str, when: str, deliver: date
) -> None:
    """A day whose orders or units are used up is skipped (Berlin branch, capacity by local day)."""
    assert_promise(checkout(shop(BERLIN, **capacity), utc(now), line, pol=pol), utc(ready), when, deliver)


def test_a_full_branch_is_not_offered_under_the_default_policy() -> None:
    """``require_capacity`` (on by default) removes a node with no order capacity left today: nothing to offer
    from the only branch, rather than a later promise."""
    full = shop(BERLIN, orders_per_day=5, used_orders={WED_4: 5})
    assert checkout(full, utc("2026-03-04 09:00")) == {}


@pytest.mark.parametrize(
    ("used", "pol", "ready", "when"),
    [
        # 22:30Z Wednesday is 07:30 JST Thursday: Wednesday's usage is another day, ready 10:00 JST = 01:00Z.
        pytest.param({WED_4: 5}, None, "2026-03-05 01:00", "today 10:00", id="utc-day-full"),
        # Thursday (local) full: Friday 10:00 JST = 01:00Z Friday.
        pytest.param({THU_5: 5}, RELAXED, "2026-03-06 01:00", "tomorrow 10:00", id="local-day-full"),
    ],
)
def test_capacity_days_are_the_branch_local_days(
    used: dict[date, int], pol: PolicyDocument | None, ready: str, when: str
) -> None:
    """Tokyo is a day ahead of UTC late in the UTC evening; the capacity it has used is counted on its own day."""
    full = shop(TOKYO, orders_per_day=5, used_orders=used)
    pickup = checkout(full, utc("2026-03-04 22:30"), pol=pol)["pickup_nearest"]
    assert pickup.ready_by == utc(ready)
    assert pickup.trade_off == pickup_words(when)


# --- transfers --------------------------------------------------------------------------------------------------


def home_network(into_home: TransferLaneSpec, *, home_tz: str = "UTC", dc_tz: str = "UTC") -> NetworkSnapshot:
    """The home branch BR (11 km) has 1 of A; the store ST (33 km, UTC) has the whole cart A:2 B:1; the DC has
    plenty and one lane into BR. Everything opens 08:00-18:00 local on weekdays, with two hours to pick."""
    return network(
        [branch("BR", 0.1, timezone=home_tz), branch("ST", 0.3, caps=("pickup", "ship")), dc("DC", 2, timezone=dc_tz)],
        {"BR": {"A": 1}, "ST": {"A": 5, "B": 5}, "DC": {"A": 100, "B": 100}},
        home="BR",
        lanes=[into_home],
    )


NOW = utc("2026-03-04 15:00")
# The store has everything: ready 17:00Z today, whatever the lane does.
STORE_READY = utc("2026-03-04 17:00")

TRANSFERS = [
    # Every case: at 15:00Z the DC picks A:1 B:1 by 17:00Z. Then the lane, then BR's two hours of work.
    # Leaves at once, 9 h: arrives 02:00Z Thursday; BR opens 08:00, ready 10:00; delivered Thursday + 2 = Monday.
    pytest.param(lane("DC", "BR", 9), "2026-03-05 02:00", "2026-03-05 10:00", "tomorrow 10:00", MON_9, id="overnight"),
    # 0 h: arrives 17:00Z, one hour of work before BR closes at 18:00, the second hour Thursday 08:00-09:00.
    pytest.param(lane("DC", "BR", 0), "2026-03-04 17:00", "2026-03-05 09:00", "tomorrow 09:00", MON_9, id="carry-over"),
    # 18 h: arrives Thursday 11:00Z while BR is open: ready 13:00Z.
    pytest.param(lane("DC", "BR", 18), "2026-03-05 11:00", "2026-03-05 13:00", "tomorrow 13:00", MON_9, id="midday"),
    # Trucks Wednesday and Friday 17:00: ready at 17:00 catches Wednesday's (23:00 arrival), BR Thursday 10:00.
    pytest.param(
        lane("DC", "BR", 6, days=("wed", "fri"), departs=time(17, 0)),
        "2026-03-04 23:00",
        "2026-03-05 10:00",
        "tomorrow 10:00",
        MON_9,
        id="catches-the-truck",
    ),
    # Trucks Wednesday and Thursday 16:00: Wednesday's has gone, Thursday's arrives 22:00Z after BR closes:
    # Friday 10:00; delivered Friday + 2 = Tuesday.
    pytest.param(
        lane("DC", "BR", 6, days=("wed", "thu"), departs=time(16, 0)),
        "2026-03-05 22:00",
        "2026-03-06 10:00",
        "Friday 6 Mar 10:00",
        TUE_10,
        id="misses-the-truck",
    ),
    # 46 h: arrives Friday 15:00Z, exactly the policy's 48 h from 15:00Z Wednesday: allowed; ready 17:00Z.
    pytest.param(lane("DC", "BR", 46), "2026-03-06 15:00", "2026-03-06 17:00", "Friday 6 Mar 17:00", TUE_10, id="48h"),
]


@pytest.mark.parametrize(("into_home", "arrives", "ready", "when", "deliver"), TRANSFERS)
def test_home_pickup_via_transfer_is_ready_after_arrival_plus_the_branch_work(
    into_home: TransferLaneSpec, arrives: str, ready: str, when: str, deliver: date
) -> None:
    """Ready-by at the home branch = the transfer's arrival (DC ready, next departure, transit hours), then the
    branch's own pick/pack within its hours; the store that has the stock is ready sooner."""
    found = {o.kind.value: o for o in options(order("A:2", "B:1"), home_network(into_home), transfer_policy(), now=NOW)}
    home, store = found["pickup_home"], found["pickup_nearest"]
    assert home.via_transfer
    assert [(t.origin_node_id, t.sku, t.quantity, t.arrives_at) for t in home.plan.transfers] == [
        ("DC", "A", 1, utc(arrives)),
        ("DC", "B", 1, utc(arrives)),
    ]
    assert home.ready_by == utc(ready)
    assert home.trade_off == f"Pick up at your home branch, Node BR {when} (via transfer)"
    assert (store.node_ids, store.ready_by, store.via_transfer) == (["ST"], STORE_READY, False)
    assert store.trade_off == "Pick up at Node ST today 17:00 (33 km away)"
    assert store.ready_by is not None
    assert home.ready_by is not None
    assert store.ready_by < home.ready_by
    # The same transfer, then a parcel from BR (11 km, zone 1): 2 business days after BR's ready day.
    consolidated = found["ship_consolidated"]
    assert (consolidated.node_ids, consolidated.deliver_by) == (["BR"], deliver)


def test_a_transfer_arriving_after_the_policy_window_offers_no_home_pickup() -> None:
    """47 h arrives Friday 16:00Z, an hour past the 48 h window: BR cannot be the pickup, the store still is."""
    found = options(order("A:2", "B:1"), home_network(lane("DC", "BR", 47)), transfer_policy(), now=NOW)
    assert kinds(found) == ["pickup_nearest", "ship_standard", "ship_expedited"]
    assert found[0].ready_by == STORE_READY


def test_transfer_departures_are_origin_local_and_the_pickup_is_home_local() -> None:
    """A New York DC sends a 06:00 (New York time) truck, 8 h, to a Berlin home branch.

    15:00Z Wednesday is 10:00 EST: the DC is ready 12:00 EST (17:00Z), after Wednesday's 06:00 EST truck, so
    Thursday's: 06:00 EST = 11:00Z, arriving 19:00Z = 20:00 CET, after BR has closed. BR works Friday 08:00-10:00
    CET = 09:00Z. (Read as Berlin time, the truck would have left at 05:00Z and BR been ready Thursday.)"""
    weekday_truck = lane("DC", "BR", 8, days=("mon", "tue", "wed", "thu", "fri"), departs=time(6, 0))
    snap = home_network(weekday_truck, home_tz=BERLIN, dc_tz=NEW_YORK)
    found = {o.kind.value: o for o in options(order("A:2", "B:1"), snap, transfer_policy(), now=NOW)}
    home = found["pickup_home"]
    assert {t.arrives_at for t in home.plan.transfers} == {utc("2026-03-05 19:00")}
    assert home.ready_by == utc("2026-03-06 09:00")
    assert home.trade_off == "Pick up at your home branch, Node BR Friday 6 Mar 10:00 (via transfer)"


# --- DST --------------------------------------------------------------------------------------------------------

DST = [
    # New York, 19:30Z on two Wednesdays. 4 March: 14:30 EST, before the cut-off: 16:30 EST = 21:30Z.
    pytest.param(NEW_YORK, "2026-03-04 19:30", "2026-03-04 21:30", "today 16:30", FRI_6, id="new-york-before-dst"),
    # 11 March: 15:30 EDT, past it: Thursday 12 March 10:00 EDT = 14:00Z; Thursday + 2 = Monday 16.
    pytest.param(
        NEW_YORK, "2026-03-11 19:30", "2026-03-12 14:00", "tomorrow 10:00", date(2026, 3, 16), id="new-york-after-dst"
    ),
    # Friday 6 March 15:01 EST (20:01Z): Monday 9 March 10:00, now EDT: 14:00Z, an hour earlier in UTC than
    # the Thursday 10:00 EST of the week before (15:00Z).
    pytest.param(
        NEW_YORK, "2026-03-06 20:01", "2026-03-09 14:00", "Monday 9 Mar 10:00", WED_11, id="new-york-weekend-of-dst"
    ),
    # Berlin, 13:30Z on two Wednesdays. 25 March: 14:30 CET: 16:30 CET = 15:30Z; Friday 27.
    pytest.param(
        BERLIN, "2026-03-25 13:30", "2026-03-25 15:30", "today 16:30", date(2026, 3, 27), id="berlin-before-dst"
    ),
    # 1 April: 15:30 CEST, past the cut-off: Thursday 2 April 10:00 CEST = 08:00Z; Thursday + 2 = Monday 6.
    pytest.param(
        BERLIN, "2026-04-01 13:30", "2026-04-02 08:00", "tomorrow 10:00", date(2026, 4, 6), id="berlin-after-dst"
    ),
    # Friday 27 March 15:01 CET (14:01Z): Monday 30 March 10:00 CEST = 08:00Z; Wednesday 1 April.
    pytest.param(
        BERLIN,
        "2026-03-27 14:01",
        "2026-03-30 08:00",
        "Monday 30 Mar 10:00",
        date(2026, 4, 1),
        id="berlin-weekend-of-dst",
    ),
]


@pytest.mark.parametrize(("tz", "now", "ready", "when", "deliver"), DST)
def test_cut_off_and_opening_follow_the_wall_clock_across_dst(
    tz: str, now: str, ready: str, when: str, deliver: date
) -> None:
    """The same UTC time of day is before the 15:00 cut-off in winter and after it in summer, and Monday's
    opening moves an hour earlier in UTC over the weekend of the change."""
    assert_promise(checkout(shop(tz), utc(now)), utc(ready), when, deliver)


@pytest.mark.parametrize(
    ("now", "ready", "when", "deliver"),
    [
        # Sunday 8 March 01:30 EST (06:30Z); 120 elapsed minutes cross 02:00 EST -> 03:00 EDT: 08:30Z = 04:30 EDT,
        # three hours later on the wall clock. Handed over on a Sunday: Monday, Tuesday.
        pytest.param("2026-03-08 06:30", "2026-03-08 08:30", "today 04:30", TUE_10, id="spring-forward"),
        # Sunday 1 November 01:30 EDT (05:30Z, the first 01:30); 120 minutes cross 02:00 EDT -> 01:00 EST:
        # 07:30Z = 02:30 EST, one hour later on the wall clock. Sunday handover: Tuesday 3 November.
        pytest.param("2026-11-01 05:30", "2026-11-01 07:30", "today 02:30", date(2026, 11, 3), id="fall-back"),
    ],
)
def test_pick_pack_minutes_are_elapsed_time_across_dst(now: str, ready: str, when: str, deliver: date) -> None:
    """A New York branch open round the clock, no cut-off: the two hours of work are two real hours."""
    view = shop_hours(NEW_YORK, hours=ROUND_THE_CLOCK, cutoff_local=None)
    assert_promise(checkout(view, utc(now)), utc(ready), when, deliver)


# --- the plan's promised date for a pickup -----------------------------------------------------------------------

LATE_OPENING = OperatingHours(**{d: ("08:00", "21:00") for d in ("mon", "tue", "wed", "thu", "fri")})
EARLY_OPENING = OperatingHours(**{d: ("07:00", "18:00") for d in ("mon", "tue", "wed", "thu", "fri")})
LOCAL_DAY_CASES = [
    # New York, open to 21:00: 18:00 EST Wednesday (23:00Z) + 2 h = 20:00 EST Wednesday = 01:00Z Thursday.
    pytest.param(
        shop_hours(NEW_YORK, hours=LATE_OPENING, cutoff_local=None),
        "2026-03-04 23:00",
        "2026-03-05 01:00",
        "today 20:00",
        WED_4,
        id="new-york-evening",
    ),
    # Tokyo, open from 07:00, one hour to pick: 06:30 JST Thursday (21:30Z Wednesday) -> 08:00 JST Thursday
    # = 23:00Z Wednesday.
    pytest.param(
        shop_hours(TOKYO, hours=EARLY_OPENING, cutoff_local=None, pick_pack_minutes=60),
        "2026-03-04 21:30",
        "2026-03-04 23:00",
        "today 08:00",
        THU_5,
        id="tokyo-morning",
    ),
]


@pytest.mark.parametrize(("view", "now", "ready", "when", "local_day"), LOCAL_DAY_CASES)
def test_a_pickup_ready_near_utc_midnight_is_shown_on_the_branch_day(
    view: NodeView, now: str, ready: str, when: str, local_day: date
) -> None:
    """The instant and the words are right: the customer collects on the branch's local day."""
    pickup = checkout(view, utc(now))["pickup_nearest"]
    assert pickup.ready_by == utc(ready)
    assert pickup.ready_by.astimezone(ZoneInfo(view.timezone)).date() == local_day
    assert pickup.trade_off == pickup_words(when)


@pytest.mark.parametrize(("view", "now", "ready", "when", "local_day"), LOCAL_DAY_CASES)
def test_the_plan_promises_a_pickup_on_the_branch_local_day(
    view: NodeView, now: str, ready: str, when: str, local_day: date
) -> None:
    """The plan behind the option promises the day the customer can collect: the branch's local day."""
    pickup = checkout(view, utc(now))["pickup_nearest"]
    assert pickup.plan.promised_date() == local_day
