"""Signed, expiring quotes: proof that the platform offered one fulfilment option for one cart, until a deadline.

A quote id is a token the customer hands back when ordering, so the order can be held to what was shown: the
cart has not changed (``cart_fingerprint``), the option is the one offered (``option_id``), and the plan behind
it is the one that was priced and promised (``plan_fingerprint``). It needs no storage: the server checks it
with its own secret, and it expires on its own.

Format: ``q1.<payload>.<signature>``, where ``payload`` is the base64url (unpadded) canonical JSON of a
``QuotePayload`` and ``signature`` the base64url HMAC-SHA256 of ``q1.<payload>`` under a server secret. Two
secrets may be in force at once, so a secret can be rotated without refusing the quotes signed just before:
sign with the newest, verify against all of them (newest first).

Pure: ``now`` is an argument, and ``hmac`` / ``hashlib`` / ``base64`` are stdlib (the canonical JSON is
``options.canonical_json``, shared with the plan fingerprints).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from domain.options import FulfilmentOption, PlanVariant, canonical_json, sha256_hex
from domain.orders import Order

__all__ = [
    "MAX_SECRETS",
    "MIN_SECRET_LENGTH",
    "QUOTE_VERSION",
    "QuoteError",
    "QuoteExpired",
    "QuoteInvalid",
    "QuotePayload",
    "cart_fingerprint",
    "quote_payload",
    "sign_quote",
    "verify_quote",
]

QUOTE_VERSION: Final = "q1"
# The current secret and the one it replaces; more would only widen what a leaked old secret can still sign.
MAX_SECRETS: Final = 2
# 32 bytes of entropy as text is at least this long; a short secret is a configuration error, refused loudly.
MIN_SECRET_LENGTH: Final = 32
# Anything longer is not a token this module made; refused before decoding.
_MAX_TOKEN_LENGTH: Final = 4096


class QuoteError(Exception):
    """A quote id that cannot be honoured. ``message`` is safe to show the caller."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class QuoteInvalid(QuoteError):
    """Not a quote this platform signed with a secret still in force: malformed, tampered with, or foreign."""


class QuoteExpired(QuoteError):
    """A genuine quote past its ``expires_at``: the options must be asked for again."""

    def __init__(self, message: str, *, expired_at: datetime) -> None:
        super().__init__(message)
        self.expired_at = expired_at


