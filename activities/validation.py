"""Order validation: checks that need the database (known SKUs) or reference data (the destination)."""

from __future__ import annotations

from temporalio import activity

from activities import business_failures
from domain.errors import OrderInvalid
from infra.db.uow import UowFactory
from infra.geo import CityGeocoder
from workflows.contracts import ActivityName, ValidateOrderInput, ValidateOrderResult


class ValidationActivities:
    def __init__(self, uow: UowFactory, geocoder: CityGeocoder) -> None:
        self._uow = uow
        self._geocoder = geocoder

    @activity.defn(name=ActivityName.VALIDATE_ORDER)
    async def validate_order(self, input: ValidateOrderInput) -> ValidateOrderResult:
        order = input.order
        async with business_failures(), self._uow() as uow:
            wanted = {line.sku for line in order.lines}
            unknown = sorted(wanted - await uow.catalog.known_skus(wanted))
            if unknown:
                raise OrderInvalid(f"unknown SKU(s): {', '.join(unknown)}", details={"unknown_skus": unknown})
        destination = self._geocoder.locate(order.ship_to)
        warnings = [] if destination else ["destination could not be located: nodes are not ranked by distance"]
        return ValidateOrderResult(destination=destination, warnings=warnings)
