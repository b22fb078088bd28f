"""One async engine per process, built from the settings' URL."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def sqlalchemy_url(url: str) -> str:
    """Accept the URLs people paste (``postgres://``, ``postgresql://``) and pin the psycopg 3 driver."""
    parsed = make_url(url.replace("postgres://", "postgresql://", 1) if url.startswith("postgres://") else url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"only PostgreSQL is supported, got {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
