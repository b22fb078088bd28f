"""Promise maths: when a node has an order picked and packed (ready-by), when the parcel leaves with the carrier
(ship-by), when it arrives (deliver-by), and when transferred stock reaches another node.

Pure and deterministic: ``now`` is always an argument, never read. Every instant in and out is timezone-aware and
every instant out is in UTC; calendars (opening hours, cut-offs, holidays, capacity days) are in the node's local
time and are turned into instants through ``zoneinfo``, so a DST change moves them the way a wall clock does.

DST: a local time is built with ``fold=0`` and normalised through UTC. A time that does not exist (inside a
spring-forward gap) therefore lands as far after the gap as it was into it (02:30 on a 02:00 to 03:00 jump is
03:30), and a time that happens twice (fall back) is its first occurrence. Working minutes and transit hours are
elapsed time, so a shift spanning a change is an hour shorter or longer on the wall clock.

Searches look at most ``HORIZON_DAYS`` local days ahead and raise ``NoOperatingDay`` past that, so a node that
never opens (or never has room) is an answer, not an endless loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from domain.network import WEEK, LocalTime, OperatingHours, TimeZoneName, Weekday

__all__ = [
    "HORIZON_DAYS",
    "NoOperatingDay",
    "NodeCalendar",
    "carrier_handover",
    "delivery_date",
    "is_operating_day",
    "next_opening",
    "opening_window",
    "ready_by",
    "transfer_arrival",
]

# A year and a day: long enough for any weekly pattern plus a run of holidays, short enough to fail fast.
HORIZON_DAYS = 366


class NoOperatingDay(ValueError):
    """No local day within the horizon on which the node can do the work asked of it."""


class NodeCalendar(BaseModel):
    """What the promise maths needs to know about one node."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_id: str
    timezone: TimeZoneName
    # A day left out is closed; "24:00" closes at midnight.
    operating_hours: OperatingHours
    # Local days the node does not work.
    holidays: frozenset[date] = frozenset()
    # Orders received after this local time start the next operating day.
    cutoff_local: LocalTime | None = None
    # Working minutes, counted only while the node is open.
    pick_pack_minutes: int = Field(default=120, ge=0)
    # None: unlimited.
    capacity_orders_per_day: int | None = Field(default=None, ge=0)
    capacity_units_per_day: int | None = Field(default=None, ge=0)
    # Orders / units already taken on a local day; a missing day has none taken.
    used_orders: dict[date, int] = Field(default_factory=dict)
    used_units: dict[date, int] = Field(default_factory=dict)


# --- local time -------------------------------------------------------------------------------------------------


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


