"""The composition root for the worker: settings → clients → activity instances → ``Worker``."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import Worker

from activities.fulfilment import FulfilmentActivities
from activities.inventory import InventoryActivities
from activities.network import NetworkActivities
from activities.notify import NotifyActivities
from activities.payments import FraudActivities, PaymentActivities
from activities.sourcing import SourcingActivities
from activities.status import StatusActivities
from activities.validation import ValidationActivities
from infra.db.engine import create_engine, session_factory
from infra.db.uow import UowFactory, uow_factory
from infra.geo import CityGeocoder
from infra.interceptors import LoggingInterceptor
from infra.settings import Settings
from infra.temporal import connect, prepare_namespace
from integrations.partners import Partners, partner_clients
from workflows.contracts import ReservationSweeperInput
from workflows.order import OrderWorkflow
from workflows.sweeper import RESERVATION_SWEEPER_WORKFLOW_ID, ReservationSweeperWorkflow

log = structlog.get_logger(__name__)

WORKFLOWS = [OrderWorkflow, ReservationSweeperWorkflow]

# Starting the sweeper must not hold up a worker's start-up for long when the server is slow to answer.
SWEEPER_START_TIMEOUT = timedelta(seconds=10)


def build_activities(
    uow: UowFactory, partners: Partners, geocoder: CityGeocoder | None = None
) -> list[Callable[..., Any]]:
    """Every activity the worker serves, bound to its dependencies. Tests build theirs with this too."""
    validation = ValidationActivities(uow, geocoder or CityGeocoder())
    sourcing = SourcingActivities(uow)
    inventory = InventoryActivities(uow)
    network = NetworkActivities(uow)
    fulfilment = FulfilmentActivities(partners.wms, uow)
    payments = PaymentActivities(partners.payments)
    fraud = FraudActivities(partners.fraud)
    notify = NotifyActivities(partners.notifier)
    status = StatusActivities(uow)
    return [
        validation.validate_order,
        fraud.screen_order,
        sourcing.plan_order,
        network.check_nodes,
        network.node_atp,
        inventory.reserve_stock,
        inventory.commit_stock,
        inventory.consume_stock,
        inventory.release_stock,
        inventory.expire_reservations,
        payments.authorize_payment,
        payments.capture_payment,
        payments.void_payment,
        payments.refund_payment,
        fulfilment.release_shipment,
        fulfilment.cancel_release,
        fulfilment.request_follow_up,
        fulfilment.track_parcel,
        fulfilment.shipment_status,
        fulfilment.register_tracking,
        notify.notify,
        status.publish_status,
    ]


@asynccontextmanager
async def running_worker(settings: Settings, client: Client) -> AsyncIterator[Worker]:
    engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
    async with partner_clients(
        wms_url=settings.wms_url,
        payments_url=settings.payments_url,
        fraud_url=settings.fraud_url,
        notify_url=settings.notify_url,
        timeout_s=settings.wms_timeout_s,
    ) as partners:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(uow_factory(session_factory(engine)), partners),
            interceptors=[LoggingInterceptor()],
            # On SIGTERM, let activities in flight finish (a release in mid-call) before cancelling them.
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace_s),
        )
        try:
            async with worker:
                await start_sweeper(client, settings.task_queue)
                yield worker
        finally:
            await engine.dispose()


async def start_sweeper(
    client: Client, task_queue: str, *, workflow_id: str = RESERVATION_SWEEPER_WORKFLOW_ID
) -> str | None:
    """Make sure the reservation sweeper runs; returns its run id. Every worker tries at start-up, and
    ``USE_EXISTING`` turns every try after the first (restarts, more workers) into finding the running one.
    Best effort: a worker that cannot start it still serves orders (if no sweeper runs at all, lapsed holds
    stay held until a later start succeeds), so a failure is a logged warning and ``None``."""
    try:
        handle = await client.start_workflow(
            ReservationSweeperWorkflow.run,
            ReservationSweeperInput(),
            id=workflow_id,
            task_queue=task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=SWEEPER_START_TIMEOUT,
        )
    except Exception as err:  # whatever the reason, it must not stop the worker
        log.warning("could not start the reservation sweeper", workflow_id=workflow_id, error=str(err))
        return None
    log.info("reservation sweeper running", workflow_id=handle.id, run_id=handle.result_run_id)
    return handle.result_run_id


async def run(settings: Settings) -> None:
    client = await connect(settings)
    await prepare_namespace(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings, client):
        log.info("worker started", task_queue=settings.task_queue, temporal=settings.temporal_target())
        await stop.wait()
        log.info("worker stopping: finishing in-flight tasks")
