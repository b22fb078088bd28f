"""Webhook signing and verification, shared by the receiver (the API) and the senders (the simulator).

Header ``Orch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``. Signing the timestamp
with the body lets the receiver refuse replays of old captures; several ``v1`` values may be sent, and
several secrets accepted, so secrets rotate without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from domain.lifecycle import REPORTABLE_STAGES, ShipmentStage

SIGNATURE_HEADER = "Orch-Signature"


class SignatureError(Exception):
    """Why a webhook was refused; the message is safe to return to the sender."""


def _digest(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={_digest(secret, timestamp, body)}"


def verify(header: str | None, body: bytes, secrets: Sequence[str], *, now: int, tolerance_s: int) -> None:
    """Raise ``SignatureError`` unless ``header`` signs ``body`` with one of ``secrets`` within the tolerance."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            candidates.append(value)
    if timestamp is None or not candidates:
        raise SignatureError(f"malformed {SIGNATURE_HEADER} header")
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError("timestamp outside the tolerance window")
    for secret in secrets:
        expected = _digest(secret, timestamp, body)
        if any(hmac.compare_digest(expected, candidate) for candidate in candidates):
            return
    raise SignatureError("signature does not match")


class ShipmentWebhookEvent(BaseModel):
    """What a warehouse or carrier tells us about a shipment."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=64)
    shipment_id: str = Field(min_length=1, max_length=200)
    stage: ShipmentStage
    occurred_at: AwareDatetime
    tracking_number: str | None = Field(default=None, max_length=64)

    @field_validator("stage")
    @classmethod
    def _reportable(cls, stage: ShipmentStage) -> ShipmentStage:
        """Planning and releasing are ours to decide; a provider reports only what happened after."""
        if stage not in REPORTABLE_STAGES:
            allowed = ", ".join(s for s in ShipmentStage if s in REPORTABLE_STAGES)
            raise ValueError(f"a provider cannot report '{stage}'; one of: {allowed}")
        return stage
