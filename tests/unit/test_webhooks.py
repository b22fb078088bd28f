"""Webhook HMAC signing and verification, and the shape of an inbound shipment event."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pydantic import ValidationError

from domain.lifecycle import ShipmentStage
from integrations.webhooks import ShipmentWebhookEvent, SignatureError, sign, verify

SECRET = "s3cret-current"
PREVIOUS = "s3cret-previous"
BODY = b'{"event_id":"E-1","order_id":"A-1001","stage":"picked"}'
T = 1_700_000_000
TOLERANCE = 300


def v1(secret: str, timestamp: int = T, body: bytes = BODY) -> str:
    """The expected signature, computed independently of the code under test."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def test_sign_format_is_t_then_v1():
    assert sign(SECRET, T, BODY) == f"t={T},v1={v1(SECRET)}"


@pytest.mark.parametrize(
    "body", [BODY, b"", b"\x00\xff binary", "ünïcode".encode()], ids=["json", "empty", "binary", "utf8"]
)
def test_sign_then_verify_round_trip(body):
    header = sign(SECRET, T, body)
    assert header == f"t={T},v1={v1(SECRET, T, body)}"
    verify(header, body, [SECRET], now=T, tolerance_s=TOLERANCE)


@pytest.mark.parametrize(
    ("header", "secrets", "now"),
    [
        pytest.param(f"t={T},v1={v1(SECRET)}", [SECRET], T, id="plain"),
        pytest.param(f"v1={v1(SECRET)},t={T}", [SECRET], T, id="v1-before-t"),
        pytest.param(f"t={T}, v1={v1(SECRET)}", [SECRET], T, id="space-after-comma"),
        pytest.param(f"t={T},v1={v1(PREVIOUS)}", [SECRET, PREVIOUS], T, id="rotation-previous-secret"),
        pytest.param(f"t={T},v1={v1(SECRET)}", [SECRET, PREVIOUS], T, id="rotation-current-secret"),
        pytest.param(f"t={T},v1={'0' * 64},v1={v1(SECRET)}", [SECRET], T, id="second-of-two-v1-matches"),
        pytest.param(f"t={T},v1={v1(PREVIOUS)},v1={'f' * 64}", [SECRET, PREVIOUS], T, id="first-of-two-v1-matches"),
        pytest.param(f"t={T},v0=ignored,v1={v1(SECRET)}", [SECRET], T, id="unknown-scheme-ignored"),
        pytest.param(f"t={T},v1={v1(SECRET)}", [SECRET], T + TOLERANCE, id="exactly-tolerance-old"),
        pytest.param(f"t={T},v1={v1(SECRET)}", [SECRET], T - TOLERANCE, id="exactly-tolerance-ahead"),
    ],
)
def test_verify_accepts(header, secrets, now):
    verify(header, BODY, secrets, now=now, tolerance_s=TOLERANCE)


