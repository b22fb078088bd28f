"""Checks of a policy document beyond what makes it valid: where it names nodes, and what in it can never apply.

``PolicyDocument`` refuses a document that cannot be run. These functions look at a valid one and say where
each node id sits (so the API can report the unknown ones by path) and what is legal but surely a mistake
(warnings: a profile below a catch-all never applies, a window already over). Paths are dotted, from the
document's root, with list indexes as numbers: ``profiles.0.strategies.1.ranking.2.tiers.0.1``, the form
pydantic's own errors take.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.policy import NodePriority, PolicyDocument, Selector


@dataclass(frozen=True)
class NodeReference:
    path: str
    node_id: str


@dataclass(frozen=True)
class PolicyWarning:
    path: str
    message: str


def node_references(document: PolicyDocument) -> list[NodeReference]:
    """Every place the document names a node, in document order (a node named twice appears twice)."""
    return [
        NodeReference(f"profiles.{p}.strategies.{s}.ranking.{r}.tiers.{t}.{n}", node_id)
        for p, profile in enumerate(document.profiles)
        for s, strategy in enumerate(profile.strategies)
        for r, step in enumerate(strategy.ranking)
        if isinstance(step, NodePriority)
        for t, tier in enumerate(step.tiers)
        for n, node_id in enumerate(tier)
    ]


def _over(selector: Selector, now: datetime) -> datetime | None:
    return selector.placed_until if selector.placed_until is not None and selector.placed_until <= now else None


def warnings(document: PolicyDocument, now: datetime) -> list[PolicyWarning]:
    """What in a valid document can never take effect, as of ``now``."""
    found: list[PolicyWarning] = []
    catch_all: int | None = None
    for index, profile in enumerate(document.profiles):
        path = f"profiles.{index}"
        if catch_all is not None:
            above = document.profiles[catch_all].id
            found.append(
                PolicyWarning(path, f"profile {profile.id!r} never applies: {above!r} above it matches every order")
            )
            continue
        if profile.is_catch_all:
            catch_all = index
        if profile.effective_until is not None and profile.effective_until <= now:
            found.append(
                PolicyWarning(
                    f"{path}.effective_until",
                    f"profile {profile.id!r} expired at {profile.effective_until.isoformat()}: it no longer applies",
                )
            )
        if (until := _over(profile.when, now)) is not None:
            found.append(
                PolicyWarning(
                    f"{path}.when.placed_until",
                    f"profile {profile.id!r} only matches orders placed before {until.isoformat()}",
                )
            )
    method_catch_all: int | None = None
    for index, rule in enumerate(document.shipping_methods):
        path = f"shipping_methods.{index}"
        if method_catch_all is not None:
            above = document.shipping_methods[method_catch_all].id
            found.append(
                PolicyWarning(
                    path, f"shipping method {rule.id!r} never applies: {above!r} above it matches every order"
                )
            )
            continue
        if rule.when.is_catch_all:
            method_catch_all = index
        if (until := _over(rule.when, now)) is not None:
            found.append(
                PolicyWarning(
                    f"{path}.when.placed_until",
                    f"shipping method {rule.id!r} only matches orders placed before {until.isoformat()}",
                )
            )
    return found
