"""The network admin model's validation: every rule a column cannot check, refused with its field named."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from domain.network import (
    INT32_MAX,
    AllocationTierSpec,
    Capability,
    CapacityUsage,
    CarrierServiceSpec,
    CustomerSpec,
    NodeSpec,
    OperatingHours,
    SkuSpec,
    StockProtectionSpec,
    TransferLaneSpec,
    Weekday,
)

NODE: dict[str, Any] = {
    "node_id": "BR-TX-AUSTIN",
    "name": "Austin Branch",
    "kind": "store",
    "location": {"lat": 30.2672, "lon": -97.7431},
    "address": {"line1": "500 Congress Ave", "city": "Austin", "region": "TX", "postal_code": "78701", "country": "US"},
    "timezone": "America/Chicago",
    "capabilities": ["ship", "pickup", "ship_from_store"],
    "operating_hours": {"mon": ["08:00", "19:00"], "sun": ["10:00", "16:00"]},
    "cutoff_local": "17:00",
    "pick_pack_minutes": 45,
    "capacity_orders_per_day": 150,
    "capacity_units_per_day": 400,
}
CUSTOMER: dict[str, Any] = {"customer_id": "C-1", "name": "Ada", "home_node_id": "BR-A"}
LANE: dict[str, Any] = {
    "origin_node_id": "DC-A",
    "destination_node_id": "BR-A",
    "transit_hours": 12,
    "cost_minor": 9000,
}
ZONES = {str(z): z for z in range(1, 9)}
RATES = {str(z): {"base_minor": 800, "per_kg_minor": 60} for z in range(1, 9)}
SERVICE: dict[str, Any] = {
    "service_id": "PARCEL-GROUND",
    "carrier": "Demo Parcel",
    "service_level": "standard",
    "transit_days_by_zone": ZONES,
    "rate_by_zone": RATES,
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def refused_at(model: type[BaseModel], data: dict[str, Any]) -> tuple[Any, ...]:
    """The location of the one error ``data`` has (several errors would hide which rule fired)."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return tuple(errors[0]["loc"])


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"operating_hours": {"mon": ["18:00", "08:00"]}}, ("operating_hours", "mon")),
        ({"operating_hours": {"mon": ["08:00", "08:00"]}}, ("operating_hours", "mon")),
        ({"operating_hours": {"mon": ["8:00", "18:00"]}}, ("operating_hours", "mon", 0)),
        ({"operating_hours": {"mon": ["08:00", "25:00"]}}, ("operating_hours", "mon", 1)),
        ({"operating_hours": {"mon": ["08:00"]}}, ("operating_hours", "mon")),
        ({"operating_hours": {"funday": ["08:00", "18:00"]}}, ("operating_hours", "funday")),
        ({"operating_hours": {"mon": ["24:00", "24:00"]}}, ("operating_hours", "mon")),
        ({"timezone": "Mars/Olympus_Mons"}, ("timezone",)),
        ({"timezone": "america/chicago"}, ("timezone",)),
        ({"timezone": "../../etc/passwd"}, ("timezone",)),
        ({"capabilities": ["ship", "teleport"]}, ("capabilities", 1)),
        ({"kind": "dc"}, ("capabilities",)),  # ship_from_store is for stores only
        ({"kind": "warehouse"}, ("kind",)),
        ({"capacity_orders_per_day": -1}, ("capacity_orders_per_day",)),
        ({"capacity_units_per_day": INT32_MAX + 1}, ("capacity_units_per_day",)),
        ({"pick_pack_minutes": -5}, ("pick_pack_minutes",)),
        ({"priority": -1}, ("priority",)),
        ({"location": {"lat": 91, "lon": 0}}, ("location", "lat")),
        ({"location": {"lat": 0, "lon": -180.5}}, ("location", "lon")),
        ({"cutoff_local": "17:00+02:00"}, ("cutoff_local",)),
        ({"cutoff_local": "5pm"}, ("cutoff_local",)),
        ({"node_id": "BR TX"}, ("node_id",)),
        ({"node_id": "BR/TX"}, ("node_id",)),
        ({"name": "   "}, ("name",)),
        ({"name": "Austin\x00Branch"}, ("name",)),  # PostgreSQL text cannot hold NUL
        ({"address": {**NODE["address"], "line1": "500\x00Congress"}}, ("address", "line1")),
        ({"address": {**NODE["address"], "country": "USA"}}, ("address", "country")),
        ({"address": {**NODE["address"], "postal_code": "7" * 21}}, ("address", "postal_code")),
        ({"status": "paused"}, ("status",)),  # status is changed on its own, with a reason
    ],
)
def test_node_refusals_name_the_field(changes, where):
    assert refused_at(NodeSpec, with_(NODE, **changes))[: len(where)] == where


