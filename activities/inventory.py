"""Reservations in the ledger. Every call is idempotent by its business key: running it twice is harmless."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from temporalio import activity

from activities import business_failures
from infra.db.uow import UowFactory
from workflows.contracts import (
    ActivityName,
    CommitStockInput,
    CommitStockResult,
    ExpireReservationsInput,
    ExpireReservationsResult,
    ReserveStockInput,
    ReserveStockResult,
    SettleStockInput,
    SettleStockResult,
)

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class InventoryActivities:
    """``clock`` is what the sweeper calls "now" (activities may read the clock, workflows may not); tests
    inject one to move expiry along with the time-skipping server."""

    def __init__(self, uow: UowFactory, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    @activity.defn(name=ActivityName.RESERVE_STOCK)
    async def reserve_stock(self, input: ReserveStockInput) -> ReserveStockResult:
        async with business_failures(), self._uow() as uow:
            outcome = await uow.inventory.reserve(
                input.reservation_key,
                input.order_id,
                input.allocations,
                customer_id=input.customer_id,
                expires_at=input.expires_at,
            )
            await uow.commit()
        return ReserveStockResult(
            reservation_key=input.reservation_key, reserved_units=outcome.reserved_units, replayed=outcome.replayed
        )

    @activity.defn(name=ActivityName.COMMIT_STOCK)
    async def commit_stock(self, input: CommitStockInput) -> CommitStockResult:
        """Fails with ``ReservationReleased`` when the hold has already lapsed: its units may be someone else's."""
        async with business_failures(), self._uow() as uow:
            committed = await uow.inventory.commit(input.reservation_key)
            await uow.commit()
        return CommitStockResult(lines_committed=committed)

    @activity.defn(name=ActivityName.CONSUME_STOCK)
    async def consume_stock(self, input: SettleStockInput) -> SettleStockResult:
        return await self._settle(input, consume=True)

    @activity.defn(name=ActivityName.RELEASE_STOCK)
    async def release_stock(self, input: SettleStockInput) -> SettleStockResult:
        return await self._settle(input, consume=False)

    @activity.defn(name=ActivityName.EXPIRE_RESERVATIONS)
    async def expire_reservations(self, input: ExpireReservationsInput) -> ExpireReservationsResult:
        """Release held reservations past their expiry, one transaction per batch so locks stay short.

        Stops after ``max_batches`` so one sweep never runs for long; ``more_due`` tells the sweeper to go
        again at once. A retry after a crash simply finds fewer reservations due.
        """
        now = self._clock()
        released = batches = 0
        more_due = True
        while more_due and batches < input.max_batches:
            async with self._uow() as uow:
                count = await uow.inventory.expire_held(now, limit=input.batch_size)
                await uow.commit()
            released += count
            batches += 1
            more_due = count == input.batch_size
            # One sweep may run many batches: tell the server it is alive, so a dead worker's sweep is retried
            # after the heartbeat timeout rather than the whole start-to-close timeout.
            activity.heartbeat(batches)
        if released:
            log.info("expired reservations released", reservations=released, batches=batches, swept_at=now)
        return ExpireReservationsResult(
            swept_at=now, reservations_released=released, batches=batches, more_due=more_due
        )

    async def _settle(self, input: SettleStockInput, *, consume: bool) -> SettleStockResult:
        async with self._uow() as uow:
            changed = await uow.inventory.settle(
                input.reservation_key, consume=consume, node_id=input.node_id, actor="workflow"
            )
            await uow.commit()
        return SettleStockResult(lines_changed=changed)
