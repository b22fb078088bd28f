"""``ReservationSweeperWorkflow``: releases held reservations past their expiry, for as long as the system runs.

One per namespace, under a fixed id (a singleton is the one case where a fixed id is right): every worker
starts it at start-up with ``USE_EXISTING``, so restarts and extra workers find the running one. It sweeps,
sleeps, and continues as new every ``sweeps_per_run`` sweeps so its history stays small.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        ActivityName,
        ExpireReservationsInput,
        ExpireReservationsResult,
        QueryName,
        ReservationSweeperInput,
        ReservationSweeperStatus,
    )

RESERVATION_SWEEPER_WORKFLOW_ID = "reservation-sweeper"

# A sweep touches only PostgreSQL; a failure (database restarting) retries without limit, capped at the
# sweep interval's order of magnitude, and the next sweep would catch up anyway.
SWEEP_TIMEOUT = timedelta(minutes=2)
# Each batch heartbeats; a sweep that goes quiet this long is presumed lost with its worker and retried.
SWEEP_HEARTBEAT = timedelta(seconds=30)
SWEEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn
class ReservationSweeperWorkflow:
    @workflow.init
    def __init__(self, input: ReservationSweeperInput) -> None:
        self._sweeps = 0
        self._released = input.released_before
        self._last_swept_at: datetime | None = None

    @workflow.run
    async def run(self, input: ReservationSweeperInput) -> None:
        # A regular activity, not a local one: it runs once a minute, not per order, and a sweep that keeps
        # failing then shows under "Pending Activities" in the UI instead of only in a worker's log.
        while self._sweeps < input.sweeps_per_run and not workflow.info().is_continue_as_new_suggested():
            result = await workflow.execute_activity(
                ActivityName.EXPIRE_RESERVATIONS,
                ExpireReservationsInput(batch_size=input.batch_size),
                result_type=ExpireReservationsResult,
                start_to_close_timeout=SWEEP_TIMEOUT,
                heartbeat_timeout=SWEEP_HEARTBEAT,
                retry_policy=SWEEP_RETRY,
            )
            self._sweeps += 1
            self._released += result.reservations_released
            self._last_swept_at = result.swept_at
            if not result.more_due:
                await workflow.sleep(input.interval)
        workflow.continue_as_new(input.model_copy(update={"released_before": self._released}))

    @workflow.query(name=QueryName.STATUS)
    def status(self) -> ReservationSweeperStatus:
        return ReservationSweeperStatus(
            sweeps_this_run=self._sweeps, reservations_released=self._released, last_swept_at=self._last_swept_at
        )