def test_a_valid_node_keeps_its_hours_in_week_order_and_open_days_only():
    node = NodeSpec.model_validate(
        with_(NODE, operating_hours={"sun": ["10:00", "16:00"], "mon": ["00:00", "24:00"]}, capabilities=["ship"] * 2)
    )
    assert node.capabilities == frozenset({Capability.SHIP})
    assert node.cutoff_local == time(17, 0)
    assert node.operating_hours.on(Weekday.MON) == ("00:00", "24:00")
    assert node.operating_hours.on(Weekday.TUE) is None
    assert node.operating_hours.as_json() == {"mon": ["00:00", "24:00"], "sun": ["10:00", "16:00"]}
    assert node.model_dump()["operating_hours"] == {"mon": ["00:00", "24:00"], "sun": ["10:00", "16:00"]}
    assert OperatingHours().as_json() == {}


@pytest.mark.parametrize(
    ("at", "zone", "day"),
    [
        (datetime(2026, 11, 22, 3, 0, tzinfo=UTC), "America/Chicago", date(2026, 11, 21)),
        (datetime(2026, 11, 22, 6, 0, tzinfo=UTC), "America/Chicago", date(2026, 11, 22)),
        (datetime(2026, 11, 22, 23, 0, tzinfo=UTC), "Asia/Tokyo", date(2026, 11, 23)),
    ],
)
def test_local_date_is_the_day_at_the_node(at, zone, day):
    assert NodeSpec.model_validate(with_(NODE, timezone=zone)).local_date(at) == day


@pytest.mark.parametrize(
    ("usage", "orders_left", "units_left"),
    [
        (CapacityUsage(day=date(2027, 1, 4), orders=3, units=10, orders_limit=5, units_limit=None), 2, None),
        (CapacityUsage(day=date(2027, 1, 4), orders=7, units=10, orders_limit=5, units_limit=10), 0, 0),
        (CapacityUsage(day=date(2027, 1, 4), orders=0, units=0, orders_limit=None, units_limit=None), None, None),
    ],
)
def test_capacity_left_is_never_negative_and_unlimited_is_none(usage, orders_left, units_left):
    assert (usage.orders_left, usage.units_left) == (orders_left, units_left)


