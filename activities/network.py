"""What the network can take right now: node readiness (status, the day's capacity) and ATP per node and SKU.

Read-only: each call opens one unit of work, reads, and commits nothing.
"""

from __future__ import annotations

from datetime import date

import structlog
from temporalio import activity

from domain.network import NodeStatus, NodeView
from infra.db.uow import UowFactory
from workflows.contracts import (
    ActivityName,
    CheckNodesInput,
    CheckNodesResult,
    NodeAtpInput,
    NodeAtpResult,
    NodeReadiness,
)

log = structlog.get_logger(__name__)


def readiness(node_id: str, view: NodeView | None, day: date) -> NodeReadiness:
    """Ready unless unknown, not active, or the day's order or unit capacity is used up.

    A pure rule; it belongs with ``NodeView`` in ``domain.network`` and lives here only until that module is
    free to change (it is the same check the sourcing engine applies to capacity).
    """
    if view is None:
        return NodeReadiness(node_id=node_id, ready=False, reason="unknown")
    if view.status is not NodeStatus.ACTIVE:
        return NodeReadiness(node_id=node_id, ready=False, reason=str(view.status))
    if view.orders_left(day) == 0 or view.units_left(day) == 0:
        return NodeReadiness(node_id=node_id, ready=False, reason="capacity")
    return NodeReadiness(node_id=node_id, ready=True)


class NetworkActivities:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow

    @activity.defn(name=ActivityName.CHECK_NODES)
    async def check_nodes(self, input: CheckNodesInput) -> CheckNodesResult:
        """One answer per node asked about, in the order asked."""
        async with self._uow() as uow:
            views = await uow.inventory.nodes_on(input.node_ids, input.day)
        nodes = [readiness(node_id, views.get(node_id), input.day) for node_id in input.node_ids]
        log.info("nodes checked", day=input.day.isoformat(), not_ready=[n.node_id for n in nodes if not n.ready])
        return CheckNodesResult(nodes=nodes)

    @activity.defn(name=ActivityName.NODE_ATP)
    async def node_atp(self, input: NodeAtpInput) -> NodeAtpResult:
        """ATP per node and SKU as ``customer_id``'s tier may plan with; unknown nodes are left out."""
        async with self._uow() as uow:
            atp = await uow.inventory.atp_at(input.node_ids, input.skus, customer_id=input.customer_id)
        return NodeAtpResult(atp=atp)
