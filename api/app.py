"""The FastAPI application factory. One Temporal client and one engine per process, made in the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from temporalio.client import Client

from api.auth import authorize
from api.backorders import BACKORDER_NOTIFIER_ATTR
from api.deps import AppState
from api.errors import document_errors, install_error_handlers
from api.middleware import Authenticate, BodyLimit, Journal
from api.routes import checkout, health, inventory, inventory_feeds, network, orders, rules, subscriptions, webhooks
from infra.db.engine import create_engine, session_factory
from infra.db.uow import uow_factory
from infra.settings import Settings, get_settings
from infra.temporal import connect, prepare_namespace

_AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "no API key, or an unknown or revoked one (`Authorization: Bearer <key_id>.<secret>`)"},
    403: {"description": "the key's role may not call this route: the message names the roles that may"},
    413: {"description": "a request body over the size limit"},
}


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """Build the app. Tests pass their own settings and Temporal client; production reads the environment."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.require_database_url(), pool_size=settings.db_pool_size)
        client = temporal or await connect(settings)
        if temporal is None:
            await prepare_namespace(client)
        app.state.orchestrator = AppState(settings=settings, temporal=client, uow=uow_factory(session_factory(engine)))
        try:
            yield
        finally:
            # Stock-arrival signals still in flight are sent before the process goes (each is bounded in time).
            notifier = getattr(app.state, BACKORDER_NOTIFIER_ATTR, None)
            if notifier is not None:
                await notifier.drain()
            await engine.dispose()

    app = FastAPI(
        title="Order Orchestrator",
        version="0.1.0",
        summary="Decides how each order is fulfilled, and makes it happen, durably.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    document_errors(app)
    # Added last, run first: the key is checked before a body is capped, read or journaled.
    app.add_middleware(Journal)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Authenticate)
    # One gate on every router: api.auth.ROUTE_ROLES says who may call each route (health and the
    # HMAC-signed webhook are public there).
    gate: dict[str, Any] = {"dependencies": [Depends(authorize)], "responses": _AUTH_RESPONSES}
    app.include_router(checkout.router, **gate)
    app.include_router(orders.router, **gate)
    app.include_router(webhooks.router, **gate)
    app.include_router(inventory.router, **gate)
    app.include_router(inventory_feeds.router, **gate)
    app.include_router(network.router, **gate)
    app.include_router(rules.router, **gate)
    app.include_router(subscriptions.router, **gate)
    app.include_router(health.router, dependencies=[Depends(authorize)])
    return app