@pytest.mark.parametrize(
    ("model", "data", "where"),
    [
        (SkuSpec, {"sku": "A", "name": "A", "weight_g": -1}, ("weight_g",)),
        (SkuSpec, {"sku": "A", "name": "A", "height_mm": INT32_MAX + 1}, ("height_mm",)),
        (SkuSpec, {"sku": "A B", "name": "A"}, ("sku",)),
        (SkuSpec, {"sku": "A", "name": "A", "hazmat": "sometimes"}, ("hazmat",)),
        (AllocationTierSpec, {"tier": "vip", "rank": 0}, ("rank",)),
        (AllocationTierSpec, {"tier": "very important", "rank": 1}, ("tier",)),
        (StockProtectionSpec, {"node_id": "N", "sku": "S", "tier": "vip", "quantity": -1}, ("quantity",)),
        (CustomerSpec, with_(CUSTOMER, allowed_node_ids=["BR-A", "DC-A"], excluded_node_ids=["DC-A"]),
         ("excluded_node_ids",)),
        (CustomerSpec, with_(CUSTOMER, excluded_node_ids=["BR-A"]), ("home_node_id",)),
        (CustomerSpec, with_(CUSTOMER, allowed_node_ids=["DC-A"]), ("home_node_id",)),
        (CustomerSpec, with_(CUSTOMER, credit_limit_minor=100_000), ("credit_limit_minor",)),
        (CustomerSpec, with_(CUSTOMER, segment="b2b", credit_limit_minor=-1), ("credit_limit_minor",)),
        (CustomerSpec, with_(CUSTOMER, segment="wholesale"), ("segment",)),
        (CustomerSpec, with_(CUSTOMER, currency="usd"), ("currency",)),
        (CustomerSpec, with_(CUSTOMER, allowed_node_ids=["BR-A", "not an id"]), ("allowed_node_ids", 1)),
        (TransferLaneSpec, with_(LANE, destination_node_id="DC-A"), ("destination_node_id",)),
        (TransferLaneSpec, with_(LANE, transit_hours=-1), ("transit_hours",)),
        (TransferLaneSpec, with_(LANE, cost_minor=INT32_MAX + 1), ("cost_minor",)),
        (TransferLaneSpec, with_(LANE, departure_days=["mon"]), ("departure_local",)),
        (TransferLaneSpec, with_(LANE, departure_local="20:00"), ("departure_local",)),
        (TransferLaneSpec, with_(LANE, departure_days=["funday"], departure_local="20:00"), ("departure_days", 0)),
        (CarrierServiceSpec, with_(SERVICE, transit_days_by_zone={**ZONES, "9": 6}), ("transit_days_by_zone", "9")),
        (CarrierServiceSpec, with_(SERVICE, rate_by_zone={**RATES, "0": RATES["1"]}), ("rate_by_zone", "0")),
        (CarrierServiceSpec, with_(SERVICE, transit_days_by_zone={"1": 1}), ("rate_by_zone",)),
        (CarrierServiceSpec, with_(SERVICE, transit_days_by_zone={}), ("transit_days_by_zone",)),
        (CarrierServiceSpec, with_(SERVICE, transit_days_by_zone={**ZONES, "3": -1}), ("transit_days_by_zone", "3")),
        (CarrierServiceSpec, with_(SERVICE, rate_by_zone={**RATES, "2": {"base_minor": -1, "per_kg_minor": 0}}),
         ("rate_by_zone", "2", "base_minor")),
        (CarrierServiceSpec, with_(SERVICE, rate_by_zone={**RATES, "2": {**RATES["2"], "fuel": 5}}),
         ("rate_by_zone", "2", "fuel")),
        (CarrierServiceSpec, with_(SERVICE, service_level="overnight"), ("service_level",)),
    ],
)  # fmt: skip
def test_refusals_name_the_field(model, data, where):
    assert refused_at(model, data)[: len(where)] == where


def test_rules_that_hold_are_normalised_not_refused():
    customer = CustomerSpec.model_validate(
        with_(CUSTOMER, allowed_node_ids=["DC-A", "BR-A", "DC-A"], segment="b2b", credit_limit_minor=0)
    )
    assert customer.allowed_node_ids == ["BR-A", "DC-A"]
    lane = TransferLaneSpec.model_validate(with_(LANE, departure_days=["fri", "mon", "fri"], departure_local="20:00"))
    assert lane.departure_days == [Weekday.MON, Weekday.FRI]
    service = CarrierServiceSpec.model_validate(
        with_(SERVICE, transit_days_by_zone={"2": 2, "1": 1}, rate_by_zone={"2": RATES["2"], "1": RATES["1"]})
    )
    assert list(service.transit_days_by_zone) == ["1", "2"]
    assert list(service.rate_by_zone) == ["1", "2"]
