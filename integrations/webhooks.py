"""Webhook signing and verification, shared by the receiver (the API) and the senders (the simulator).

Header ``Orch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``. Signing the timestamp
with the body lets the receiver refuse replays of old captures; several ``v1`` values may be sent, and
several secrets accepted, so secrets rotate without downtime.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import date
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from domain.exceptions import ShipmentIssue
from domain.lifecycle import REPORTABLE_STAGES, ShipmentStage
from workflows.contracts import ShortLine

SIGNATURE_HEADER = "Orch-Signature"

_D = TypeVar("_D")


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
    """What a warehouse or carrier tells us about a shipment: a stage it reached, or an issue with it.

    Exactly one of ``stage`` and ``issue`` is set. An issue may carry detail: the ``short_lines`` of a short
    pick, the carrier's ``new_estimate`` for a delay, and free text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(min_length=1, max_length=128)
    order_id: str = Field(min_length=1, max_length=64)
    shipment_id: str = Field(min_length=1, max_length=200)
    stage: ShipmentStage | None = None
    # Declared after ``stage`` and validated even when left out, so its check sees the stage (see ``_one_of``).
    issue: ShipmentIssue | None = Field(default=None, validate_default=True)
    occurred_at: AwareDatetime
    tracking_number: str | None = Field(default=None, max_length=64)
    short_lines: list[ShortLine] = Field(default_factory=list, max_length=500)
    new_estimate: date | None = None
    detail: str = Field(default="", max_length=1000)

    @field_validator("stage")
    @classmethod
    def _reportable(cls, stage: ShipmentStage | None) -> ShipmentStage | None:
        """Planning and releasing are ours to decide; a provider reports only what happened after."""
        if stage is not None and stage not in REPORTABLE_STAGES:
            allowed = ", ".join(s for s in ShipmentStage if s in REPORTABLE_STAGES)
            is_issue = stage.value in {issue.value for issue in ShipmentIssue}
            hint = f" ('{stage}' is an issue: send it as 'issue')" if is_issue else ""
            raise ValueError(f"a provider cannot report '{stage}'; one of: {allowed}{hint}")
        return stage

    @field_validator("issue")
    @classmethod
    def _one_of(cls, issue: ShipmentIssue | None, info: ValidationInfo) -> ShipmentIssue | None:
        """Exactly one of ``stage`` and ``issue``; the error names ``issue``, the field to set or to drop."""
        if "stage" not in info.data:  # the stage itself was invalid: that error is the one to report
            return issue
        stage = info.data["stage"]
        if stage is None and issue is None:
            raise ValueError("an event reports a 'stage' or an 'issue': set one of them")
        if stage is not None and issue is not None:
            raise ValueError(f"an event reports a 'stage' or an 'issue', not both (stage is '{stage}')")
        return issue

    @field_validator("short_lines", "new_estimate")
    @classmethod
    def _issue_detail(cls, value: _D, info: ValidationInfo) -> _D:
        if value and "issue" in info.data and info.data["issue"] is None:
            raise ValueError(f"'{info.field_name}' is detail of an issue, and this event reports a stage")
        return value
