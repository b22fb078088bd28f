"""Checkout: the fulfilment options for a cart, each with a signed quote, and the check of a quote handed back
with an order.

The options are decided by the same engine and the same active policy the order workflow will plan with
(``domain.options``): this module only gathers what the engine reads, in one unit of work, and signs what it
offers. A quote needs no storage: it is checked with the server's secrets and expires on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread

from domain.errors import OrderInvalid
from domain.options import FulfilmentOption, fulfilment_options
from domain.orders import Order
from domain.policy import Method
from domain.quotes import QuoteInvalid, QuotePayload, cart_fingerprint, quote_payload, sign_quote, verify_quote
from domain.validation import describe, pickup_node, validate_order
from infra.db.uow import UowFactory
from infra.geo import CityGeocoder

__all__ = ["CheckoutService", "Offer", "Offers", "QuoteMismatch"]


class QuoteMismatch(QuoteInvalid):
    """A genuine quote, but for another cart or customer than the order it came with."""


@dataclass(frozen=True)
class Offer:
    option: FulfilmentOption
    quote_id: str


@dataclass(frozen=True)
class Offers:
    cart_fingerprint: str
    generated_at: datetime
    expires_at: datetime
    policy_version: str
    offers: list[Offer]


class CheckoutService:
    """One per process: the engine runs in a worker thread, so a large cart does not stall the event loop."""

    def __init__(
        self,
        uow: UowFactory,
        geocoder: CityGeocoder,
        secrets: Sequence[str],
        ttl: timedelta,
        *,
        release_delay: timedelta = timedelta(0),
    ) -> None:
        """``release_delay``: the orders' change window. Nothing is released before it ends, so options are
        promised from then, as the order's own plan will be."""
        if not secrets:
            raise ValueError("at least one quote secret is needed")
        self._uow = uow
        self._geocoder = geocoder
        self._secrets = list(secrets)
        self._ttl = ttl
        self._release_delay = release_delay

    async def offers(self, cart: Order, now: datetime, *, methods: Collection[Method]) -> Offers:
        """The options for ``cart`` at ``now``. Raises ``OrderInvalid`` (its details list each problem by
        field) for a cart the order workflow would reject: it could not be ordered as it stands."""
        async with self._uow() as uow:
            wanted = {line.sku for line in cart.lines}
            unknown = sorted(wanted - await uow.catalog.known_skus(wanted))
            record = None if cart.pickup_node_id is None else await uow.network.get_node(cart.pickup_node_id)
            problems = validate_order(
                cart, unknown_skus=unknown, pickup_node=None if record is None else pickup_node(record)
            )
            if problems:
                raise OrderInvalid(describe(problems), details={"problems": [p.model_dump() for p in problems]})
            snapshot = await uow.inventory.snapshot_for_order(cart, now=now, pickup_node_id=cart.pickup_node_id)
            policy = await uow.policies.active()
        destination = self._geocoder.locate(cart.ship_to)
        decide = functools.partial(
            fulfilment_options,
            cart,
            snapshot,
            policy.document,
            now + self._release_delay,
            destination=destination,
            policy_version=policy.version_label,
            methods=tuple(methods),
        )
        options = await anyio.to_thread.run_sync(decide)
        secret = self._secrets[0]
        return Offers(
            cart_fingerprint=cart_fingerprint(cart),
            generated_at=now,
            expires_at=now + self._ttl,
            policy_version=policy.version_label,
            offers=[Offer(o, sign_quote(quote_payload(cart, o), secret, now, self._ttl)) for o in options],
        )

    def verify(self, quote_id: str, order: Order, now: datetime) -> QuotePayload:
        """The quote's payload when it is genuine, unexpired and for this order's cart and customer.
        Raises ``QuoteInvalid`` (``QuoteMismatch`` for another cart) or ``QuoteExpired``."""
        payload = verify_quote(quote_id, self._secrets, now)
        if payload.customer_id != order.customer_id:
            raise QuoteMismatch("the quote was issued to another customer")
        if payload.cart_fingerprint != cart_fingerprint(order):
            raise QuoteMismatch(
                "the quote was issued for another cart: lines, address, currency or channel differ; ask for"
                " fulfilment options again"
            )
        return payload
