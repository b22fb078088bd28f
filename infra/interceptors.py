"""Bind every activity's business context into the log, once, for all activities.

Whatever an activity (or the repositories and clients it calls) logs carries ``order_id``,
``workflow_id``, ``run_id`` and ``activity``, so one filter in a log aggregator shows everything that
happened to an order, across processes and retries.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from workflows import ORDER_WORKFLOW_PREFIX


class _BindActivityContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        workflow_id = info.workflow_id or ""
        context: dict[str, Any] = {
            "workflow_id": workflow_id,
            "run_id": info.workflow_run_id,
            "activity": info.activity_type,
            "attempt": info.attempt,
        }
        if workflow_id.startswith(ORDER_WORKFLOW_PREFIX):
            context["order_id"] = workflow_id.removeprefix(ORDER_WORKFLOW_PREFIX)
        with structlog.contextvars.bound_contextvars(**context):
            return await self.next.execute_activity(input)


class LoggingInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindActivityContext(next)
