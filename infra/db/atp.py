"""The SQL form of ``domain.inventory.available_to_promise``: one expression, used by every query that
decides with stock (planning snapshots, reservations, the inventory surface), so they cannot disagree."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Integer, func, select
from sqlalchemy.sql.functions import coalesce

from domain.inventory import UNTIERED_RANK
from infra.db.tables import AllocationTier, Customer, Stock, StockProtection


def protected_above_rank(rank: int | ColumnElement[int]) -> ColumnElement[int]:
    """Units of the current ``stock`` row protected for tiers ranked above ``rank`` (correlated subquery)."""
    protected = (
        select(coalesce(func.sum(StockProtection.quantity), 0))
        .join(AllocationTier, AllocationTier.tier == StockProtection.tier)
        .where(
            StockProtection.node_id == Stock.node_id,
            StockProtection.sku == Stock.sku,
            AllocationTier.rank < rank,
        )
        .correlate(Stock)
        .scalar_subquery()
    )
    return protected.cast(Integer)


def atp_expression(rank: int | ColumnElement[int] = UNTIERED_RANK) -> ColumnElement[int]:
    """ATP of the current ``stock`` row for a customer of ``rank``, never below zero."""
    raw = Stock.on_hand - Stock.reserved - Stock.safety_stock - protected_above_rank(rank)
    return func.greatest(raw, 0).cast(Integer)


def customer_rank(customer_id: str) -> ColumnElement[int]:
    """The allocation rank of a customer (UNTIERED_RANK when unknown or without a tier), as a scalar subquery."""
    rank = (
        select(AllocationTier.rank)
        .join(Customer, Customer.tier == AllocationTier.tier)
        .where(Customer.customer_id == customer_id)
        .scalar_subquery()
    )
    return coalesce(rank, UNTIERED_RANK)
