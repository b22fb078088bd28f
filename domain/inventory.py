"""Available to promise, the one rule every stock decision uses.

ATP = on hand - active reservations - safety stock - units protected for tiers ranked above the customer's.
Protection nests (as fare classes do): a customer of rank r may not take a stock row below the units
protected for ranks 1..r-1, while the highest tier sees everything but safety stock. A customer with no
tier ranks below every tier. ATP is never negative: a row can be oversubscribed by a later protection or
a downward snapshot, and then it simply has nothing to promise.
"""

from __future__ import annotations

from collections.abc import Mapping

# The rank of a customer without a tier: below every real tier, so every protection applies.
UNTIERED_RANK = 1_000_000


def protected_above(protections: Mapping[int, int], rank: int) -> int:
    """Units protected for tiers strictly above ``rank`` (a smaller rank is a higher tier)."""
    return sum(quantity for tier_rank, quantity in protections.items() if tier_rank < rank)


def available_to_promise(
    *, on_hand: int, reserved: int, safety_stock: int, protections: Mapping[int, int], rank: int = UNTIERED_RANK
) -> int:
    """ATP of one stock row for a customer of ``rank``; ``protections`` maps tier rank to protected units."""
    return max(0, on_hand - reserved - safety_stock - protected_above(protections, rank))