def _instant(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall-clock time (``fold=0``; see the module docstring for DST)."""
    if at.tzinfo is not None:
        raise ValueError(f"a local time has no offset (the node's time zone applies), got {at.isoformat()}")
    return datetime.combine(day, at.replace(fold=0), tzinfo=zone).astimezone(UTC)


def _clock(day: date, text: str, zone: ZoneInfo) -> datetime:
    """An "HH:MM" of ``day``'s opening hours as an instant; "24:00" is the next day's midnight."""
    if text == "24:00":
        return _instant(day + timedelta(days=1), time(0), zone)
    return _instant(day, time.fromisoformat(text), zone)


def _local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


def _weekday(day: date) -> Weekday:
    return WEEK[day.weekday()]


# --- the node's days ----------------------------------------------------------------------------------------------


def is_operating_day(cal: NodeCalendar, day: date) -> bool:
    """The node works on this local day: open that weekday, and not a holiday."""
    return day not in cal.holidays and cal.operating_hours.on(_weekday(day)) is not None


def opening_window(cal: NodeCalendar, day: date) -> tuple[datetime, datetime] | None:
    """When the node opens and closes on a local day, as UTC instants; None when it does not work that day."""
    hours = cal.operating_hours.on(_weekday(day))
    if hours is None or day in cal.holidays:
        return None
    zone = ZoneInfo(cal.timezone)
    return _clock(day, hours[0], zone), _clock(day, hours[1], zone)


def _windows(cal: NodeCalendar, first: date) -> Iterator[tuple[date, datetime, datetime]]:
    """Operating days from ``first`` on, each with its opening window, within the horizon."""
    for offset in range(HORIZON_DAYS):
        day = first + timedelta(days=offset)
        window = opening_window(cal, day)
        if window is not None:
            yield day, *window


def _never_opens(cal: NodeCalendar) -> NoOperatingDay:
    return NoOperatingDay(f"node {cal.node_id} has no opening hours on any weekday")


def next_opening(cal: NodeCalendar, at: datetime) -> datetime:
    """The first instant at or after ``at`` when the node is open: ``at`` itself during opening hours."""
    at = _aware("at", at)
    for _, opens, closes in _windows(cal, _local_day(at, ZoneInfo(cal.timezone))):
        if at < closes:
            return max(at, opens)
    if not cal.operating_hours.as_json():
        raise _never_opens(cal)
    raise NoOperatingDay(f"node {cal.node_id} does not open within {HORIZON_DAYS} days of {at.isoformat()}")


def _has_room(cal: NodeCalendar, day: date, units: int) -> bool:
    orders_cap = cal.capacity_orders_per_day
    if orders_cap is not None and cal.used_orders.get(day, 0) + 1 > orders_cap:
        return False
    units_cap = cal.capacity_units_per_day
    if units_cap is None:
        return True
    used = cal.used_units.get(day, 0)
    # An order bigger than a whole (non-zero) day still goes somewhere: a day of its own, rather than never.
    return used + units <= units_cap or (used == 0 and units > units_cap > 0)


# --- the promise ------------------------------------------------------------------------------------------------


def ready_by(cal: NodeCalendar, received_at: datetime, *, units: int = 1) -> datetime:
    """When an order received at ``received_at`` is picked and packed.

    Work starts on the first operating day the order reaches before closing, not after that same day's cut-off,
    with room for one more order and ``units`` more units; it starts at the later of arrival and opening.
    Pick/pack minutes then run only while the node is open, carrying over closing time into the next operating
    day(s); capacity is checked for the start day alone, since that is the day the order is taken on.
    """
    received = _aware("received_at", received_at)
    if units < 1:
        raise ValueError(f"an order has at least one unit, got {units}")
    zone = ZoneInfo(cal.timezone)
    received_day = _local_day(received, zone)
    cutoff = None if cal.cutoff_local is None else _instant(received_day, cal.cutoff_local, zone)
    days = _windows(cal, received_day)
    for day, opens, closes in days:
        if received >= closes:
            continue
        if cutoff is not None and day == received_day and received > cutoff:
            continue
        if not _has_room(cal, day, units):
            continue
        return _work(cal, max(received, opens), closes, days)
    if not cal.operating_hours.as_json():
        raise _never_opens(cal)
    raise NoOperatingDay(
        f"node {cal.node_id} has no operating day with room for {units} unit(s) within {HORIZON_DAYS} days"
        f" of {received.isoformat()}"
    )


def _work(
    cal: NodeCalendar, start: datetime, closes: datetime, later: Iterator[tuple[date, datetime, datetime]]
) -> datetime:
    """Spend the pick/pack minutes from ``start``, moving to the next opening window whenever one closes."""
    left = timedelta(minutes=cal.pick_pack_minutes)
    cursor = start
    while cursor + left > closes:
        left -= closes - cursor
        window = next(later, None)
        if window is None:
            raise NoOperatingDay(f"node {cal.node_id} does not finish pick/pack within {HORIZON_DAYS} days")
        _, cursor, closes = window
    return cursor + left


def carrier_handover(cal: NodeCalendar, ready_at: datetime, carrier_cutoff_local: time | None) -> datetime:
    """When the parcel leaves the node: at once without a carrier cut-off, else at the cut-off (node local) of
    the first operating day on which the parcel is ready by then."""
    ready = _aware("ready_at", ready_at)
    if carrier_cutoff_local is None:
        return ready
    zone = ZoneInfo(cal.timezone)
    first = _local_day(ready, zone)
    for offset in range(HORIZON_DAYS):
        day = first + timedelta(days=offset)
        if not is_operating_day(cal, day):
            continue
        collected = _instant(day, carrier_cutoff_local, zone)
        if ready <= collected:
            return collected
    if not cal.operating_hours.as_json():
        raise _never_opens(cal)
    raise NoOperatingDay(f"node {cal.node_id} has no operating day for a collection within {HORIZON_DAYS} days")


def _business_day(day: date) -> bool:
    return day.weekday() < 5  # Monday to Friday


def _next_business_day(day: date) -> date:
    day += timedelta(days=1)
    while not _business_day(day):
        day += timedelta(days=1)
    return day


def delivery_date(shipped_at: datetime, transit_days: int, timezone: str) -> date:
    """The local day (in ``timezone``) the parcel is delivered: ``transit_days`` business days (Monday to Friday)
    after the handover day. Carriers do not deliver at weekends, so a 0-day parcel handed over on a Saturday or
    Sunday arrives the Monday after."""
    shipped = _aware("shipped_at", shipped_at)
    if transit_days < 0:
        raise ValueError(f"transit days cannot be negative, got {transit_days}")
    day = _local_day(shipped, ZoneInfo(timezone))
    for _ in range(transit_days):
        day = _next_business_day(day)
    return day if _business_day(day) else _next_business_day(day)


def transfer_arrival(
    origin: NodeCalendar,
    ready_at: datetime,
    *,
    transit_hours: int,
    departure_days: list[Weekday],
    departure_local: time | None,
) -> datetime:
    """When stock picked at ``origin`` by ``ready_at`` reaches the destination: on the next scheduled departure at
    or after ``ready_at`` (weekdays and a local time at the origin; no schedule: it leaves at once), plus
    ``transit_hours`` of elapsed time."""
    ready = _aware("ready_at", ready_at)
    if transit_hours < 0:
        raise ValueError(f"transit hours cannot be negative, got {transit_hours}")
    if bool(departure_days) != (departure_local is not None):
        raise ValueError("a schedule needs both departure_days and departure_local, or neither")
    departs = ready
    if departure_local is not None:
        zone = ZoneInfo(origin.timezone)
        first = _local_day(ready, zone)
        # Eight days: today (if the truck has not left yet) up to the same weekday next week.
        departs = next(
            leaves
            for day in (first + timedelta(days=offset) for offset in range(8))
            if _weekday(day) in departure_days and (leaves := _instant(day, departure_local, zone)) >= ready
        )
    return departs + timedelta(hours=transit_hours)
