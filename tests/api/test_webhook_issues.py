"""Shipment issues arriving by webhook: validated (a stage or an issue, never both), deduplicated, and signalled
to the order's workflow as ``shipment_issue_reported`` (stages keep ``shipment_event_received``)."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from domain.exceptions import ShipmentIssue
from domain.orders import Address, Order, OrderLine
from infra.settings import Settings
from infra.temporal import DATA_CONVERTER
from integrations.webhooks import SIGNATURE_HEADER, sign
from tests.api.conftest import IsolatedApi
from workflows import order_workflow_id
from workflows.contracts import (
    OrderWorkflowInput,
    ShipmentEventReceived,
    ShipmentIssueReported,
    ShortLine,
    SignalName,
)
from workflows.order import OrderWorkflow

pytestmark = pytest.mark.db

SECRET = Settings.model_validate({}).webhook_secret.get_secret_value()


def event(order_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:10]}",
        "order_id": order_id,
        "shipment_id": f"{order_id}:p1:DC-1",
        "occurred_at": "2026-11-22T10:00:00Z",
        **fields,
    }


async def post(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    return await client.post(
        "/webhooks/wms", content=raw, headers={SIGNATURE_HEADER: sign(SECRET, int(time.time()), raw)}
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        pytest.param({"stage": "picked", "issue": "lost"}, "issue", "not both", id="both"),
        pytest.param({}, "issue", "set one of them", id="neither"),
        pytest.param({"issue": "misplaced"}, "issue", "Input should be", id="unknown-issue"),
        pytest.param({"stage": "lost"}, "stage", "send it as 'issue'", id="issue-sent-as-stage"),
        pytest.param(
            {"stage": "picked", "short_lines": [{"line_id": "1", "short_quantity": 1}]},
            "short_lines",
            "detail of an issue",
            id="short-lines-on-a-stage",
        ),
        pytest.param(
            {"issue": "short_picked", "short_lines": [{"line_id": "1", "short_quantity": 0}]},
            "short_lines.0.short_quantity",
            "greater than 0",
            id="zero-short",
        ),
    ],
)
async def test_event_must_report_a_stage_or_an_issue(
    api_client: httpx.AsyncClient, fields: dict[str, Any], field: str, message: str
) -> None:
    response = await post(api_client, event("A-1", **fields))
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert message in error["message"]


async def test_issue_for_an_unknown_order_is_kept_and_a_repeat_is_a_duplicate(api_client: httpx.AsyncClient) -> None:
    body = event(f"NOPE-{uuid.uuid4().hex[:8]}", issue="delayed", new_estimate="2026-12-01", detail="weather")
    first = await post(api_client, body)
    assert (first.status_code, first.json()["outcome"]) == (202, "unknown_order")
    again = await post(api_client, body)
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")


def order(order_id: str) -> Order:
    return Order(
        order_id=order_id,
        customer_id="C-1",
        ship_to=Address(name="Ada", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"),
        lines=[OrderLine(line_id="1", sku="DRILL", quantity=2)],
        placed_at=datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
    )


async def signals(handle: WorkflowHandle[Any, Any]) -> list[tuple[str, Any]]:
    """The signals in a workflow's history, decoded to the type their name says."""
    types = {
        SignalName.SHIPMENT_ISSUE_REPORTED: ShipmentIssueReported,
        SignalName.SHIPMENT_EVENT_RECEIVED: ShipmentEventReceived,
    }
    found = []
    async for e in handle.fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            attrs = e.workflow_execution_signaled_event_attributes
            [value] = await DATA_CONVERTER.decode(attrs.input.payloads, [types[attrs.signal_name]])
            found.append((attrs.signal_name, value))
    return found


async def test_issue_and_stage_are_signalled_by_their_own_names(isolated_api: IsolatedApi) -> None:
    api_client, temporal_env = isolated_api.http, isolated_api.env
    # The workflow runs on a queue no worker serves: the server records the signals, no workflow code runs.
    order_id = f"WH-{uuid.uuid4().hex[:8]}"
    handle = await temporal_env.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order(order_id)),
        id=order_workflow_id(order_id),
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )
    try:
        short = event(
            order_id,
            issue="short_picked",
            short_lines=[{"line_id": "1", "short_quantity": 2}],
            detail="bin empty",
        )
        picked = event(order_id, stage="acknowledged")
        assert (await post(api_client, short)).json()["outcome"] == "applied"
        assert (await post(api_client, picked)).json()["outcome"] == "applied"
        assert (await post(api_client, short)).json()["outcome"] == "duplicate"

        [(issue_name, issue), (stage_name, stage)] = await signals(handle)
        assert issue_name == SignalName.SHIPMENT_ISSUE_REPORTED
        assert issue == ShipmentIssueReported(
            event_id=short["event_id"],
            shipment_id=f"{order_id}:p1:DC-1",
            issue=ShipmentIssue.SHORT_PICKED,
            occurred_at=datetime(2026, 11, 22, 10, 0, tzinfo=UTC),
            detail="bin empty",
            short_lines=[ShortLine(line_id="1", short_quantity=2)],
        )
        assert stage_name == SignalName.SHIPMENT_EVENT_RECEIVED
        assert stage.event_id == picked["event_id"]
    finally:
        await handle.terminate("test over")


async def test_delay_carries_its_new_estimate(isolated_api: IsolatedApi) -> None:
    api_client, temporal_env = isolated_api.http, isolated_api.env
    order_id = f"WH-{uuid.uuid4().hex[:8]}"
    handle = await temporal_env.client.start_workflow(
        OrderWorkflow.run,
        OrderWorkflowInput(order=order(order_id)),
        id=order_workflow_id(order_id),
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )
    try:
        delayed = event(order_id, issue="delayed", new_estimate="2026-12-03", tracking_number="1Z9")
        assert (await post(api_client, delayed)).json()["outcome"] == "applied"
        [(_, signal)] = await signals(handle)
        assert (signal.issue, signal.new_estimate) == (ShipmentIssue.DELAYED, date(2026, 12, 3))
    finally:
        await handle.terminate("test over")
