"""Carrier maths the sourcing engine and the optimizer share: distance zones, parcel rates, service choice.

Zones are distance bands ("1" nearest to "8" farthest), the way parcel carriers price ground services; rates
are ``base + per_kg * kg`` per zone (``ZoneRate``). One function prices a parcel, so the rule ranking, the
optimizer and the simulator can never disagree about what a shipment costs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

from domain.network import CarrierServiceSpec, Zone
from domain.orders import ServiceLevel

# Upper bound (km, exclusive) of zones 1..7; anything farther is zone 8.
ZONE_LIMITS_KM: tuple[float, ...] = (80, 240, 480, 960, 1440, 2240, 2880)


def zone_for(distance_km: float) -> Zone:
    for index, limit in enumerate(ZONE_LIMITS_KM, start=1):
        if distance_km < limit:
            return cast(Zone, str(index))
    return "8"


def serves(service: CarrierServiceSpec, zone: Zone) -> bool:
    return zone in service.rate_by_zone and zone in service.transit_days_by_zone


def per_unit_rate(service: CarrierServiceSpec, zone: Zone, weight_g: int) -> float:
    """The weight-dependent part of the rate for one unit: linear, so the optimizer can price units exactly."""
    return service.rate_by_zone[zone].per_kg_minor * weight_g / 1000


def parcel_rate_minor(service: CarrierServiceSpec, zone: Zone, weight_g: int) -> int:
    rate = service.rate_by_zone[zone]
    return rate.base_minor + round(rate.per_kg_minor * weight_g / 1000)


def choose_service(
    services: Iterable[CarrierServiceSpec],
    *,
    level: ServiceLevel,
    zone: Zone,
    weight_g: int,
    carriers: Sequence[str] = (),
    fastest: bool = False,
) -> CarrierServiceSpec | None:
    """The service for one parcel: at ``level``, by one of ``carriers`` (empty: any), serving ``zone``; the
    cheapest (ties: faster, then id) or the fastest (ties: cheaper, then id). None when no service fits."""
    fitting = [
        s for s in services if s.service_level == level and (not carriers or s.carrier in carriers) and serves(s, zone)
    ]
    if not fitting:
        return None

    def key(s: CarrierServiceSpec) -> tuple[int, int, str]:
        price, days = parcel_rate_minor(s, zone, weight_g), s.transit_days_by_zone[zone]
        return (days, price, s.service_id) if fastest else (price, days, s.service_id)

    return min(fitting, key=key)
