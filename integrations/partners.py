"""The partner systems the worker talks to, as one value the composition root builds and hands out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import httpx

from integrations.fraud import FraudScreen
from integrations.notify import Notifier
from integrations.payments import PaymentGateway
from integrations.wms import WmsClient


@dataclass(frozen=True)
class Partners:
    wms: WmsClient
    payments: PaymentGateway
    fraud: FraudScreen
    notifier: Notifier

    @classmethod
    def over(cls, http: httpx.AsyncClient) -> Partners:
        """Every partner behind one client (one base URL): the simulator, in dev and in tests."""
        return cls(wms=WmsClient(http), payments=PaymentGateway(http), fraud=FraudScreen(http), notifier=Notifier(http))


@asynccontextmanager
async def partner_clients(
    *, wms_url: str, payments_url: str, fraud_url: str, notify_url: str, timeout_s: float
) -> AsyncIterator[Partners]:
    """One HTTP client per distinct base URL (partners at the same address share one), closed on exit; a node's
    own fulfilment endpoint gets its client when a release or cancel first goes there."""
    async with AsyncExitStack() as stack:
        clients: dict[str, httpx.AsyncClient] = {}

        async def client(url: str) -> httpx.AsyncClient:
            if url not in clients:
                clients[url] = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=timeout_s))
            return clients[url]

        def endpoint_client(url: str) -> httpx.AsyncClient:
            # A node's own endpoint: made on first use (nodes are declared at run time), closed on exit.
            if url not in clients:
                clients[url] = httpx.AsyncClient(base_url=url, timeout=timeout_s)
                stack.push_async_callback(clients[url].aclose)
            return clients[url]

        yield Partners(
            wms=WmsClient(await client(wms_url), endpoints=endpoint_client),
            payments=PaymentGateway(await client(payments_url)),
            fraud=FraudScreen(await client(fraud_url)),
            notifier=Notifier(await client(notify_url)),
        )
