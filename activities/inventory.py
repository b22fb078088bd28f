"""Reservations in the ledger. Every call is idempotent by its business key: running it twice is harmless."""

from __future__ import annotations

from temporalio import activity

from activities import business_failures
from infra.db.uow import UowFactory
from workflows.contracts import (
    ActivityName,
    ReserveStockInput,
    ReserveStockResult,
    SettleStockInput,
    SettleStockResult,
)


class InventoryActivities:
    def __init__(self, uow: UowFactory) -> None:
        self._uow = uow

    @activity.defn(name=ActivityName.RESERVE_STOCK)
    async def reserve_stock(self, input: ReserveStockInput) -> ReserveStockResult:
        async with business_failures(), self._uow() as uow:
            outcome = await uow.inventory.reserve(input.reservation_key, input.order_id, input.allocations)
            await uow.commit()
        return ReserveStockResult(
            reservation_key=input.reservation_key, reserved_units=outcome.reserved_units, replayed=outcome.replayed
        )

    @activity.defn(name=ActivityName.CONSUME_STOCK)
    async def consume_stock(self, input: SettleStockInput) -> SettleStockResult:
        return await self._settle(input, consume=True)

    @activity.defn(name=ActivityName.RELEASE_STOCK)
    async def release_stock(self, input: SettleStockInput) -> SettleStockResult:
        return await self._settle(input, consume=False)

    async def _settle(self, input: SettleStockInput, *, consume: bool) -> SettleStockResult:
        async with self._uow() as uow:
            changed = await uow.inventory.settle(
                input.reservation_key, consume=consume, node_id=input.node_id, actor="workflow"
            )
            await uow.commit()
        return SettleStockResult(lines_changed=changed)
