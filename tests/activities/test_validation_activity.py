"""``ValidationActivities.validate_order`` on real PostgreSQL: the catalogue and the pickup node read from the
database, every problem reported in one non-retryable ``OrderInvalid``, and the destination sourcing ranks by."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.validation import ValidationActivities
from domain.errors import ErrorType
from domain.orders import Order
from infra.db.uow import UowFactory
from infra.geo import CityGeocoder
from tests.support import AUSTIN, DALLAS, NodeSpec, SeededNetwork, build_network, make_order
from workflows.contracts import ValidateOrderInput, ValidateOrderResult

pytestmark = pytest.mark.db

GEOCODER = CityGeocoder()

NETWORK = [
    NodeSpec("DC", AUSTIN),
    NodeSpec("BRANCH", DALLAS, kind="store", capabilities=("ship", "pickup")),
    NodeSpec("SHUT", DALLAS, kind="store", capabilities=("ship", "pickup"), status="paused"),
    NodeSpec("THREEPL", DALLAS, kind="3pl", capabilities=("ship", "pickup")),
]


@pytest.fixture
async def net(uow_factory: UowFactory) -> SeededNetwork:
    return await build_network(uow_factory, NETWORK, {("DC", "DRILL"): 5, ("DC", "SAW"): 5})


async def validate(uow_factory: UowFactory, order: Order) -> ValidateOrderResult:
    return await ValidationActivities(uow_factory, GEOCODER).validate_order(ValidateOrderInput(order=order))


async def refusal(uow_factory: UowFactory, order: Order) -> tuple[str, list[dict[str, Any]], list[str]]:
    """The failure message, problems and unknown SKUs of an order validation must refuse."""
    with pytest.raises(ApplicationError) as failure:
        await validate(uow_factory, order)
    err = failure.value
    assert err.type == ErrorType.ORDER_INVALID
    assert err.non_retryable
    [details] = err.details
    return err.message, details["problems"], details["unknown_skus"]


def pickup_at(order: Order, node_id: str) -> Order:
    return order.model_copy(update={"pickup_node_id": node_id})


async def test_a_good_order_goes_to_its_given_location(uow_factory: UowFactory, net: SeededNetwork) -> None:
    result = await validate(uow_factory, make_order(net, {"DRILL": 2, "SAW": 1}))
    assert result == ValidateOrderResult(destination=AUSTIN, warnings=[])


async def test_a_good_order_without_coordinates_is_geocoded(uow_factory: UowFactory, net: SeededNetwork) -> None:
    order = make_order(net, {"DRILL": 1})
    order = order.model_copy(update={"ship_to": order.ship_to.model_copy(update={"location": None})})
    result = await validate(uow_factory, order)
    assert result.destination is not None
    assert abs(result.destination.lat - AUSTIN.lat) < 0.2
    assert abs(result.destination.lon - AUSTIN.lon) < 0.2
    assert result.warnings == []


async def test_an_unknown_sku_is_refused_naming_it(uow_factory: UowFactory, net: SeededNetwork) -> None:
    order = make_order(net, {"DRILL": 1})
    order = order.model_copy(
        update={"lines": [*order.lines, order.lines[0].model_copy(update={"line_id": "9", "sku": "NO-SUCH-SKU"})]}
    )
    message, problems, unknown = await refusal(uow_factory, order)
    assert message == "lines[1].sku: unknown SKU(s): NO-SUCH-SKU"
    assert problems == [{"field": "lines[1].sku", "message": "unknown SKU(s): NO-SUCH-SKU"}]
    assert unknown == ["NO-SUCH-SKU"]


async def test_a_good_pickup_order_goes_to_its_branch(uow_factory: UowFactory, net: SeededNetwork) -> None:
    # The ship-to (billing) address is in Austin; the goods must be at the Dallas branch.
    result = await validate(uow_factory, pickup_at(make_order(net, {"DRILL": 1}), net.node("BRANCH")))
    assert result == ValidateOrderResult(destination=DALLAS, warnings=[])


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        pytest.param("SHUT", "node {id} is paused", id="paused"),
        pytest.param("THREEPL", "node {id} is a 3pl: customers cannot collect", id="3pl"),
        pytest.param("DC", "node {id} does not offer pickup", id="no-pickup-capability"),
        pytest.param(None, "no node {id}", id="missing"),
    ],
)
async def test_a_pickup_node_that_cannot_serve_is_refused(
    uow_factory: UowFactory, net: SeededNetwork, node: str | None, reason: str
) -> None:
    node_id = net.node(node) if node else f"T{net.prefix}-NOWHERE"
    message, problems, unknown = await refusal(uow_factory, pickup_at(make_order(net, {"DRILL": 1}), node_id))
    assert problems == [{"field": "pickup_node_id", "message": reason.format(id=node_id)}]
    assert message == f"pickup_node_id: {reason.format(id=node_id)}"
    assert unknown == []


async def test_every_problem_is_reported_at_once(uow_factory: UowFactory, net: SeededNetwork) -> None:
    order = pickup_at(make_order(net, {"DRILL": 1}), net.node("SHUT"))
    order = order.model_copy(
        update={
            "ship_to": order.ship_to.model_copy(update={"postal_code": "7870"}),
            "lines": [*order.lines, order.lines[0].model_copy(update={"line_id": "2", "sku": "NOPE"})],
        }
    )
    message, problems, unknown = await refusal(uow_factory, order)
    assert [p["field"] for p in problems] == ["ship_to.postal_code", "pickup_node_id", "lines[1].sku"]
    assert message.split("; ") == [f"{p['field']}: {p['message']}" for p in problems]
    assert unknown == ["NOPE"]
