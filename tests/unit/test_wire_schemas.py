"""The JSON Schemas in ``docs/schemas/`` are the wire protocol a WMS, 3PL, payment gateway or fraud screen
implements (``docs/integrations.md``). They are generated from the pydantic models the orchestrator sends and
parses, and this test keeps them equal: change a model, then regenerate with

    ORCH_WRITE_SCHEMAS=1 .venv/bin/pytest -q tests/unit/test_wire_schemas.py

and commit the schemas with the change (a partner reads the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pydantic import BaseModel

from integrations.fraud import ScreenRequest, ScreenResponse
from integrations.notify import NotificationAck, NotificationRequest
from integrations.payments import (
    AuthorizationRequest,
    CaptureRequest,
    PaymentAck,
    PaymentRefusal,
    RefundRequest,
    VoidRequest,
)
from integrations.webhooks import ShipmentWebhookEvent
from integrations.wms import (
    CancelAck,
    CancelRequest,
    FollowUpAck,
    FollowUpRequest,
    ReleaseAck,
    ReleaseRequest,
    ShipmentStatus,
    TrackingRegistered,
    TrackingRegistration,
    TrackingStatus,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"

# File name (without .json) -> the model it describes. Outbound: what we send; inbound: what we parse.
WIRE_MODELS: dict[str, type[BaseModel]] = {
    "wms.release-request": ReleaseRequest,
    "wms.release-ack": ReleaseAck,
    "wms.cancel-request": CancelRequest,
    "wms.cancel-ack": CancelAck,
    "wms.shipment-status": ShipmentStatus,
    "carrier.follow-up-request": FollowUpRequest,
    "carrier.follow-up-ack": FollowUpAck,
    "carrier.tracking-status": TrackingStatus,
    "carrier.tracking-registration": TrackingRegistration,
    "carrier.tracking-registered": TrackingRegistered,
    "payments.authorization-request": AuthorizationRequest,
    "payments.capture-request": CaptureRequest,
    "payments.void-request": VoidRequest,
    "payments.refund-request": RefundRequest,
    "payments.ack": PaymentAck,
    "payments.refusal": PaymentRefusal,
    "fraud.screen-request": ScreenRequest,
    "fraud.screen-response": ScreenResponse,
    "notify.request": NotificationRequest,
    "notify.ack": NotificationAck,
    "webhook.shipment-event": ShipmentWebhookEvent,
}


def render(name: str, model: type[BaseModel]) -> str:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{name}.json",
        **model.model_json_schema(),
    }
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", sorted(WIRE_MODELS))
def test_committed_schema_matches_the_model(name: str) -> None:
    path = SCHEMAS / f"{name}.json"
    expected = render(name, WIRE_MODELS[name])
    if os.environ.get("ORCH_WRITE_SCHEMAS"):
        SCHEMAS.mkdir(parents=True, exist_ok=True)
        path.write_text(expected)
    assert path.exists(), f"{path} missing: regenerate with ORCH_WRITE_SCHEMAS=1"
    assert path.read_text() == expected, f"{path} is out of date: regenerate with ORCH_WRITE_SCHEMAS=1"


def test_every_schema_file_is_a_known_model() -> None:
    """A model renamed or dropped leaves no stale schema behind for a partner to implement."""
    assert {p.stem for p in SCHEMAS.glob("*.json")} == set(WIRE_MODELS)
