"""The validated stage's checks (``domain.validation``): addresses, pickup nodes, SKUs and quantity limits."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from domain.network import Capability, NodeKind, NodeStatus
from domain.orders import MAX_LINE_QUANTITY, Address, GeoPoint, Order, OrderLine
from domain.validation import (
    AU_STATES,
    CA_PROVINCES,
    CHECKS,
    MAX_ORDER_UNITS,
    POSTAL_CODE_FORMATS,
    US_STATES,
    PickupNode,
    Problem,
    describe,
    validate_order,
)

PLACED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
BRANCH = GeoPoint(lat=30.27, lon=-97.74)

# A valid address per country: (region, postal code).
GOOD_ADDRESS = {
    "US": ("TX", "78701"),
    "CA": ("ON", "K1A 0B1"),
    "GB": ("England", "SW1A 1AA"),
    "DE": ("Berlin", "10115"),
    "FR": ("Île-de-France", "75001"),
    "NL": ("Noord-Holland", "1012 AB"),
    "AU": ("NSW", "2000"),
    "JP": ("Tokyo", "100-0001"),
}


def address(country: str = "US", **changes: Any) -> Address:
    region, postal_code = GOOD_ADDRESS.get(country, ("Somewhere", "X1"))
    fields: dict[str, Any] = {
        "name": "Ada",
        "line1": "1 Main St",
        "city": "Austin",
        "region": region,
        "postal_code": postal_code,
        "country": country,
        **changes,
    }
    return Address(**fields)


def order(*quantities: int, skus: tuple[str, ...] | None = None, pickup: str | None = None, **ship_to: Any) -> Order:
    quantities = quantities or (1,)
    skus = skus or tuple(f"SKU-{i}" for i in range(len(quantities)))
    return Order(
        order_id="A-1",
        customer_id="C-1",
        ship_to=address(**ship_to),
        lines=[
            OrderLine(line_id=str(i + 1), sku=s, quantity=q)
            for i, (s, q) in enumerate(zip(skus, quantities, strict=True))
        ],
        placed_at=PLACED_AT,
        pickup_node_id=pickup,
    )


def branch(node_id: str = "BR-1", **changes: Any) -> PickupNode:
    fields: dict[str, Any] = {
        "node_id": node_id,
        "kind": NodeKind.STORE,
        "status": NodeStatus.ACTIVE,
        "capabilities": frozenset({Capability.PICKUP, Capability.SHIP}),
        "location": BRANCH,
        **changes,
    }
    return PickupNode(**fields)


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def test_a_good_order_has_no_problems() -> None:
    assert validate_order(order(2, 3)) == []


# --- addresses --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "postal_code"),
    [
        ("US", "78701"),
        ("US", "78701-1234"),
        ("US", "00501"),
        ("CA", "K1A 0B1"),
        ("CA", "k1a0b1"),  # case and the space do not matter
        ("CA", "V6B 1A1"),
        ("GB", "SW1A 1AA"),
        ("GB", "M1 1AE"),
        ("GB", "B33 8TH"),
        ("GB", "CR2 6XH"),
        ("GB", "DN55 1PT"),
        ("GB", "W1A 0AX"),
        ("GB", "EC1A1BB"),
        ("GB", "GIR 0AA"),
        ("DE", "10115"),
        ("DE", "01067"),
        ("FR", "75001"),
        ("FR", "97400"),
        ("NL", "1012 AB"),
        ("NL", "1012ab"),
        ("AU", "2000"),
        ("AU", "0800"),
        ("JP", "100-0001"),  # no table: any non-empty code
        ("BR", "01310-100"),
    ],
)
def test_postal_codes_that_fit_their_country(country: str, postal_code: str) -> None:
    assert validate_order(order(country=country, postal_code=postal_code)) == []


@pytest.mark.parametrize(
    ("country", "postal_code"),
    [
        ("US", "7870"),
        ("US", "787011"),
        ("US", "78701-123"),
        ("US", "78701 1234"),
        ("US", "ABCDE"),
        ("CA", "K1A 0B"),
        ("CA", "D1A 0B1"),  # D never appears
        ("CA", "W1A 0B1"),  # W never leads
        ("CA", "12345"),
        ("GB", "SW1A"),  # outward code only
        ("GB", "1AA SW1"),
        ("GB", "SW1A 1CA"),  # C is not an inward-code letter
        ("GB", "QA1 1AA"),  # Q never leads
        ("DE", "1011"),
        ("DE", "101155"),
        ("FR", "7500"),
        ("FR", "2A004"),
        ("NL", "0123 AB"),  # never starts with 0
        ("NL", "1012"),
        ("NL", "1012 A"),
        ("NL", "1012 ABC"),
        ("AU", "200"),
        ("AU", "20000"),
        ("AU", "NSW1"),
    ],
)
def test_postal_codes_that_do_not(country: str, postal_code: str) -> None:
    [problem] = validate_order(order(country=country, postal_code=postal_code))
    assert problem.field == "ship_to.postal_code"
    assert postal_code in problem.message
    assert POSTAL_CODE_FORMATS[country][1] in problem.message


def test_an_empty_postal_code_is_a_problem_even_where_the_format_is_unknown() -> None:
    # The model trims and refuses an empty code, so this guards a bypassed model (model_construct, old history).
    bare = order(country="JP").model_copy(update={"ship_to": address("JP").model_copy(update={"postal_code": " "})})
    assert fields(validate_order(bare)) == ["ship_to.postal_code"]


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("US", "TX"),
        ("US", "tx"),
        ("US", "Texas"),
        ("US", "DC"),
        ("US", "PR"),
        ("US", "AE"),
        ("CA", "QC"),
        ("CA", "Quebec"),
        ("CA", "YT"),
        ("AU", "NSW"),
        ("AU", "WA"),
        ("AU", "ACT"),
        ("AU", "Victoria"),
        ("GB", "Anything at all"),  # no table of regions
        ("DE", "BE"),
    ],
)
def test_regions_that_exist(country: str, region: str) -> None:
    assert validate_order(order(country=country, region=region)) == []


@pytest.mark.parametrize(
    ("country", "region"),
    [
        ("US", "XX"),
        ("US", "T"),
        ("US", "TEX"),
        ("US", "ON"),  # a Canadian province
        ("CA", "TX"),
        ("CA", "PQ"),  # Quebec's old code
        ("AU", "NS"),
        ("AU", "QL"),
        ("AU", "Tasmania Island"),
    ],
)
def test_regions_that_do_not(country: str, region: str) -> None:
    [problem] = validate_order(order(country=country, region=region))
    assert problem.field == "ship_to.region"
    assert repr(region) in problem.message


@pytest.mark.parametrize("table", [US_STATES, CA_PROVINCES, AU_STATES])
def test_region_tables_are_upper_case_codes(table: Mapping[str, str]) -> None:
    assert all(code.isupper() and 2 <= len(code) <= 3 for code in table)
    assert len({name.casefold() for name in table.values()}) == len(table)


@pytest.mark.parametrize("line1", ["n/a", "N/A", "-", " - ", "none", ".", "NA"])
def test_a_delivery_needs_a_street(line1: str) -> None:
    assert fields(validate_order(order(line1=line1))) == ["ship_to.line1"]


@pytest.mark.parametrize("line1", ["1 Main St", "PO Box 12", "Nash Road", "-1 Main St"])
def test_real_streets_pass(line1: str) -> None:
    assert validate_order(order(line1=line1)) == []


def test_a_pickup_order_needs_no_street() -> None:
    # Its address is only the billing address.
    assert validate_order(order(pickup="BR-1", line1="n/a"), pickup_node=branch()) == []


def test_a_pickup_order_still_needs_a_well_formed_billing_address() -> None:
    problems = validate_order(order(pickup="BR-1", postal_code="787"), pickup_node=branch())
    assert fields(problems) == ["ship_to.postal_code"]


# --- pickup nodes -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        pytest.param(branch(), None, id="active-branch"),
        pytest.param(branch(kind=NodeKind.DC), None, id="dc-will-call"),
        pytest.param(None, "no node BR-1", id="missing"),
        pytest.param(branch(status=NodeStatus.PAUSED), "node BR-1 is paused", id="paused"),
        pytest.param(branch(kind=NodeKind.THREE_PL), "node BR-1 is a 3pl: customers cannot collect", id="3pl"),
        pytest.param(branch(kind=NodeKind.DROPSHIP), "node BR-1 is a dropship: customers cannot collect", id="drop"),
        pytest.param(
            branch(capabilities=frozenset({Capability.SHIP})), "node BR-1 does not offer pickup", id="no-pickup"
        ),
    ],
)
def test_pickup_node(node: PickupNode | None, expected: str | None) -> None:
    problems = validate_order(order(pickup="BR-1"), pickup_node=node)
    assert problems == ([] if expected is None else [Problem(field="pickup_node_id", message=expected)])


def test_a_paused_node_that_cannot_do_pickup_says_both() -> None:
    node = branch(status=NodeStatus.PAUSED, capabilities=frozenset({Capability.SHIP}))
    problems = validate_order(order(pickup="BR-1"), pickup_node=node)
    assert [p.message for p in problems] == ["node BR-1 is paused", "node BR-1 does not offer pickup"]


def test_a_delivery_order_ignores_the_pickup_node() -> None:
    assert validate_order(order(), pickup_node=branch(status=NodeStatus.PAUSED)) == []


def test_the_wrong_pickup_node_is_a_bug() -> None:
    with pytest.raises(ValueError, match="BR-2"):
        validate_order(order(pickup="BR-1"), pickup_node=branch("BR-2"))


# --- SKUs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("skus", "unknown", "expected"),
    [
        pytest.param(("A", "B"), set(), None, id="all-known"),
        pytest.param(("A", "B"), {"B"}, Problem(field="lines[1].sku", message="unknown SKU(s): B"), id="one-line"),
        pytest.param(
            ("A", "B", "C"), {"C", "A"}, Problem(field="lines", message="unknown SKU(s): A, C"), id="two-lines"
        ),
        pytest.param(
            ("A", "B", "A"), {"A"}, Problem(field="lines", message="unknown SKU(s): A"), id="one-sku-on-two-lines"
        ),
        pytest.param(("A",), {"ZZ"}, None, id="unknown-but-not-ordered"),
    ],
)
def test_unknown_skus_are_one_problem(skus: tuple[str, ...], unknown: set[str], expected: Problem | None) -> None:
    problems = validate_order(order(*[1] * len(skus), skus=skus), unknown_skus=unknown)
    assert problems == ([] if expected is None else [expected])


def test_the_same_sku_on_two_lines_is_fine() -> None:
    assert validate_order(order(3, 4, skus=("A", "A"))) == []


# --- quantities -------------------------------------------------------------------------------------------


FULL_LINES, REST = divmod(MAX_ORDER_UNITS, MAX_LINE_QUANTITY)
AT_LIMIT = (MAX_LINE_QUANTITY,) * FULL_LINES + ((REST,) if REST else ())


@pytest.mark.parametrize(
    ("quantities", "problem"),
    [
        pytest.param(AT_LIMIT, False, id="at-limit"),
        pytest.param((*AT_LIMIT[:-1], AT_LIMIT[-1] - 1), False, id="one-under"),
        pytest.param((*AT_LIMIT, 1), True, id="one-over"),
        pytest.param((MAX_LINE_QUANTITY,) * (FULL_LINES + 2), True, id="far-over"),
    ],
)
def test_order_units_limit(quantities: tuple[int, ...], problem: bool) -> None:
    problems = validate_order(order(*quantities))
    expected = [Problem(field="lines", message=f"{sum(quantities)} units in all: at most {MAX_ORDER_UNITS} per order")]
    assert problems == (expected if problem else [])


def test_order_units_limit_can_be_set() -> None:
    assert fields(validate_order(order(5, 6), max_order_units=10)) == ["lines"]
    assert validate_order(order(5, 5), max_order_units=10) == []


@pytest.mark.parametrize(
    ("quantities", "skus", "limits", "expected"),
    [
        pytest.param((5,), ("A",), {"A": 5}, [], id="at-limit"),
        pytest.param(
            (6,), ("A",), {"A": 5}, [Problem(field="lines[0].quantity", message="6 units of A: at most 5 per order")],
            id="over-on-one-line",
        ),
        pytest.param((3, 2), ("A", "A"), {"A": 5}, [], id="split-at-limit"),
        pytest.param(
            (3, 1, 3), ("A", "B", "A"), {"A": 5},
            [Problem(field="lines", message="6 units of A over lines[0], lines[2]: at most 5 per order")],
            id="split-over",
        ),
        pytest.param((100,), ("A",), {"B": 1}, [], id="other-sku-limited"),
        pytest.param(
            (2, 9), ("A", "B"), {"A": 1, "B": 8},
            [
                Problem(field="lines[0].quantity", message="2 units of A: at most 1 per order"),
                Problem(field="lines[1].quantity", message="9 units of B: at most 8 per order"),
            ],
            id="two-skus-over",
        ),
    ],
)  # fmt: skip
def test_per_sku_order_limit(
    quantities: tuple[int, ...], skus: tuple[str, ...], limits: dict[str, int], expected: list[Problem]
) -> None:
    assert validate_order(order(*quantities, skus=skus), sku_max_order_quantity=limits) == expected


# --- together ---------------------------------------------------------------------------------------------


def test_every_problem_is_reported_in_field_order() -> None:
    bad = order(3, 1, skus=("A", "B"), pickup="BR-1", region="ZZ", postal_code="1")
    problems = validate_order(
        bad, unknown_skus={"B"}, pickup_node=branch(status=NodeStatus.PAUSED), sku_max_order_quantity={"A": 2}
    )
    assert fields(problems) == [
        "ship_to.region",
        "ship_to.postal_code",
        "pickup_node_id",
        "lines[1].sku",
        "lines[0].quantity",
    ]
    assert describe(problems).startswith("ship_to.region: 'ZZ' is not a US state")
    assert describe(problems).count("; ") == len(problems) - 1


def test_checks_are_listed_once() -> None:
    assert len(set(CHECKS)) == len(CHECKS)
