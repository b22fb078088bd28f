"""Promise maths (``domain.promise``): tables of calendars and instants, then properties over random calendars.

Week of 2026-03-02 (Monday). US DST starts Sunday 2026-03-08 and ends Sunday 2026-11-01; Europe's starts Sunday
2026-03-29. Times in the tables are node-local unless a case says UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.network import WEEK, OperatingHours, Weekday
from domain.promise import (
    NodeCalendar,
    NoOperatingDay,
    carrier_handover,
    delivery_date,
    is_operating_day,
    next_opening,
    opening_window,
    ready_by,
    transfer_arrival,
)

CHICAGO = "America/Chicago"
WEEKDAYS = {"mon": ["08:00", "18:00"], **{d: ["08:00", "18:00"] for d in ("tue", "wed", "thu", "fri")}}
EVERY_DAY = {d.value: ["08:00", "18:00"] for d in WEEK}
ROUND_THE_CLOCK = {d.value: ["00:00", "24:00"] for d in WEEK}


def cal(**changes: Any) -> NodeCalendar:
    """A Chicago DC open weekdays 08:00-18:00, cut-off 15:00, two hours of pick/pack, unless changed."""
    base: dict[str, Any] = {
        "node_id": "DC-1",
        "timezone": CHICAGO,
        "operating_hours": WEEKDAYS,
        "cutoff_local": time(15, 0),
        "pick_pack_minutes": 120,
    }
    return NodeCalendar.model_validate({**base, **changes})


def at(text: str, tz: str = CHICAGO) -> datetime:
    """A local wall-clock time in ``tz`` ("2026-03-02 09:00"), aware."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# --- ready_by -----------------------------------------------------------------------------------------------------

READY_BY: list[tuple[str, dict[str, Any], str, int, str]] = [
    # (case, calendar changes, received (local), units, ready (local))
    ("during hours", {}, "2026-03-02 09:00", 1, "2026-03-02 11:00"),
    ("received before opening", {}, "2026-03-02 06:00", 1, "2026-03-02 10:00"),
    ("just before cut-off", {}, "2026-03-02 14:59", 1, "2026-03-02 16:59"),
    ("exactly at cut-off is not after it", {}, "2026-03-02 15:00", 1, "2026-03-02 17:00"),
    ("just after cut-off", {}, "2026-03-02 15:01", 1, "2026-03-03 10:00"),
    ("received after close", {}, "2026-03-02 19:00", 1, "2026-03-03 10:00"),
    ("received exactly at close", {"cutoff_local": None}, "2026-03-02 18:00", 1, "2026-03-03 10:00"),
    ("cut-off skips only the day received", {}, "2026-03-02 23:30", 1, "2026-03-03 10:00"),
    ("pick/pack carries over close", {"cutoff_local": None}, "2026-03-02 17:00", 1, "2026-03-03 09:00"),
    ("carries over the weekend", {"cutoff_local": None}, "2026-03-06 17:00", 1, "2026-03-09 09:00"),
    ("carries over several days", {"pick_pack_minutes": 25 * 60}, "2026-03-02 08:00", 1, "2026-03-04 13:00"),
    ("finishes exactly at close", {"cutoff_local": None}, "2026-03-02 16:00", 1, "2026-03-02 18:00"),
    ("no pick/pack: ready at opening", {"pick_pack_minutes": 0}, "2026-03-02 05:00", 1, "2026-03-02 08:00"),
    ("received on Saturday", {}, "2026-03-07 10:00", 1, "2026-03-09 10:00"),
    ("received on Sunday night", {}, "2026-03-08 23:00", 1, "2026-03-09 10:00"),
    ("open on Saturday", {"operating_hours": EVERY_DAY}, "2026-03-07 10:00", 1, "2026-03-07 12:00"),
    ("holiday today", {"holidays": [date(2026, 3, 2)]}, "2026-03-02 09:00", 1, "2026-03-03 10:00"),
    (
        "holiday after a late order",
        {"holidays": [date(2026, 3, 3)]},
        "2026-03-02 19:00",
        1,
        "2026-03-04 10:00",
    ),
    (
        "holiday interrupts carry-over",
        {"cutoff_local": None, "holidays": [date(2026, 3, 3)]},
        "2026-03-02 17:00",
        1,
        "2026-03-04 09:00",
    ),
    (
        "orders full today",
        {"capacity_orders_per_day": 10, "used_orders": {date(2026, 3, 2): 10}},
        "2026-03-02 09:00",
        1,
        "2026-03-03 10:00",
    ),
    (
        "one order left today",
        {"capacity_orders_per_day": 10, "used_orders": {date(2026, 3, 2): 9}},
        "2026-03-02 09:00",
        1,
        "2026-03-02 11:00",
    ),
    (
        "orders full two days",
        {"capacity_orders_per_day": 1, "used_orders": {date(2026, 3, 2): 1, date(2026, 3, 3): 3}},
        "2026-03-02 09:00",
        1,
        "2026-03-04 10:00",
    ),
    (
        "units full today",
        {"capacity_units_per_day": 100, "used_units": {date(2026, 3, 2): 95}},
        "2026-03-02 09:00",
        10,
        "2026-03-03 10:00",
    ),
    (
        "units fit exactly",
        {"capacity_units_per_day": 100, "used_units": {date(2026, 3, 2): 90}},
        "2026-03-02 09:00",
        10,
        "2026-03-02 11:00",
    ),
    (
        "bigger than a day: first empty day",
        {"capacity_units_per_day": 100, "used_units": {date(2026, 3, 2): 20}},
        "2026-03-02 09:00",
        150,
        "2026-03-03 10:00",
    ),
    (
        "bigger than a day: today is empty",
        {"capacity_units_per_day": 100},
        "2026-03-02 09:00",
        150,
        "2026-03-02 11:00",
    ),
    (
        "24:00 close: work until midnight",
        {"operating_hours": {"mon": ["08:00", "24:00"], "tue": ["08:00", "24:00"]}, "cutoff_local": None},
        "2026-03-02 22:00",
        1,
        "2026-03-03 00:00",
    ),
    (
        "24:00 close: carry over midnight",
        {"operating_hours": {"mon": ["08:00", "24:00"], "tue": ["08:00", "24:00"]}, "cutoff_local": None},
        "2026-03-02 23:00",
        1,
        "2026-03-03 09:00",
    ),
    (
        "round the clock: straight through midnight",
        {"operating_hours": ROUND_THE_CLOCK, "cutoff_local": None},
        "2026-03-02 23:00",
        1,
        "2026-03-03 01:00",
    ),
]


