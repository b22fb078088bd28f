"""Whether a placed order can be fulfilled as written: the checks behind the workflow's "validated" stage.

The order model (``domain.orders``) already refuses what is malformed on its own (line counts, per-line
quantity, duplicate line ids). These checks need reference tables or facts from outside the order (the
catalogue, the pickup node), so they run once, in the validation activity, and report *every* problem at
once: a platform fixing an order should not discover its faults one rejection at a time.

Each problem names its field as a dotted path into the order (``ship_to.postal_code``, ``lines[2].quantity``,
``pickup_node_id``; line indexes count from 0, as the request's JSON does).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict

from domain.network import Capability, NodeKind, NodeRecord, NodeStatus
from domain.orders import GeoPoint, Order

# An order this large is a typo or a bulk deal that needs a person, not an automatic release: the per-line
# limit (``MAX_LINE_QUANTITY``) times ``MAX_LINES`` would otherwise allow two million units.
MAX_ORDER_UNITS = 50_000


class Problem(BaseModel):
    """One reason the order cannot be accepted, with the field it is about."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class PickupNode(BaseModel):
    """What validation needs of the node a pickup order names (``None`` when no such node exists)."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    kind: NodeKind
    status: NodeStatus
    capabilities: frozenset[Capability]
    location: GeoPoint | None = None


def pickup_node(record: NodeRecord) -> PickupNode:
    """What validation needs of a stored node named as a pickup branch."""
    spec = record.spec
    return PickupNode(
        node_id=spec.node_id,
        kind=spec.kind,
        status=record.status,
        capabilities=spec.capabilities,
        location=spec.location,
    )


# --- reference tables ---------------------------------------------------------------------------------------

# Postal code formats, matched against the code in upper case (the model has already trimmed it). A country
# not listed only needs a non-empty code: a wrong guess at a format would refuse real addresses.
POSTAL_CODE_FORMATS: Mapping[str, tuple[re.Pattern[str], str]] = MappingProxyType(
    {
        "US": (re.compile(r"\d{5}(-\d{4})?"), "5 digits or ZIP+4 (12345 or 12345-6789)"),
        # Letters D F I O Q U never appear; W and Z never lead.
        "CA": (re.compile(r"[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d"), "A1A 1A1"),
        # Outward code (area, district) then inward code (sector, unit), e.g. SW1A 1AA, M1 1AE, B33 8TH.
        "GB": (
            re.compile(r"(GIR 0AA|[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]? ?\d[ABD-HJLNP-UW-Z]{2})"),
            "an outward and an inward code (SW1A 1AA)",
        ),
        "DE": (re.compile(r"\d{5}"), "5 digits"),
        "FR": (re.compile(r"\d{5}"), "5 digits"),
        "NL": (re.compile(r"[1-9]\d{3} ?[A-Z]{2}"), "4 digits and 2 letters (1234 AB)"),
        "AU": (re.compile(r"\d{4}"), "4 digits"),
    }
)

US_STATES: Mapping[str, str] = MappingProxyType(
    {
        "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
        "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
        "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa",
        "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
        "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
        "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
        "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
        "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
        "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
        "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
        "DC": "District of Columbia",
        # Territories and military post offices: US carriers deliver there with a US address.
        "PR": "Puerto Rico", "GU": "Guam", "VI": "Virgin Islands", "AS": "American Samoa",
        "MP": "Northern Mariana Islands",
        "AA": "Armed Forces Americas", "AE": "Armed Forces Europe", "AP": "Armed Forces Pacific",
    }
)  # fmt: skip

CA_PROVINCES: Mapping[str, str] = MappingProxyType(
    {
        "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
        "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories", "NU": "Nunavut",
        "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec", "SK": "Saskatchewan", "YT": "Yukon",
    }
)  # fmt: skip

# Australia's official abbreviations are two or three letters.
AU_STATES: Mapping[str, str] = MappingProxyType(
    {
        "ACT": "Australian Capital Territory", "NSW": "New South Wales", "NT": "Northern Territory",
        "QLD": "Queensland", "SA": "South Australia", "TAS": "Tasmania", "VIC": "Victoria",
        "WA": "Western Australia",
    }
)  # fmt: skip

# Countries whose region must be one of their states / provinces (by code; the full name is accepted too,
# as the geocoder accepts it). Elsewhere any non-empty region will do.
REGIONS: Mapping[str, tuple[str, Mapping[str, str]]] = MappingProxyType(
    {"US": ("state", US_STATES), "CA": ("province", CA_PROVINCES), "AU": ("state or territory", AU_STATES)}
)

# What people type into a required street field when they have no street to give.
PLACEHOLDER_STREET_LINES = frozenset({"", "-", "--", ".", "n/a", "na", "none", "null", "tbd"})

# Node kinds a customer can walk into: stores (branches) and DCs with a will-call counter. A 3PL or a dropship
# vendor is someone else's building, so it never serves pickup whatever capabilities it declares.
PICKUP_KINDS = frozenset({NodeKind.STORE, NodeKind.DC})


# --- the checks -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Facts:
    """What the checks know beyond the order itself."""

    unknown_skus: frozenset[str]
    pickup_node: PickupNode | None
    sku_max_order_quantity: Mapping[str, int]
    max_order_units: int


_NO_SKU_LIMITS: Mapping[str, int] = MappingProxyType({})


def validate_order(
    order: Order,
    *,
    unknown_skus: Collection[str] = (),
    pickup_node: PickupNode | None = None,
    sku_max_order_quantity: Mapping[str, int] = _NO_SKU_LIMITS,
    max_order_units: int = MAX_ORDER_UNITS,
) -> list[Problem]:
    """Every problem that stops ``order`` from being fulfilled as written; empty when it can go ahead.

    ``unknown_skus``: the ordered SKUs the catalogue does not have. ``pickup_node``: the node named by
    ``order.pickup_node_id``, or None when there is no such node (ignored for a delivery order).
    ``sku_max_order_quantity``: the most units of a SKU one order may take, for the SKUs that have such a limit.
    """
    if pickup_node is not None and order.pickup_node_id is not None and pickup_node.node_id != order.pickup_node_id:
        raise ValueError(f"pickup node {pickup_node.node_id} given for an order picked up at {order.pickup_node_id}")
    facts = _Facts(
        unknown_skus=frozenset(unknown_skus),
        pickup_node=pickup_node,
        sku_max_order_quantity=sku_max_order_quantity,
        max_order_units=max_order_units,
    )
    return [problem for check in CHECKS for problem in check(order, facts)]


def check_postal_code(order: Order, _: _Facts) -> Iterator[Problem]:
    """Carriers refuse a label whose postal code does not fit the country, so it is caught before release."""
    address = order.ship_to
    code = address.postal_code.strip()
    if not code:
        yield Problem(field="ship_to.postal_code", message="a postal code is required")
        return
    known = POSTAL_CODE_FORMATS.get(address.country)
    if known is None:
        return
    pattern, expected = known
    if not pattern.fullmatch(code.upper()):
        yield Problem(
            field="ship_to.postal_code",
            message=f"{code!r} is not a {address.country} postal code: expected {expected}",
        )


def check_region(order: Order, _: _Facts) -> Iterator[Problem]:
    """In countries with a fixed list of states or provinces, a region outside it is a typo or a wrong country."""
    address = order.ship_to
    known = REGIONS.get(address.country)
    if known is None:
        return
    kind, table = known
    if _region_code(address.region, table) is None:
        example = next(iter(table))
        yield Problem(
            field="ship_to.region",
            message=f"{address.region!r} is not a {address.country} {kind}: expected a code such as {example!r}",
        )


def _region_code(region: str, table: Mapping[str, str]) -> str | None:
    wanted = region.strip().casefold()
    for code, name in table.items():
        if wanted in (code.casefold(), name.casefold()):
            return code
    return None


def check_street_line(order: Order, _: _Facts) -> Iterator[Problem]:
    """A parcel needs a street to go to; a pickup order's address is only for billing, so it may have none."""
    if order.is_pickup:
        return
    if _is_placeholder(order.ship_to.line1):
        yield Problem(field="ship_to.line1", message="a delivery needs a street address")


