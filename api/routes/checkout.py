"""Checkout: the fulfilment options for a cart, each with a signed quote id the order can be placed with.

Read-only: nothing is reserved when options are asked for (a checkout page may ask many times). The quote binds
what was offered; the order, placed with it, keeps that plan when it still can, and says so when it cannot.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from fastapi import APIRouter

from api.deps import CheckoutDep
from api.errors import ApiError
from api.schemas import CartBody, FulfilmentOptionsPublic, OptionPublic
from domain.errors import OrderInvalid

router = APIRouter(tags=["checkout"])
log = structlog.get_logger(__name__)


@router.post(
    "/fulfillment-options",
    response_model=FulfilmentOptionsPublic,
    responses={422: {"description": "a malformed cart, or one that could not be ordered: each problem by field"}},
)
async def fulfillment_options(body: CartBody, checkout: CheckoutDep) -> FulfilmentOptionsPublic:
    """The ways the customer could receive this cart (pickup at the chosen, home or nearest branch; delivery
    standard, split, consolidated or expedited), each with lines → nodes, price, ready-by or deliver-by, number
    of shipments, a plain-language trade-off, and a quote id that expires. The option planned with the cart's
    own method and service level is marked ``recommended``."""
    now = datetime.now(UTC)
    try:
        offers = await checkout.offers(body.to_cart(now), now, methods=body.methods)
    except OrderInvalid as err:
        problems = err.details.get("problems", []) if isinstance(err.details, dict) else []
        raise ApiError(422, f"cart cannot be ordered: {err.message}", errors=problems) from None
    log.info("fulfilment options", options=len(offers.offers), policy_version=offers.policy_version)
    return FulfilmentOptionsPublic(
        cart_fingerprint=offers.cart_fingerprint,
        generated_at=offers.generated_at,
        quotes_expire_at=offers.expires_at,
        policy_version=offers.policy_version,
        options=[OptionPublic.of(o.option, o.quote_id) for o in offers.offers],
        message=None if offers.offers else "no node can supply this cart now, for pickup or delivery",
    )