@pytest.mark.parametrize(
    ("changes", "received", "units", "expected"),
    [case[1:] for case in READY_BY],
    ids=[case[0] for case in READY_BY],
)
def test_ready_by(changes: dict[str, Any], received: str, units: int, expected: str) -> None:
    ready = ready_by(cal(**changes), at(received), units=units)
    assert ready == at(expected)
    assert ready.tzinfo is UTC


@pytest.mark.parametrize(
    ("tz", "expected_utc"),
    [
        ("America/Chicago", "2026-03-02 17:00"),
        ("America/New_York", "2026-03-02 16:00"),
        ("Europe/Berlin", "2026-03-02 10:00"),
        ("Asia/Kolkata", "2026-03-02 05:30"),
    ],
)
def test_same_local_day_different_instants(tz: str, expected_utc: str) -> None:
    """Opening hours and cut-offs are local: the same wall clock is a different instant per node."""
    assert ready_by(cal(timezone=tz), at("2026-03-02 09:00", tz)) == utc(expected_utc)


def test_cut_off_is_local_to_the_node() -> None:
    """14:30 in Chicago is 15:30 in New York: after the New York node's cut-off, before the Chicago one's."""
    received = at("2026-03-02 14:30", CHICAGO)
    assert ready_by(cal(timezone=CHICAGO), received) == at("2026-03-02 16:30", CHICAGO)
    assert ready_by(cal(timezone="America/New_York"), received) == at("2026-03-03 10:00", "America/New_York")