class QuotePayload(BaseModel):
    """What a quote binds. ``issued_at`` / ``expires_at`` are stamped by ``sign_quote`` (any given are replaced);
    a payload returned by ``verify_quote`` always has both."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cart_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    customer_id: str = Field(min_length=1, max_length=64)
    option_id: str = Field(min_length=1, max_length=128)
    plan_fingerprint: str = Field(pattern=r"^[0-9a-f]{64}$")
    # The nodes of the quoted plan (shipping and transferring), so the order can look for the same plan there.
    node_ids: list[str] = Field(default_factory=list, max_length=64)
    # How the option was planned, so the order re-plans under the customer's choice if the plan moved.
    variant: PlanVariant
    # What the customer was shown, so an order placed with the quote can record old against new.
    price_minor: int | None = Field(default=None, ge=0)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    ready_by: AwareDatetime | None = None
    deliver_by: date | None = None
    issued_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None


# --- what a quote binds ---------------------------------------------------------------------------------------


def cart_fingerprint(cart: Order) -> str:
    """sha256 of what the options were computed from and the customer could still change before ordering:
    customer, channel, currency, ship-to address and the lines (ids, SKUs, quantities, prices, in order).

    Left out on purpose: the order id and ``placed_at`` (assigned when the order is placed, after the quote),
    and the service level, pickup branch and payment method (the chosen option sets the first two; payment
    does not change where anything comes from)."""
    return sha256_hex(
        {
            "customer_id": cart.customer_id,
            "channel": cart.channel.value,
            "currency": cart.currency,
            "ship_to": cart.ship_to.model_dump(mode="json"),
            "lines": [line.model_dump(mode="json") for line in cart.lines],
        }
    )


def quote_payload(cart: Order, option: FulfilmentOption) -> QuotePayload:
    """What a quote for ``option`` binds (``sign_quote`` stamps the validity window)."""
    return QuotePayload(
        cart_fingerprint=cart_fingerprint(cart),
        customer_id=cart.customer_id,
        option_id=option.option_id,
        plan_fingerprint=option.plan_fingerprint,
        node_ids=sorted({*option.node_ids, *(t.origin_node_id for t in option.plan.transfers)}),
        variant=option.variant,
        price_minor=option.price_minor,
        currency=option.currency,
        ready_by=option.ready_by,
        deliver_by=option.deliver_by,
    )


# --- the token --------------------------------------------------------------------------------------------------


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    """Strict: the unpadded alphabet only, and the one canonical spelling (unused trailing bits zero), so a
    token has exactly one form that verifies."""
    if not text or any(c not in _B64URL for c in text):
        raise ValueError("not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64encode(data) != text:
        raise ValueError("not canonical base64url")
    return data


_B64URL: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode("ascii"), hashlib.sha256).digest()


def _check_secret(secret: str) -> None:
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"a quote secret must be at least {MIN_SECRET_LENGTH} characters")


def _aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


# --- sign and verify ------------------------------------------------------------------------------------------


def sign_quote(payload: QuotePayload, secret: str, now: datetime, ttl: timedelta) -> str:
    """A quote id for ``payload``, valid from ``now`` for ``ttl``. Sign with the newest secret."""
    _check_secret(secret)
    _aware("now", now)
    if ttl <= timedelta(0):
        raise ValueError(f"a quote must live for a positive time, got {ttl}")
    stamped = payload.model_copy(update={"issued_at": now, "expires_at": now + ttl})
    body = _b64encode(canonical_json(stamped))
    signed = f"{QUOTE_VERSION}.{body}"
    return f"{signed}.{_b64encode(_mac(secret, signed))}"


def verify_quote(token: str, secrets: Sequence[str], now: datetime) -> QuotePayload:
    """The payload of a quote id signed with one of ``secrets`` (newest first) that has not expired at ``now``.

    Raises ``QuoteInvalid`` for anything this platform did not sign with a secret in force (the signature is
    checked before the payload is read, so a forged payload is never parsed), and ``QuoteExpired`` for a
    genuine quote at or after its ``expires_at``.
    """
    if not secrets:
        raise ValueError("at least one quote secret is needed")
    if len(secrets) > MAX_SECRETS:
        raise ValueError(f"at most {MAX_SECRETS} quote secrets are in force at once (the current and the previous)")
    for secret in secrets:
        _check_secret(secret)
    _aware("now", now)
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        raise QuoteInvalid("malformed quote id")
    parts = token.split(".")
    if len(parts) != 3:
        raise QuoteInvalid("malformed quote id: expected three dot-separated parts")
    version, body, signature = parts
    if version != QUOTE_VERSION:
        raise QuoteInvalid(f"unsupported quote version {version[:8]!r}")
    try:
        given = _b64decode(signature)
    except (ValueError, binascii.Error):
        raise QuoteInvalid("malformed quote id: the signature is not base64url") from None
    signed = f"{version}.{body}"
    # Every secret is tried (no early exit), so timing does not tell which one matched.
    matched = [hmac.compare_digest(_mac(secret, signed), given) for secret in secrets]
    if not any(matched):
        raise QuoteInvalid("quote signature does not match: altered, or signed with a secret no longer in force")
    try:
        payload = QuotePayload.model_validate_json(_b64decode(body))
    except (ValueError, binascii.Error, ValidationError):
        # Signed by us but unreadable: a payload from a version of this code that no longer exists.
        raise QuoteInvalid("malformed quote payload") from None
    if payload.issued_at is None or payload.expires_at is None:
        raise QuoteInvalid("malformed quote payload: no validity window")
    if now >= payload.expires_at:
        raise QuoteExpired(
            f"quote expired at {payload.expires_at.isoformat()}; ask for fulfilment options again",
            expired_at=payload.expires_at,
        )
    return payload
