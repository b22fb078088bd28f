"""Durable orchestration. Workflow modules import only ``domain`` and ``workflows.contracts``."""

from __future__ import annotations

TASK_QUEUE = "orders"

ORDER_WORKFLOW_PREFIX = "order:"


def order_workflow_id(order_id: str) -> str:
    """The workflow ID of an order, derived from the business id so a duplicate start is detected."""
    return f"{ORDER_WORKFLOW_PREFIX}{order_id}"
