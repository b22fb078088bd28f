"""The city geocoder finds real places by name, alternate name, state code or state name."""

from __future__ import annotations

import pytest

from domain.orders import Address, GeoPoint
from infra.geo import CityGeocoder

GEOCODER = CityGeocoder()


def address(city: str, region: str, country: str = "US", location: GeoPoint | None = None) -> Address:
    return Address(
        name="x", line1="1 Main St", city=city, region=region, postal_code="00000", country=country, location=location
    )


@pytest.mark.parametrize(
    ("city", "region", "lat", "lon"),
    [
        ("Austin", "TX", 30.27, -97.74),
        ("austin", "texas", 30.27, -97.74),  # case and full state name
        ("Austin", "MN", 43.67, -92.97),  # same name, other state
        ("Saint Louis", "MO", 38.63, -90.20),  # alternate name of "St. Louis"
        ("New York", "NY", 40.71, -74.01),
        ("Newark", "NJ", 40.74, -74.17),
    ],
)
def test_locates_real_places(city: str, region: str, lat: float, lon: float) -> None:
    point = GEOCODER.locate(address(city, region))
    assert point is not None
    assert (round(point.lat, 2), round(point.lon, 2)) == (lat, lon)


@pytest.mark.parametrize(("city", "region"), [("Atlantis", "TX"), ("Austin", "ZZ"), ("", "TX")])
def test_unknown_places_are_none(city: str, region: str) -> None:
    assert GEOCODER.locate(address(city or "Nowhere-at-all", region)) is None


def test_given_coordinates_win() -> None:
    given = GeoPoint(lat=1.0, lon=2.0)
    assert GEOCODER.locate(address("Austin", "TX", location=given)) == given