def _is_placeholder(line: str) -> bool:
    return line.strip().casefold() in PLACEHOLDER_STREET_LINES


def check_pickup_node(order: Order, facts: _Facts) -> Iterator[Problem]:
    """A pickup order is only as good as its branch: it must exist, be taking work and be able to hand over."""
    if order.pickup_node_id is None:
        return
    node = facts.pickup_node
    if node is None:
        yield Problem(field="pickup_node_id", message=f"no node {order.pickup_node_id}")
        return
    if node.status is not NodeStatus.ACTIVE:
        yield Problem(field="pickup_node_id", message=f"node {node.node_id} is {node.status}")
    if node.kind not in PICKUP_KINDS:
        yield Problem(field="pickup_node_id", message=f"node {node.node_id} is a {node.kind}: customers cannot collect")
    elif Capability.PICKUP not in node.capabilities:
        yield Problem(field="pickup_node_id", message=f"node {node.node_id} does not offer pickup")


def check_known_skus(order: Order, facts: _Facts) -> Iterator[Problem]:
    """Nothing can be sourced for a SKU the catalogue lacks. One problem names them all, at their line when
    they are all on one."""
    indexes = [i for i, line in enumerate(order.lines) if line.sku in facts.unknown_skus]
    if not indexes:
        return
    skus = sorted({order.lines[i].sku for i in indexes})
    where = f"lines[{indexes[0]}].sku" if len(indexes) == 1 else "lines"
    yield Problem(field=where, message=f"unknown SKU(s): {', '.join(skus)}")


def check_sku_quantities(order: Order, facts: _Facts) -> Iterator[Problem]:
    """A SKU limited per order (allocation, hazmat rules) counts across all its lines: splitting the quantity
    over two lines must not get around the limit."""
    for sku, total in order.quantities_by_sku().items():
        limit = facts.sku_max_order_quantity.get(sku)
        if limit is None or total <= limit:
            continue
        indexes = [i for i, line in enumerate(order.lines) if line.sku == sku]
        if len(indexes) == 1:
            yield Problem(
                field=f"lines[{indexes[0]}].quantity",
                message=f"{total} units of {sku}: at most {limit} per order",
            )
        else:
            at = ", ".join(f"lines[{i}]" for i in indexes)
            yield Problem(field="lines", message=f"{total} units of {sku} over {at}: at most {limit} per order")


def check_order_units(order: Order, facts: _Facts) -> Iterator[Problem]:
    """The order as a whole: see ``MAX_ORDER_UNITS``."""
    total = sum(line.quantity for line in order.lines)
    if total > facts.max_order_units:
        yield Problem(field="lines", message=f"{total} units in all: at most {facts.max_order_units} per order")


# In the order the fields appear in an order, so problems read top to bottom.
CHECKS: tuple[Callable[[Order, _Facts], Iterator[Problem]], ...] = (
    check_street_line,
    check_region,
    check_postal_code,
    check_pickup_node,
    check_known_skus,
    check_sku_quantities,
    check_order_units,
)


def describe(problems: Collection[Problem]) -> str:
    """All problems on one line, for the failure message an operator reads: ``field: message; ...``."""
    return "; ".join(str(problem) for problem in problems)