DST: list[tuple[str, dict[str, Any], datetime, datetime]] = [
    # (case, calendar changes, received, ready); instants in UTC so the hour that moves is visible.
    (
        # Saturday is CST (UTC-6), Sunday's 08:00 is CDT (UTC-5): the carried-over hour ends at 09:00 CDT.
        "spring forward between two shifts",
        {"operating_hours": EVERY_DAY, "cutoff_local": None},
        utc("2026-03-07 23:00"),  # 17:00 CST Saturday
        utc("2026-03-08 14:00"),  # 09:00 CDT Sunday
    ),
    (
        # Working minutes are elapsed time: three hours from 00:30 CST is 04:30 CDT on the wall clock.
        "spring forward during a shift",
        {"operating_hours": ROUND_THE_CLOCK, "cutoff_local": None, "pick_pack_minutes": 180},
        utc("2026-03-08 06:30"),
        utc("2026-03-08 09:30"),
    ),
    (
        # Opening at 02:30 does not exist that day; fold=0 through UTC makes it 03:30 CDT.
        "opening inside the gap",
        {"operating_hours": {"sun": ["02:30", "10:00"]}, "cutoff_local": None, "pick_pack_minutes": 0},
        utc("2026-03-08 06:00"),  # 00:00 CST
        utc("2026-03-08 08:30"),
    ),
    (
        "fall back during a shift",
        {"operating_hours": ROUND_THE_CLOCK, "cutoff_local": None, "pick_pack_minutes": 180},
        utc("2026-11-01 05:30"),  # 00:30 CDT
        utc("2026-11-01 08:30"),  # 02:30 CST
    ),
    (
        # 01:30 happens twice; the first (CDT) is the one that counts.
        "opening at an ambiguous time",
        {"operating_hours": {"sun": ["01:30", "10:00"]}, "cutoff_local": None, "pick_pack_minutes": 0},
        utc("2026-11-01 05:00"),  # 00:00 CDT
        utc("2026-11-01 06:30"),
    ),
    (
        # The round-the-clock day of the change is 25 hours long; the 24:00 close is 06:00 UTC on Monday.
        "fall back: 24:00 close",
        {"operating_hours": {"sun": ["00:00", "24:00"]}, "cutoff_local": None, "pick_pack_minutes": 25 * 60},
        utc("2026-11-01 05:00"),  # 00:00 CDT
        utc("2026-11-02 06:00"),
    ),
    (
        "Berlin spring forward between two shifts",
        {"timezone": "Europe/Berlin", "operating_hours": EVERY_DAY, "cutoff_local": None},
        utc("2026-03-28 16:00"),  # 17:00 CET Saturday
        utc("2026-03-29 07:00"),  # 09:00 CEST Sunday
    ),
]


@pytest.mark.parametrize(("changes", "received", "expected"), [case[1:] for case in DST], ids=[case[0] for case in DST])
def test_ready_by_across_dst(changes: dict[str, Any], received: datetime, expected: datetime) -> None:
    assert ready_by(cal(**changes), received) == expected


MONDAYS_FOR_OVER_A_YEAR = [date(2026, 3, 2) + timedelta(weeks=w) for w in range(60)]
NEVER: list[tuple[str, dict[str, Any]]] = [
    ("no opening hours", {"operating_hours": {}}),
    ("every open day a holiday", {"operating_hours": {"mon": ["08:00", "18:00"]}, "holidays": MONDAYS_FOR_OVER_A_YEAR}),
    # Zero is a limit, not "no limit": the bigger-than-a-day allowance is for days that can take something.
    ("no order capacity", {"capacity_orders_per_day": 0}),
    ("no unit capacity", {"capacity_units_per_day": 0}),
]


@pytest.mark.parametrize("changes", [case[1] for case in NEVER], ids=[case[0] for case in NEVER])
def test_ready_by_never(changes: dict[str, Any]) -> None:
    with pytest.raises(NoOperatingDay):
        ready_by(cal(**changes), at("2026-03-02 09:00"))


def test_never_opens_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no opening hours"):
        next_opening(cal(operating_hours={}), at("2026-03-02 09:00"))


def test_pick_pack_past_the_horizon() -> None:
    calendar = cal(operating_hours={"mon": ["08:00", "09:00"]}, pick_pack_minutes=60 * 60)
    with pytest.raises(NoOperatingDay, match="does not finish"):
        ready_by(calendar, at("2026-03-02 08:00"))


NAIVE = datetime(2026, 3, 2, 9, 0)


@pytest.mark.parametrize(
    "call",
    [
        lambda: ready_by(cal(), NAIVE),
        lambda: next_opening(cal(), NAIVE),
        lambda: carrier_handover(cal(), NAIVE, time(16, 0)),
        lambda: carrier_handover(cal(), NAIVE, None),
        lambda: delivery_date(NAIVE, 1, CHICAGO),
        lambda: transfer_arrival(cal(), NAIVE, transit_hours=1, departure_days=[], departure_local=None),
    ],
    ids=["ready_by", "next_opening", "carrier_handover", "carrier_handover_no_cutoff", "delivery_date", "transfer"],
)
def test_naive_datetime_rejected(call: Any) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


