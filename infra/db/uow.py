"""The unit of work: one transaction, the repositories bound to it, and nothing committed by accident."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from infra.db.api_keys import ApiKeyRepository
from infra.db.feeds import FeedRepository
from infra.db.inventory_query import InventoryQuery
from infra.db.network import NetworkRepository
from infra.db.outbox import OutboxRepository
from infra.db.plans import PlanRepository
from infra.db.policies import PolicyRepository
from infra.db.repositories import CatalogRepository, EventRepository, InventoryRepository


class UnitOfWork:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def __aenter__(self) -> UnitOfWork:
        self.session = self._sessions()
        self.catalog = CatalogRepository(self.session)
        self.inventory = InventoryRepository(self.session)
        self.events = EventRepository(self.session)
        self.feeds = FeedRepository(self.session)
        self.inventory_query = InventoryQuery(self.session)
        self.network = NetworkRepository(self.session)
        self.plans = PlanRepository(self.session)
        self.policies = PolicyRepository(self.session)
        self.outbox = OutboxRepository(self.session)
        self.api_keys = ApiKeyRepository(self.session)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Closing rolls back whatever was not committed explicitly (a half-done change never lands) and,
        # unlike rollback(), leaves the rows already read usable after the unit of work ends.
        await self.session.close()

    async def commit(self) -> None:
        await self.session.commit()


UowFactory = Callable[[], UnitOfWork]


def uow_factory(sessions: async_sessionmaker[AsyncSession]) -> UowFactory:
    return lambda: UnitOfWork(sessions)
