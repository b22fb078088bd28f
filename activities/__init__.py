"""Thin adapters between workflows and the world: one unit of work or one client call each."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.exceptions import ApplicationError

from domain.errors import BusinessError


@asynccontextmanager
async def business_failures() -> AsyncIterator[None]:
    """Turn a typed business reason into a non-retryable failure the workflow can branch on."""
    try:
        yield
    except BusinessError as err:
        raise ApplicationError(err.message, err.details, type=err.type, non_retryable=True) from err