READY = at("2026-03-02 09:00")


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: ready_by(cal(), READY, units=0), "at least one unit"),
        (lambda: carrier_handover(cal(), READY, time(16, 0, tzinfo=UTC)), "local time has no offset"),
        (lambda: delivery_date(READY, -1, CHICAGO), "transit days cannot be negative"),
        (
            lambda: transfer_arrival(cal(), READY, transit_hours=-1, departure_days=[], departure_local=None),
            "transit hours cannot be negative",
        ),
        (
            lambda: transfer_arrival(cal(), READY, transit_hours=1, departure_days=[Weekday.MON], departure_local=None),
            "both departure_days and departure_local",
        ),
        (
            lambda: transfer_arrival(cal(), READY, transit_hours=1, departure_days=[], departure_local=time(9)),
            "both departure_days and departure_local",
        ),
    ],
    ids=["no_units", "aware_cutoff", "negative_transit_days", "negative_transit_hours", "days_only", "time_only"],
)
def test_bad_arguments_rejected(call: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        call()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"cutoff_local": time(15, tzinfo=UTC)}, "cutoff_local"),
        ({"pick_pack_minutes": -1}, "pick_pack_minutes"),
        ({"capacity_units_per_day": -1}, "capacity_units_per_day"),
    ],
    ids=["unknown_zone", "aware_cutoff", "negative_pick_pack", "negative_capacity"],
)
def test_calendar_validation(changes: dict[str, Any], field: str) -> None:
    """A bad calendar is refused with its field named, before any maths runs on it."""
    with pytest.raises(ValidationError, match=field):
        cal(**changes)


# --- the node's days ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [(date(2026, 3, 2), True), (date(2026, 3, 3), False), (date(2026, 3, 7), False), (date(2026, 3, 9), True)],
    ids=["monday", "holiday", "saturday", "next_monday"],
)
def test_is_operating_day(day: date, expected: bool) -> None:
    assert is_operating_day(cal(holidays=[date(2026, 3, 3)]), day) is expected


def test_opening_window() -> None:
    assert opening_window(cal(), date(2026, 3, 2)) == (at("2026-03-02 08:00"), at("2026-03-02 18:00"))
    assert opening_window(cal(), date(2026, 3, 7)) is None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-03-02 06:00", "2026-03-02 08:00"),
        ("2026-03-02 12:34", "2026-03-02 12:34"),
        ("2026-03-02 18:00", "2026-03-03 08:00"),
        ("2026-03-06 20:00", "2026-03-09 08:00"),
    ],
    ids=["before_opening", "while_open", "at_close", "friday_night"],
)
def test_next_opening(now: str, expected: str) -> None:
    assert next_opening(cal(), at(now)) == at(expected)


# --- carrier handover -------------------------------------------------------------------------------------------

HANDOVER: list[tuple[str, dict[str, Any], str, time | None, str]] = [
    # (case, calendar changes, ready (local), carrier cut-off, handed over (local))
    ("no carrier cut-off", {}, "2026-03-02 11:00", None, "2026-03-02 11:00"),
    ("ready before the cut-off", {}, "2026-03-02 11:00", time(16, 0), "2026-03-02 16:00"),
    ("ready exactly at the cut-off", {}, "2026-03-02 16:00", time(16, 0), "2026-03-02 16:00"),
    ("ready just after the cut-off", {}, "2026-03-02 16:01", time(16, 0), "2026-03-03 16:00"),
    ("ready Friday after the cut-off", {}, "2026-03-06 17:00", time(16, 0), "2026-03-09 16:00"),
    ("next day is a holiday", {"holidays": [date(2026, 3, 3)]}, "2026-03-02 17:00", time(16, 0), "2026-03-04 16:00"),
    ("ready on a closed day", {}, "2026-03-07 09:00", time(16, 0), "2026-03-09 16:00"),
    (
        "ready just after midnight",
        {"operating_hours": ROUND_THE_CLOCK},
        "2026-03-03 00:00",
        time(16),
        "2026-03-03 16:00",
    ),
]


@pytest.mark.parametrize(
    ("changes", "ready", "cutoff", "expected"),
    [case[1:] for case in HANDOVER],
    ids=[case[0] for case in HANDOVER],
)
def test_carrier_handover(changes: dict[str, Any], ready: str, cutoff: time | None, expected: str) -> None:
    handed = carrier_handover(cal(**changes), at(ready), cutoff)
    assert handed == at(expected)
    assert handed.tzinfo is UTC


