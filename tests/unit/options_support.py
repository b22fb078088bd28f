"""Builders for the checkout-options tests, on top of ``sourcing_support`` (same destination, same ``NOW``: a
Wednesday 15:00 UTC, nodes open Monday to Friday 08:00 to 18:00 UTC with two hours to pick).

The carrier table prices by zone so that nearer is sooner: zone 1 (under 80 km) in 2 business days, zone 2 (under
240 km) in 3, anything farther in 4; expedited is a day in every zone, at three times the price.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from domain.network import CarrierServiceSpec, NetworkSnapshot, NodeKind, NodeView, TransferLaneSpec
from domain.options import FulfilmentOption, OptionKind, fulfilment_options
from domain.orders import Order
from domain.policy import PolicyDocument
from tests.unit.sourcing_support import DEST, NOW, WEEKDAYS, customer, lane, node, policy, service, snapshot, strategy

STD_DAYS = {"1": 2, "2": 3, "3": 4, "4": 4, "5": 4, "6": 4, "7": 4, "8": 4}
STANDARD = service("STD", days=STD_DAYS, base_minor=500)
EXPEDITED = service("EXP", level="expedited", days=dict.fromkeys(STD_DAYS, 1), base_minor=1500)
SERVICES = (STANDARD, EXPEDITED)

BRANCH_CAPS = ("pickup", "ship", "transfer_destination")


def branch(node_id: str, lon: float, *, caps: Iterable[str] = BRANCH_CAPS, **kwargs: Any) -> NodeView:
    """A store customers collect from, open on weekdays."""
    return node(node_id, lon, kind=NodeKind.STORE, caps=caps, hours=WEEKDAYS, **kwargs)


def dc(node_id: str, lon: float, *, caps: Iterable[str] = ("ship", "transfer_origin"), **kwargs: Any) -> NodeView:
    return node(node_id, lon, kind=NodeKind.DC, caps=caps, hours=WEEKDAYS, **kwargs)


def network(
    nodes: Iterable[NodeView],
    atp: Mapping[str, Mapping[str, int]],
    *,
    home: str | None = None,
    lanes: Iterable[TransferLaneSpec] = (),
    services: Iterable[CarrierServiceSpec] = SERVICES,
) -> NetworkSnapshot:
    return snapshot(list(nodes), atp, cust=customer(home=home), lanes=lanes, services=services)


def transfer_policy(*ranking: str, max_hours: int = 48, **extra: Any) -> PolicyDocument:
    """One strategy, fewest shipments then distance by default, that may transfer into the receiving node."""
    return policy(
        strategy("s", *(ranking or ("fewest_shipments", "distance")), transfer={"max_hours": max_hours}, **extra)
    )


def plain_policy(*ranking: str, **extra: Any) -> PolicyDocument:
    return policy(strategy("s", *(ranking or ("fewest_shipments", "distance")), **extra))


def checkout_network(*, home_has: int = 1) -> NetworkSnapshot:
    """The customer's home branch BR (11 km) is short of A unless ``home_has`` >= 2; store ST (33 km) has
    everything; the DC (222 km) has plenty and a 9-hour lane into BR."""
    return network(
        [branch("BR", 0.1), branch("ST", 0.3, caps=("pickup", "ship")), dc("DC", 2)],
        {"BR": {"A": home_has}, "ST": {"A": 5, "B": 5}, "DC": {"A": 100, "B": 100}},
        home="BR",
        lanes=[lane("DC", "BR", 9)],
    )


def split_network() -> NetworkSnapshot:
    """No node has everything: the home branch BR (11 km) has 4 of A, N2 (167 km) the other 6, with a lane."""
    return network(
        [branch("BR", 0.1), dc("N2", 1.5)],
        {"BR": {"A": 4}, "N2": {"A": 6}},
        home="BR",
        lanes=[lane("N2", "BR", 6)],
    )


def options(
    cart: Order,
    snap: NetworkSnapshot,
    pol: PolicyDocument,
    *,
    now: datetime = NOW,
    **kwargs: Any,
) -> list[FulfilmentOption]:
    return fulfilment_options(cart, snap, pol, now, destination=kwargs.pop("destination", DEST), **kwargs)


def kinds(found: Iterable[FulfilmentOption]) -> list[str]:
    return [o.kind.value for o in found]


def by_kind(found: Iterable[FulfilmentOption], kind: OptionKind | str) -> FulfilmentOption:
    (option,) = [o for o in found if o.kind == kind]
    return option
