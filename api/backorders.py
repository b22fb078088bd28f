"""Wake backordered orders when stock goes up: find the orders waiting and send each the ``stock_available`` signal.

A backordered order re-checks on its own timer (``PlaybookSettings.backorder_recheck``, hours); this signal only
makes it re-plan *now*. So it is a hint, never a requirement: nothing here may fail or hold up the write that
raised the stock, and an order missed (listed before it entered its backorder, hidden by visibility lag, beyond
the cap, or a notice lost when the process stops) is planned at its next check instead.

It lives in ``api/`` rather than ``infra/``: the only trigger is a committed inventory write answered over HTTP,
the background tasks belong to the API process (kept on the app's state), and ``api/`` is already the layer that
signals order workflows (``routes/webhooks.py``). Move the ``BackorderNotifier`` class to ``infra/`` if the
worker ever needs it (say, for stock received through a WMS webhook handled by an activity).

Known limits, each a change outside this module:

- Order workflows carry no search attribute naming the SKUs they wait for, so every running backorder is
  listed and signalled, and each ignores the SKUs it does not need (one history event and one workflow task
  each). A ``BackorderedSkus`` keyword-list search attribute would let the query filter by SKU and the signal
  carry only what that order needs.
- The app's lifespan (``api/app.py``) should build the notifier and ``drain`` it on shutdown; until it does,
  ``notifier_of`` builds one on first use and notices still pending at shutdown are dropped (see above: harmless).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from api.deps import TemporalDep
from domain.exceptions import ExceptionCode
from domain.feeds import FeedReport, FeedRow, Outcome, SnapshotLine
from workflows import ORDER_WORKFLOW_PREFIX
from workflows.contracts import SA_EXCEPTION_CODE, SignalName, StockAvailable

log = structlog.get_logger(__name__)

# Visibility's SQL-like language: attribute names unquoted, keyword values in single quotes. ExceptionCode is set
# only by order workflows; the WorkflowId prefix keeps it that way should another workflow type reuse it.
BACKORDERED_QUERY = (
    f"{SA_EXCEPTION_CODE.name} = '{ExceptionCode.BACKORDERED}' AND ExecutionStatus = 'Running'"
    f" AND WorkflowId STARTS_WITH '{ORDER_WORKFLOW_PREFIX}'"
)
# Orders signalled per notice, at most; the rest are found by their own re-check.
MAX_ORDERS = 500
# SKUs named in one signal, at most: a snapshot of 50,000 rows must not become a 1.5 MB payload recorded in
# every waiting order's history. SKUs whose on_hand rose come first; the rest wait for their orders' re-check.
MAX_SKUS = 1_000
# Signals in flight at once within one notice, and notices running at once in one process.
SIGNAL_CONCURRENCY = 20
NOTICE_CONCURRENCY = 4
# Notices waiting or running in one process; beyond this a new one is dropped (with a warning), not queued.
MAX_PENDING = 100
# A notice still running after this is abandoned; what it had not signalled waits for the re-check.
NOTICE_DEADLINE = timedelta(seconds=30)

# (query, limit) -> workflow ids. The default asks Temporal's visibility; tests may stand in for it.
Lister = Callable[[str, int], AsyncIterator[str]]


@dataclass
class NoticeResult:
    """What one notice did; ``truncated`` when more orders matched than were signalled."""

    listed: int = 0
    signalled: int = 0
    closed: int = 0
    failed: int = 0
    truncated: bool = False
    timed_out: bool = False


@dataclass(frozen=True)
class RaisedStock:
    """The SKUs whose availability may have gone up in one committed write, and the node when it is just one."""

    skus: list[str]
    node_id: str | None = None

    @classmethod
    def of_feed(cls, report: FeedReport, rows: Sequence[FeedRow[Any]] = ()) -> RaisedStock:
        """From a feed's report: applied rows whose on_hand rose, then applied snapshot rows that set safety stock
        (it may have gone down; the report does not say). A replayed batch wrote nothing this time: nothing."""
        if not report.accepted or report.replayed:
            return cls(skus=[])
        safety_set = {r.row for r in rows if isinstance(r.line, SnapshotLine) and r.line.safety_stock is not None}
        rose: dict[str, None] = {}
        maybe: dict[str, None] = {}
        nodes: set[str] = set()
        for row in report.rows:
            if row.outcome is not Outcome.APPLIED or row.sku is None:
                continue
            if row.before is not None and row.after is not None and row.after > row.before:
                rose[row.sku] = None
            elif row.row in safety_set:
                maybe[row.sku] = None
            else:
                continue
            if row.node_id is not None:
                nodes.add(row.node_id)
        skus = list(rose) + [sku for sku in maybe if sku not in rose]
        return cls(skus=skus, node_id=next(iter(nodes)) if len(nodes) == 1 else None)


class BackorderNotifier:
    """Signals ``stock_available`` to the running backordered orders. One per process; holds the Temporal client.

    ``notify`` does the work and returns counts; ``notify_soon`` starts it as a background task and returns at once.
    The routes use ``notify_soon``, after their commit: the HTTP answer says what was written, and should not wait
    on a visibility query and up to ``MAX_ORDERS`` signals (a second or more under load) for a hint that the
    orders' own re-check makes optional. Awaiting with a short timeout was the alternative; it adds that latency
    to every receipt and still has to give up on slow notices, so it buys nothing the background task lacks.
    The tasks are bounded (``MAX_PENDING`` waiting, ``NOTICE_CONCURRENCY`` running, ``NOTICE_DEADLINE`` each)
    and referenced from here so none is garbage-collected mid-flight; ``drain`` waits for them.
    """

    def __init__(
        self,
        client: Client,
        *,
        lister: Lister | None = None,
        max_orders: int = MAX_ORDERS,
        max_skus: int = MAX_SKUS,
        deadline: timedelta = NOTICE_DEADLINE,
    ) -> None:
        self._client = client
        self._lister = lister or self._visibility
        self._max_orders = max_orders
        self._max_skus = max_skus
        self._deadline = deadline
        self._notices = asyncio.Semaphore(NOTICE_CONCURRENCY)
        self._tasks: set[asyncio.Task[NoticeResult]] = set()

    async def _visibility(self, query: str, limit: int) -> AsyncIterator[str]:
        async for execution in self._client.list_workflows(query, limit=limit):
            yield execution.id

    def notify_soon(self, raised: RaisedStock) -> asyncio.Task[NoticeResult] | None:
        """Start ``notify`` in the background; None when there is nothing to say or too much is already pending."""
        if not raised.skus:
            return None
        if len(self._tasks) >= MAX_PENDING:
            log.warning("backorder notice dropped: too many pending", pending=len(self._tasks), skus=len(raised.skus))
            return None
        # A fresh context: the notice concerns many orders, so it must not log under ids a request had bound.
        task = asyncio.create_task(self._bounded(raised), name="backorder-notice", context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, grace: timedelta = NOTICE_DEADLINE) -> None:
        """Wait for the pending notices (at shutdown); cancel what is still running after ``grace``."""
        if not self._tasks:
            return
        _, running = await asyncio.wait(set(self._tasks), timeout=grace.total_seconds())
        for task in running:
            task.cancel()

    async def _bounded(self, raised: RaisedStock) -> NoticeResult:
        async with self._notices:
            try:
                return await self.notify(raised.skus, node_id=raised.node_id)
            except Exception:  # a background task: nobody else would see it
                log.exception("backorder notice failed", skus=len(raised.skus))
                return NoticeResult()

    async def notify(self, skus: Collection[str], *, node_id: str | None = None) -> NoticeResult:
        """List the running backordered orders (up to ``max_orders``) and signal each; never raises for an order.

        An order that closed since it was listed answers NOT_FOUND and is counted as ``closed``; any other
        failure to signal one order is logged and counted as ``failed``, and the others are still signalled.
        """
        result = NoticeResult()
        named = _first(skus, self._max_skus)
        if not named:
            return result
        signal = StockAvailable(skus=named, node_id=node_id)
        try:
            async with asyncio.timeout(self._deadline.total_seconds()):
                ids = [wid async for wid in self._lister(BACKORDERED_QUERY, self._max_orders + 1)]
                result.listed = len(ids)
                result.truncated = len(ids) > self._max_orders
                gate = asyncio.Semaphore(SIGNAL_CONCURRENCY)
                async with asyncio.TaskGroup() as group:
                    for workflow_id in ids[: self._max_orders]:
                        group.create_task(self._signal(gate, workflow_id, signal, result))
        except TimeoutError:
            result.timed_out = True
        except RPCError as err:
            log.warning(
                "could not list backordered orders", error=str(err), status=err.status.name, query=BACKORDERED_QUERY
            )
            return result
        event = "backordered orders signalled" if not result.timed_out else "backorder notice timed out"
        log.info(
            event,
            skus=len(named),
            skus_dropped=max(0, len(skus) - len(named)),
            sample=named[:5],
            node_id=node_id,
            listed=result.listed,
            signalled=result.signalled,
            closed=result.closed,
            failed=result.failed,
            truncated=result.truncated,
        )
        return result

    async def _signal(
        self, gate: asyncio.Semaphore, workflow_id: str, signal: StockAvailable, result: NoticeResult
    ) -> None:
        async with gate:
            try:
                await self._client.get_workflow_handle(workflow_id).signal(SignalName.STOCK_AVAILABLE, signal)
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    result.closed += 1
                    return
                result.failed += 1
                log.warning("could not signal a backordered order", workflow_id=workflow_id, error=str(err))
                return
            except Exception as err:  # one order's failure must not stop the others
                result.failed += 1
                log.warning("could not signal a backordered order", workflow_id=workflow_id, error=repr(err))
                return
            result.signalled += 1


def _first(items: Iterable[str], limit: int) -> list[str]:
    """Distinct items in the order given, at most ``limit``."""
    unique = list(dict.fromkeys(items))
    return unique[:limit]


BACKORDER_NOTIFIER_ATTR = "backorder_notifier"


def notifier_of(request: Request, temporal: TemporalDep) -> BackorderNotifier:
    """The process's notifier, kept on the app's state so background notices outlive the request.

    Built on first use; the app's lifespan drains it at shutdown. A test may set ``app.state.backorder_notifier``
    first to stand in its own (a lister the time-skipping test server can answer).
    """
    state = request.app.state
    notifier: BackorderNotifier | None = getattr(state, BACKORDER_NOTIFIER_ATTR, None)
    if notifier is None:
        notifier = BackorderNotifier(temporal)
        setattr(state, BACKORDER_NOTIFIER_ATTR, notifier)
    return notifier


BackorderNotifierDep = Annotated[BackorderNotifier, Depends(notifier_of)]