def test_carrier_handover_across_dst() -> None:
    """Friday 17:00 CST misses the collection; Monday's 16:00 is CDT, an hour earlier in UTC than before."""
    handed = carrier_handover(cal(), utc("2026-03-06 23:00"), time(16, 0))
    assert handed == utc("2026-03-09 21:00")


def test_carrier_handover_never() -> None:
    with pytest.raises(NoOperatingDay):
        carrier_handover(cal(operating_hours={}), at("2026-03-02 09:00"), time(16, 0))


# --- delivery ---------------------------------------------------------------------------------------------------

DELIVERY: list[tuple[str, datetime, int, str, date]] = [
    # (case, handed over, transit days, time zone, delivered)
    ("same day", at("2026-03-02 16:00"), 0, CHICAGO, date(2026, 3, 2)),
    ("two days", at("2026-03-02 16:00"), 2, CHICAGO, date(2026, 3, 4)),
    ("Thursday plus two is Monday", at("2026-03-05 16:00"), 2, CHICAGO, date(2026, 3, 9)),
    ("Friday plus one is Monday", at("2026-03-06 16:00"), 1, CHICAGO, date(2026, 3, 9)),
    ("Friday plus five is Friday", at("2026-03-06 16:00"), 5, CHICAGO, date(2026, 3, 13)),
    ("Saturday same day is Monday", at("2026-03-07 10:00"), 0, CHICAGO, date(2026, 3, 9)),
    ("Saturday plus one is Monday", at("2026-03-07 10:00"), 1, CHICAGO, date(2026, 3, 9)),
    ("Sunday plus two is Tuesday", at("2026-03-08 10:00"), 2, CHICAGO, date(2026, 3, 10)),
    # 03:00 UTC Saturday is still Friday evening in Chicago, already Saturday in Berlin.
    ("local day in Chicago", utc("2026-03-07 03:00"), 0, CHICAGO, date(2026, 3, 6)),
    ("local day in Berlin", utc("2026-03-07 03:00"), 0, "Europe/Berlin", date(2026, 3, 9)),
]


@pytest.mark.parametrize(
    ("shipped", "transit_days", "tz", "expected"),
    [case[1:] for case in DELIVERY],
    ids=[case[0] for case in DELIVERY],
)
def test_delivery_date(shipped: datetime, transit_days: int, tz: str, expected: date) -> None:
    assert delivery_date(shipped, transit_days, tz) == expected


# --- transfers --------------------------------------------------------------------------------------------------

TUE_THU = [Weekday.TUE, Weekday.THU]

TRANSFER: list[tuple[str, datetime, list[Weekday], time | None, datetime]] = [
    # (case, ready at origin, departure days, departure time, arrival); 30 hours in transit.
    ("no schedule: leaves at once", at("2026-03-02 11:00"), [], None, at("2026-03-03 17:00")),
    (
        "next departure this week",
        at("2026-03-02 11:00"),
        TUE_THU,
        time(14, 0),
        at("2026-03-03 14:00") + timedelta(hours=30),
    ),
    (
        "ready exactly at departure",
        at("2026-03-03 14:00"),
        TUE_THU,
        time(14, 0),
        at("2026-03-03 14:00") + timedelta(hours=30),
    ),
    (
        "just missed: next one",
        at("2026-03-03 14:01"),
        TUE_THU,
        time(14, 0),
        at("2026-03-05 14:00") + timedelta(hours=30),
    ),
    # Departs Tuesday 14:00 CDT (DST began Sunday), 19:00 UTC, not 20:00.
    (
        "next week, across DST",
        at("2026-03-06 11:00"),
        TUE_THU,
        time(14, 0),
        utc("2026-03-10 19:00") + timedelta(hours=30),
    ),
    (
        "weekly: same weekday next week",
        at("2026-03-05 15:00"),
        [Weekday.THU],
        time(14, 0),
        utc("2026-03-12 19:00") + timedelta(hours=30),
    ),
    (
        "days in any order",
        at("2026-03-02 11:00"),
        [Weekday.THU, Weekday.TUE],
        time(14, 0),
        at("2026-03-03 14:00") + timedelta(hours=30),
    ),
]