@pytest.mark.parametrize(
    ("header", "body", "secrets", "now", "message"),
    [
        pytest.param(None, BODY, [SECRET], T, "missing Orch-Signature header", id="missing-header"),
        pytest.param("", BODY, [SECRET], T, "missing Orch-Signature header", id="empty-header"),
        pytest.param(f"v1={v1(SECRET)}", BODY, [SECRET], T, "malformed", id="no-t"),
        pytest.param(f"t={T}", BODY, [SECRET], T, "malformed", id="no-v1"),
        pytest.param(f"t={T},v1=", BODY, [SECRET], T, "malformed", id="empty-v1"),
        pytest.param(f"t=abc,v1={v1(SECRET)}", BODY, [SECRET], T, "malformed", id="t-not-a-number"),
        pytest.param(f"t=-{T},v1={v1(SECRET)}", BODY, [SECRET], T, "malformed", id="t-negative"),
        pytest.param("garbage", BODY, [SECRET], T, "malformed", id="garbage"),
        pytest.param(",,,=,", BODY, [SECRET], T, "malformed", id="only-separators"),
        pytest.param(f"T={T},V1={v1(SECRET)}", BODY, [SECRET], T, "malformed", id="keys-are-case-sensitive"),
        pytest.param(
            f"t={T},v1={v1(SECRET)}", BODY + b" ", [SECRET], T, "signature does not match", id="tampered-body"
        ),
        pytest.param(f"t={T},v1={v1(SECRET)}", BODY, ["other"], T, "signature does not match", id="wrong-secret"),
        pytest.param(
            f"t={T},v1={v1(PREVIOUS)}",
            BODY,
            [SECRET],
            T,
            "signature does not match",
            id="previous-secret-not-configured",
        ),
        pytest.param(f"t={T},v1={v1(SECRET)}", BODY, [], T, "signature does not match", id="no-secrets"),
        pytest.param(
            f"t={T + 1},v1={v1(SECRET)}", BODY, [SECRET], T, "signature does not match", id="timestamp-swapped"
        ),
        pytest.param(
            f"t={T},v1={v1(SECRET).upper()}", BODY, [SECRET], T, "signature does not match", id="uppercase-hex"
        ),
        pytest.param(f"t={T},v1={v1(SECRET)}", BODY, [SECRET], T + TOLERANCE + 1, "outside the tolerance", id="stale"),
        pytest.param(f"t={T},v1={v1(SECRET)}", BODY, [SECRET], T - TOLERANCE - 1, "outside the tolerance", id="future"),
        pytest.param(f"t=0,v1={v1(SECRET, 0)}", BODY, [SECRET], T, "outside the tolerance", id="epoch-replay"),
    ],
)
def test_verify_refuses(header, body, secrets, now, message):
    with pytest.raises(SignatureError, match=message):
        verify(header, body, secrets, now=now, tolerance_s=TOLERANCE)


def test_stale_check_happens_before_signature_check():
    # A replayed capture is refused as stale even though its signature is valid.
    header = sign(SECRET, T, BODY)
    with pytest.raises(SignatureError, match="tolerance"):
        verify(header, BODY, [SECRET], now=T + 10 * TOLERANCE, tolerance_s=TOLERANCE)


@pytest.mark.parametrize("t_value", ["\u00b2", "\u00b9\u00b3"], ids=["superscript-two", "superscript-thirteen"])
def test_malformed_unicode_digit_timestamp_is_a_signature_error(t_value):
    with pytest.raises(SignatureError, match="malformed"):
        verify(f"t={t_value},v1={v1(SECRET)}", BODY, [SECRET], now=T, tolerance_s=TOLERANCE)


# --- the event shape ----------------------------------------------------------------------------------------------

EVENT = {
    "event_id": "E-1",
    "order_id": "A-1001",
    "shipment_id": "A-1001:p1:DC-1",
    "stage": "shipped",
    "occurred_at": "2024-05-01T12:00:00Z",
    "tracking_number": "1Z999",
}


def test_event_parses():
    event = ShipmentWebhookEvent.model_validate(EVENT)
    assert event.stage is ShipmentStage.SHIPPED
    assert event.occurred_at.isoformat() == "2024-05-01T12:00:00+00:00"
    assert event.tracking_number == "1Z999"


@pytest.mark.parametrize(
    ("change", "error_type", "loc"),
    [
        pytest.param({"carrier": "ups"}, "extra_forbidden", "carrier", id="unknown-field"),
        pytest.param({"stage": "misplaced"}, "enum", "stage", id="unknown-stage"),
        pytest.param({"stage": "SHIPPED"}, "enum", "stage", id="stage-is-case-sensitive"),
        pytest.param({"event_id": None}, "string_type", "event_id", id="null-event-id"),
        pytest.param({"occurred_at": "yesterday"}, "datetime_from_date_parsing", "occurred_at", id="bad-time"),
    ],
)
def test_event_refuses(change, error_type, loc):
    with pytest.raises(ValidationError) as err:
        ShipmentWebhookEvent.model_validate({**EVENT, **change})
    errors = err.value.errors()
    assert [(e["type"], e["loc"]) for e in errors] == [(error_type, (loc,))]


def test_event_requires_identity_fields():
    with pytest.raises(ValidationError) as err:
        ShipmentWebhookEvent.model_validate({"stage": "picked"})
    missing = {e["loc"][0] for e in err.value.errors() if e["type"] == "missing"}
    assert missing == {"event_id", "order_id", "shipment_id", "occurred_at"}
