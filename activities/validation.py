"""Order validation: gathers what the checks in ``domain.validation`` need (the catalogue, the pickup node) in one
unit of work, and locates the destination the sourcing engine ranks nodes by."""

from __future__ import annotations

from temporalio import activity

from activities import business_failures
from domain.errors import OrderInvalid
from domain.validation import describe, pickup_node, validate_order
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
        async with self._uow() as uow:
            wanted = {line.sku for line in order.lines}
            unknown = sorted(wanted - await uow.catalog.known_skus(wanted))
            record = None if order.pickup_node_id is None else await uow.network.get_node(order.pickup_node_id)
        pickup = None if record is None else pickup_node(record)
        # The catalogue has no per-order quantity limit per SKU yet; when it has, load it above and pass it here.
        problems = validate_order(order, unknown_skus=unknown, pickup_node=pickup, sku_max_order_quantity={})
        if problems:
            async with business_failures():
                raise OrderInvalid(
                    describe(problems),
                    details={"problems": [p.model_dump() for p in problems], "unknown_skus": unknown},
                )
        if pickup is not None:
            # The customer collects at the node: that is where the goods must go, whatever the billing address says.
            return ValidateOrderResult(destination=pickup.location, warnings=[])
        destination = self._geocoder.locate(order.ship_to)
        warnings = [] if destination else ["destination could not be located: nodes are not ranked by distance"]
        return ValidateOrderResult(destination=destination, warnings=warnings)
