"""A database of a test's own, for state that is global to a database.

Most tests share the session's database, each with ids unique to it. The sourcing policy cannot be shared that
way: there is one active policy per database, and every plan made in it follows that policy. Tests that create
and activate policies run in a database of their own, so other tests keep planning under the built-in one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from infra.db.engine import create_engine, session_factory
from infra.db.migrate import upgrade
from infra.db.uow import UowFactory, uow_factory
from infra.services import drop_database, ensure_database, with_database


@contextmanager
def private_database(server_url: str, purpose: str = "private") -> Iterator[str]:
    """A fresh database migrated to head on the session's server; dropped afterwards."""
    name = f"orch_{purpose}_{uuid.uuid4().hex[:8]}"
    ensure_database(server_url, name)
    url = with_database(server_url, name)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(server_url, name)


@asynccontextmanager
async def unit_of_work_factory(database_url: str) -> AsyncIterator[UowFactory]:
    engine = create_engine(database_url, pool_size=10)
    try:
        yield uow_factory(session_factory(engine))
    finally:
        await engine.dispose()
