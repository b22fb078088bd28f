"""A deliberately non-deterministic variant of OrderWorkflow: it plans before it validates.

Used only to prove that the replay test notices when workflow code no longer matches recorded history.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import OrderStatusView, OrderWorkflowInput
    from workflows.order import OrderWorkflow


@workflow.defn(name="OrderWorkflow")
class ReorderedOrderWorkflow(OrderWorkflow):
    @workflow.run
    async def run(self, input: OrderWorkflowInput) -> OrderStatusView:
        await workflow.sleep(timedelta(seconds=1))  # a new first command the history never saw
        return await super().run(input)
