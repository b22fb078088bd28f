"""Where a policy names nodes, and what in a valid policy can never apply."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain.policy import PolicyDocument
from domain.policy_checks import NodeReference, PolicyWarning, node_references, warnings

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
LAST = {"id": "default", "strategies": [{"id": "nearest", "ranking": [{"step": "distance"}]}]}


def document(*profiles: dict[str, Any], methods: list[dict[str, Any]] | None = None) -> PolicyDocument:
    return PolicyDocument.model_validate(
        {"name": "t", "profiles": [*profiles, LAST], "shipping_methods": methods or []}
    )


def test_node_references_say_where_each_node_sits() -> None:
    tiers = {"id": "tiers", "ranking": [{"step": "distance"}, {"step": "node_priority", "tiers": [["A"], ["B", "C"]]}]}
    doc = document({"id": "vip", "when": {"tiers": ["vip"]}, "strategies": [LAST["strategies"][0], tiers]})
    assert node_references(doc) == [
        NodeReference("profiles.0.strategies.1.ranking.1.tiers.0.0", "A"),
        NodeReference("profiles.0.strategies.1.ranking.1.tiers.1.0", "B"),
        NodeReference("profiles.0.strategies.1.ranking.1.tiers.1.1", "C"),
    ]
    assert {r.node_id for r in node_references(doc)} == doc.node_ids()


def test_a_plain_policy_has_nothing_to_warn_about() -> None:
    assert warnings(document({"id": "b2b", "when": {"segments": ["b2b"]}, "strategies": LAST["strategies"]}), NOW) == []


def test_profiles_below_a_catch_all_never_apply() -> None:
    doc = document({"id": "everyone", "strategies": LAST["strategies"]})
    assert warnings(doc, NOW) == [
        PolicyWarning("profiles.1", "profile 'default' never applies: 'everyone' above it matches every order")
    ]


def test_windows_already_over() -> None:
    doc = document(
        {"id": "bf", "effective_until": "2026-11-01T00:00:00Z", "strategies": LAST["strategies"]},
        {"id": "early", "when": {"placed_until": "2026-01-01T00:00:00Z"}, "strategies": LAST["strategies"]},
        {"id": "future", "effective_from": "2027-01-01T00:00:00Z", "strategies": LAST["strategies"]},
    )
    assert [w.path for w in warnings(doc, NOW)] == ["profiles.0.effective_until", "profiles.1.when.placed_until"]


def test_shipping_methods_below_a_catch_all_never_apply() -> None:
    doc = document(methods=[{"id": "all", "service_level": "expedited"}, {"id": "vip", "when": {"tiers": ["vip"]}}])
    assert warnings(doc, NOW) == [
        PolicyWarning("shipping_methods.1", "shipping method 'vip' never applies: 'all' above it matches every order")
    ]
