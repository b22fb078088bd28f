"""Recorded sourcing decisions: the first plan made for an order's attempt is the plan, for good."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.sourcing import Plan
from infra.db.tables import OrderPlan


class PlanRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def get(self, plan_id: str) -> Plan | None:
        stored = await self._session.scalar(select(OrderPlan.plan).where(OrderPlan.plan_id == plan_id))
        return None if stored is None else Plan.model_validate(stored)

    async def record(self, order_id: str, plan: Plan, *, request: dict[str, Any] | None = None) -> Plan:
        """Store ``plan`` unless one is already recorded for its id; return the recorded one either way.

        ``request`` is what the plan was asked for (JSON: the order and its geocoded destination at least), kept
        so the rules simulator can re-plan the order under another policy. Two runs racing to plan the same
        attempt both get the winner's plan: the loser's is discarded, request and all.
        """
        inserted = await self._session.scalar(
            insert(OrderPlan)
            .values(
                plan_id=plan.plan_id,
                order_id=order_id,
                attempt=plan.attempt,
                policy_version=plan.explanation.policy_version,
                plan=plan.model_dump(mode="json"),
                request=request,
            )
            .on_conflict_do_nothing()
            .returning(OrderPlan.plan_id)
        )
        if inserted is not None:
            return plan
        recorded = await self.get(plan.plan_id)
        if recorded is None:  # the row was there a moment ago and plans are never deleted
            raise RuntimeError(f"plan {plan.plan_id} vanished while being recorded")
        return recorded

    async def for_order(self, order_id: str) -> list[Plan]:
        rows = await self._session.scalars(
            select(OrderPlan.plan).where(OrderPlan.order_id == order_id).order_by(OrderPlan.attempt)
        )
        return [Plan.model_validate(row) for row in rows]
