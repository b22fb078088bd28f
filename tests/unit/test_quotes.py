"""Signed quote ids (``domain.quotes``): what verifies, what is refused and with which error."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, timedelta

import pytest

from domain.options import PlanVariant, Shape, canonical_json
from domain.orders import ServiceLevel
from domain.policy import Method
from domain.quotes import (
    QUOTE_VERSION,
    QuoteExpired,
    QuoteInvalid,
    QuotePayload,
    cart_fingerprint,
    sign_quote,
    verify_quote,
)
from tests.unit.sourcing_support import NOW, order

SECRET = "current-secret-0123456789abcdef0123"
OLD_SECRET = "previous-secret-0123456789abcdef012"
OTHER = "someone-elses-secret-0123456789abcd"
TTL = timedelta(minutes=15)
PAYLOAD = QuotePayload(
    cart_fingerprint=cart_fingerprint(order("A:2", "B:1")),
    customer_id="C-1",
    option_id="ship_standard-0123456789ab",
    plan_fingerprint="f" * 64,
    variant=PlanVariant(method=Method.DELIVERY, service_level=ServiceLevel.STANDARD, shape=Shape.NO_TRANSFER),
    price_minor=500,
    currency="USD",
    deliver_by=date(2026, 3, 6),
)


def token(payload: QuotePayload = PAYLOAD, secret: str = SECRET) -> str:
    return sign_quote(payload, secret, NOW, TTL)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed(body: bytes, secret: str = SECRET) -> str:
    """A token over any body, signed properly: what only a holder of the secret could make."""
    head = f"{QUOTE_VERSION}.{b64(body)}"
    return f"{head}.{b64(hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest())}"


# --- round trip --------------------------------------------------------------------------------------------------


def test_round_trip_stamps_the_validity_window():
    verified = verify_quote(token(), [SECRET], NOW)
    assert verified == PAYLOAD.model_copy(update={"issued_at": NOW, "expires_at": NOW + TTL})


def test_signing_replaces_any_given_window():
    stale = PAYLOAD.model_copy(update={"issued_at": NOW - TTL * 9, "expires_at": NOW - TTL * 8})
    assert verify_quote(token(stale), [SECRET], NOW).expires_at == NOW + TTL


def test_tokens_are_deterministic_and_url_safe():
    first = token()
    assert first == token()
    assert first.startswith("q1.")
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


# --- expiry ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "valid"),
    [
        pytest.param(NOW, True, id="at-issue"),
        pytest.param(NOW + TTL - timedelta(microseconds=1), True, id="last-microsecond"),
        pytest.param(NOW + TTL, False, id="at-expiry"),
        pytest.param(NOW + TTL + timedelta(days=30), False, id="long-after"),
    ],
)
def test_expiry_boundary(at, valid):
    if valid:
        assert verify_quote(token(), [SECRET], at).option_id == PAYLOAD.option_id
        return
    with pytest.raises(QuoteExpired, match="quote expired at 2026-03-04T15:15:00") as err:
        verify_quote(token(), [SECRET], at)
    assert err.value.expired_at == NOW + TTL
    assert "ask for fulfilment options again" in err.value.message


def test_expiry_is_checked_only_for_a_genuine_quote():
    # An expired token with a bad signature is invalid, not expired: expiry is read only once it is trusted.
    with pytest.raises(QuoteInvalid):
        verify_quote(token(secret=OTHER), [SECRET], NOW + TTL * 2)


# --- tampering, secrets, malformed tokens --------------------------------------------------------------------------


def _flip(text: str, index: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index %= len(text)
    c = text[index]
    return text[:index] + alphabet[alphabet.index(c) ^ 1] + text[index + 1 :]


@pytest.mark.parametrize("part", [1, 2], ids=["payload", "signature"])
@pytest.mark.parametrize("where", [0, 10, -2, -1])
def test_tampered_tokens_are_invalid(part, where):
    pieces = token().split(".")
    pieces[part] = _flip(pieces[part], where)
    # The last signature character is refused before the signature is compared (see the test below).
    with pytest.raises(QuoteInvalid, match=r"signature (does not match|is not base64url)"):
        verify_quote(".".join(pieces), [SECRET], NOW)


def test_the_last_signature_character_has_one_spelling():
    # 32 bytes in unpadded base64 leave two unused bits in the last character: flipping one of them must not
    # give a second token that verifies.
    pieces = token().split(".")
    pieces[2] = _flip(pieces[2], -1)
    with pytest.raises(QuoteInvalid, match="signature is not base64url"):
        verify_quote(".".join(pieces), [SECRET], NOW)


def test_a_changed_payload_cannot_borrow_a_signature():
    dearer = token(PAYLOAD.model_copy(update={"price_minor": 1}))
    forged = ".".join([*dearer.split(".")[:2], token().split(".")[2]])
    with pytest.raises(QuoteInvalid):
        verify_quote(forged, [SECRET], NOW)


@pytest.mark.parametrize(
    ("signed_with", "secrets", "valid"),
    [
        pytest.param(SECRET, [SECRET], True, id="current"),
        pytest.param(OLD_SECRET, [SECRET, OLD_SECRET], True, id="rotated-old-still-accepted"),
        pytest.param(SECRET, [SECRET, OLD_SECRET], True, id="rotated-new"),
        pytest.param(OLD_SECRET, [SECRET], False, id="old-retired"),
        pytest.param(OTHER, [SECRET, OLD_SECRET], False, id="wrong-secret"),
    ],
)
def test_secrets_and_rotation(signed_with, secrets, valid):
    if valid:
        assert verify_quote(token(secret=signed_with), secrets, NOW).customer_id == "C-1"
        return
    with pytest.raises(QuoteInvalid, match="signed with a secret no longer in force"):
        verify_quote(token(secret=signed_with), secrets, NOW)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param("", "three dot-separated parts", id="empty"),
        pytest.param("not-a-quote", "three dot-separated parts", id="one-part"),
        pytest.param("q1.abc", "three dot-separated parts", id="two-parts"),
        pytest.param("q1.a.b.c", "three dot-separated parts", id="four-parts"),
        pytest.param("q2.abc.def", "unsupported quote version", id="other-version"),
        pytest.param("q1.abc.d*f", "signature is not base64url", id="signature-not-base64"),
        pytest.param("q1.abc.", "signature is not base64url", id="empty-signature"),
        pytest.param("q1." + "A" * 5000 + ".sig", "malformed quote id", id="too-long"),
    ],
)
def test_malformed_tokens_are_invalid(text, reason):
    with pytest.raises(QuoteInvalid, match=reason):
        verify_quote(text, [SECRET], NOW)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"[]", id="not-an-object"),
        pytest.param(json.dumps({"customer_id": "C-1"}).encode(), id="fields-missing"),
        pytest.param(canonical_json(PAYLOAD), id="no-validity-window"),
        pytest.param(canonical_json({**PAYLOAD.model_dump(mode="json"), "admin": True}), id="unknown-field"),
    ],
)
def test_a_signed_but_unreadable_payload_is_invalid(body):
    with pytest.raises(QuoteInvalid, match="malformed quote payload"):
        verify_quote(signed(body), [SECRET], NOW)


def test_a_payload_part_that_is_not_base64_is_invalid():
    head = f"{QUOTE_VERSION}.ab*c"
    mac = b64(hmac.new(SECRET.encode(), head.encode(), hashlib.sha256).digest())
    with pytest.raises(QuoteInvalid, match="malformed quote payload"):
        verify_quote(f"{head}.{mac}", [SECRET], NOW)


# --- configuration errors (the server's, not the caller's) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: sign_quote(PAYLOAD, "short", NOW, TTL), "at least 32 characters", id="short-secret"),
        pytest.param(lambda: sign_quote(PAYLOAD, SECRET, NOW, timedelta(0)), "positive time", id="no-ttl"),
        pytest.param(lambda: sign_quote(PAYLOAD, SECRET, NOW.replace(tzinfo=None), TTL), "aware", id="naive-sign"),
        pytest.param(lambda: verify_quote(token(), [], NOW), "at least one", id="no-secrets"),
        pytest.param(lambda: verify_quote(token(), [SECRET, OLD_SECRET, OTHER], NOW), "at most 2", id="three"),
        pytest.param(lambda: verify_quote(token(), ["short"], NOW), "at least 32", id="short-verify"),
        pytest.param(lambda: verify_quote(token(), [SECRET], NOW.replace(tzinfo=None)), "aware", id="naive-verify"),
    ],
)
def test_misconfiguration_is_a_value_error_not_a_quote_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- fingerprints ---------------------------------------------------------------------------------------------------


def test_canonical_json_ignores_key_order_and_whitespace():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": [1, 2], "b": 1}) == b'{"a":[1,2],"b":1}'
    assert canonical_json({"name": "Zoë"}) == b'{"name":"Zo\\u00eb"}'


@pytest.mark.parametrize(
    ("change", "same"),
    [
        pytest.param(lambda o: o.model_copy(update={"order_id": "A-2002"}), True, id="order-id"),
        pytest.param(lambda o: o.model_copy(update={"placed_at": NOW + TTL}), True, id="placed-at"),
        pytest.param(lambda o: o.model_copy(update={"service_level": ServiceLevel.EXPEDITED}), True, id="service"),
        pytest.param(lambda o: o.model_copy(update={"pickup_node_id": "ST"}), True, id="pickup-branch"),
        pytest.param(lambda o: order("A:3", "B:1"), False, id="quantity"),
        pytest.param(lambda o: order("B:1", "A:2"), False, id="line-order"),
        pytest.param(lambda o: order("A:2", "B:1", unit_price_minor=999), False, id="price"),
        pytest.param(lambda o: order("A:2", "B:1", region="CA"), False, id="ship-to"),
        pytest.param(lambda o: o.model_copy(update={"customer_id": "C-2"}), False, id="customer"),
        pytest.param(lambda o: o.model_copy(update={"currency": "EUR"}), False, id="currency"),
    ],
)
def test_cart_fingerprint_covers_what_the_options_depend_on(change, same):
    cart = order("A:2", "B:1")
    assert (cart_fingerprint(change(cart)) == cart_fingerprint(cart)) is same
    assert len(cart_fingerprint(cart)) == 64