@pytest.mark.parametrize(
    ("ready", "days", "departure", "expected"),
    [case[1:] for case in TRANSFER],
    ids=[case[0] for case in TRANSFER],
)
def test_transfer_arrival(ready: datetime, days: list[Weekday], departure: time | None, expected: datetime) -> None:
    arrival = transfer_arrival(cal(), ready, transit_hours=30, departure_days=days, departure_local=departure)
    assert arrival == expected
    assert arrival.tzinfo is UTC


def test_transfer_schedule_is_in_origin_time() -> None:
    """A Berlin origin's 14:00 departure is 13:00 UTC: stock ready at 12:00 UTC catches it, in Chicago it would not."""
    ready = utc("2026-03-03 12:00")
    berlin = transfer_arrival(
        cal(timezone="Europe/Berlin"), ready, transit_hours=0, departure_days=TUE_THU, departure_local=time(14, 0)
    )
    assert berlin == utc("2026-03-03 13:00")
    chicago = transfer_arrival(cal(), ready, transit_hours=0, departure_days=TUE_THU, departure_local=time(14, 0))
    assert chicago == utc("2026-03-03 20:00")


# --- properties -------------------------------------------------------------------------------------------------

ZONES = ["America/Chicago", "America/New_York", "America/Los_Angeles", "Europe/Berlin", "Asia/Kolkata", "UTC"]
_CLOCK = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)] + ["24:00"]


@st.composite
def day_hours(draw: st.DrawFn) -> list[str] | None:
    if draw(st.booleans()):
        return None
    opens, closes = sorted(draw(st.lists(st.sampled_from(_CLOCK), min_size=2, max_size=2, unique=True)))
    return [opens, closes]


@st.composite
def calendars(draw: st.DrawFn) -> NodeCalendar:
    hours = {d.value: h for d in WEEK if (h := draw(day_hours())) is not None}
    if not hours:  # a node that never opens is a table case, not a property one
        hours = {draw(st.sampled_from(WEEK)).value: ["09:00", "17:00"]}
    start = date(2026, 1, 1)
    days = st.integers(0, 400).map(lambda n: start + timedelta(days=n))
    return NodeCalendar(
        node_id="N",
        timezone=draw(st.sampled_from(ZONES)),
        operating_hours=OperatingHours.model_validate(hours),
        holidays=frozenset(draw(st.lists(days, max_size=20))),
        cutoff_local=draw(st.none() | st.times()),
        pick_pack_minutes=draw(st.integers(0, 3000)),
        capacity_orders_per_day=draw(st.none() | st.integers(1, 5)),
        capacity_units_per_day=draw(st.none() | st.integers(1, 50)),
        used_orders=draw(st.dictionaries(days, st.integers(0, 6), max_size=20)),
        used_units=draw(st.dictionaries(days, st.integers(0, 60), max_size=20)),
    )


INSTANTS = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(calendar=calendars(), received=INSTANTS, units=st.integers(1, 80))
def test_ready_by_is_after_receipt_and_within_opening_hours(
    calendar: NodeCalendar, received: datetime, units: int
) -> None:
    try:
        ready = ready_by(calendar, received, units=units)
    except NoOperatingDay:
        return  # e.g. every open weekday a holiday or full: no promise, which is allowed
    assert ready >= received
    local_day = ready.astimezone(ZoneInfo(calendar.timezone)).date()
    # A 24:00 close finishes on the next local day, so the day before counts too.
    windows = [opening_window(calendar, d) for d in (local_day, local_day - timedelta(days=1))]
    assert any(w is not None and w[0] <= ready <= w[1] for w in windows), (ready, windows)


@settings(max_examples=300, deadline=None)
@given(shipped=INSTANTS, transit_days=st.integers(0, 30), tz=st.sampled_from(ZONES))
def test_delivery_is_a_weekday_on_or_after_handover(shipped: datetime, transit_days: int, tz: str) -> None:
    handed_over = shipped.astimezone(ZoneInfo(tz)).date()
    delivered = delivery_date(shipped, transit_days, tz)
    assert delivered.weekday() < 5
    assert delivered >= handed_over
    # Exactly ``transit_days`` business days after the handover day (or the first one, for 0 from a weekend).
    business_days_between = sum(
        1 for n in range(1, (delivered - handed_over).days + 1) if (handed_over + timedelta(days=n)).weekday() < 5
    )
    assert business_days_between == max(transit_days, 1 if handed_over.weekday() >= 5 else 0)
