"""Activities log with the order's identity bound, whatever activity it is."""

from __future__ import annotations

import uuid
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from workflows import order_workflow_id

# This module defines a workflow, so the sandbox re-imports it: structlog (and rich, which structlog imports when
# it is installed, and which draws random numbers at import) must come from outside the sandbox.
with workflow.unsafe.imports_passed_through():
    import structlog

    from infra.interceptors import LoggingInterceptor


@activity.defn
async def report_log_context() -> dict[str, str]:
    return {k: str(v) for k, v in structlog.contextvars.get_contextvars().items()}


@workflow.defn
class LogContextWorkflow:
    @workflow.run
    async def run(self) -> dict[str, str]:
        return await workflow.execute_activity(report_log_context, start_to_close_timeout=timedelta(seconds=10))


async def test_activity_logs_carry_order_and_workflow_ids(temporal_env: WorkflowEnvironment) -> None:
    task_queue = f"log-{uuid.uuid4().hex[:8]}"
    async with Worker(
        temporal_env.client,
        task_queue=task_queue,
        workflows=[LogContextWorkflow],
        activities=[report_log_context],
        interceptors=[LoggingInterceptor()],
    ):
        handle = await temporal_env.client.start_workflow(
            LogContextWorkflow.run, id=order_workflow_id("A-77"), task_queue=task_queue
        )
        context = await handle.result()
    assert context == {
        "order_id": "A-77",
        "workflow_id": "order:A-77",
        "run_id": handle.result_run_id,
        "activity": "report_log_context",
        "attempt": "1",
    }
    assert structlog.contextvars.get_contextvars() == {}, "context must not leak past the activity"
