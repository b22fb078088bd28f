"""The sourcing policy language (``domain.policy``): what a valid document is, where an invalid one is refused,
how selectors explain a mismatch, and the built-in policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from domain.network import CustomerSegment, NodeKind
from domain.orders import Channel, ServiceLevel
from domain.policy import (
    BUILTIN_POLICY,
    BUILTIN_VERSION,
    Distance,
    Engine,
    FewestShipments,
    Method,
    NodePriority,
    OrderFacts,
    PolicyDocument,
    Profile,
    Selector,
    SplitMode,
    SplitPolicy,
)

ROOT = Path(__file__).resolve().parents[2]
STRATEGY: dict[str, Any] = {"id": "s", "ranking": [{"step": "distance"}]}


def doc(*profiles: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A document with these profiles (default: one catch-all), as an admin would write it."""
    return {"name": "Test", "profiles": list(profiles) or [{"id": "default", "strategies": [STRATEGY]}], **extra}


def profile(profile_id: str = "default", *strategies: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": profile_id, "strategies": list(strategies) or [STRATEGY], **extra}


def strategy(strategy_id: str = "s", **extra: Any) -> dict[str, Any]:
    return {"id": strategy_id, "ranking": [{"step": "distance"}], **extra}


# --- documents that parse ---------------------------------------------------------------------------------


def _rules_md_examples() -> dict[str, str]:
    """The YAML of each worked example in docs/rules.md, by heading."""
    text = (ROOT / "docs" / "rules.md").read_text()
    examples = {}
    for section in re.split(r"^## ", text, flags=re.MULTILINE):
        if section.startswith("Worked example"):
            heading = section.splitlines()[0]
            block = re.search(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
            assert block is not None, f"no YAML in {heading!r}"
            examples[heading] = block.group(1)
    return examples


def test_rules_md_has_two_worked_examples():
    assert len(_rules_md_examples()) == 2


@pytest.mark.parametrize(
    ("source", "profiles", "first_strategies"),
    [
        pytest.param(
            (ROOT / "infra" / "policies" / "demo.yaml").read_text(),
            ["b2b-home-branch", "default"],
            ["branch-or-transfer", "nearest-split"],
            id="demo-yaml",
        ),
        *(
            pytest.param(source, profiles, strategies, id=f"rules-md-example-{i}")
            for i, (source, profiles, strategies) in enumerate(
                zip(
                    _rules_md_examples().values(),
                    [["b2b-home-branch", "default"], ["peak-optimizer", "default"]],
                    [["branch-or-transfer", "nearest-split"], ["optimal"]],
                    strict=True,
                ),
                start=1,
            )
        ),
    ],
)
def test_shipped_documents_parse(source, profiles, first_strategies):
    document = PolicyDocument.model_validate(yaml.safe_load(source))
    assert [p.id for p in document.profiles] == profiles
    assert [s.id for s in document.profiles[0].strategies] == first_strategies
    assert document.profiles[-1].is_catch_all
    # Valid documents survive a JSON round trip unchanged (what the store keeps).
    assert PolicyDocument.model_validate_json(document.model_dump_json()) == document


def test_worked_example_2_expands_the_yaml_anchor_and_uses_the_optimizer():
    source = list(_rules_md_examples().values())[1]
    document = PolicyDocument.model_validate(yaml.safe_load(source))
    peak, default = document.profiles
    optimal = peak.strategies[0]
    assert (optimal.engine, optimal.time_budget_ms) == (Engine.OPTIMIZER, 300)
    assert peak.effective_from == datetime(2026, 11, 27, tzinfo=UTC)
    # The anchor is plain YAML: both strategies hold the same filters.
    assert default.strategies[0].filters == optimal.filters
    assert optimal.filters.safety_for(NodeKind.STORE) == 2
    assert optimal.filters.safety_for(NodeKind.DC) == 0
    assert default.strategies[1].split.mode is SplitMode.SHIP_AVAILABLE


# --- documents that are refused, and where ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "loc", "type_", "message_part"),
    [
        pytest.param(
            doc(profile("web-only", when={"channels": ["web"]})),
            (),
            "value_error",
            "the last profile ('web-only') must match every order",
            id="last-profile-has-when",
        ),
        pytest.param(
            doc(profile("default"), profile("later", effective_from="2026-01-01T00:00:00Z")),
            (),
            "value_error",
            "the last profile ('later') must match every order",
            id="last-profile-has-window",
        ),
        pytest.param(
            doc(profile("same"), profile("same")), (), "value_error", "duplicate profile id 'same'", id="dup-profile"
        ),
        pytest.param(
            doc(shipping_methods=[{"id": "m"}, {"id": "m"}]),
            (),
            "value_error",
            "duplicate shipping method id 'm'",
            id="dup-shipping-method",
        ),
        pytest.param(
            doc(profile("default", strategy("a"), strategy("a"))),
            ("profiles", 0),
            "value_error",
            "duplicate strategy id 'a'",
            id="dup-strategy",
        ),
        pytest.param(
            doc(
                profile(
                    "default", strategy(ranking=[{"step": "distance"}, {"step": "total_cost"}, {"step": "distance"}])
                )
            ),
            ("profiles", 0, "strategies", 0),
            "value_error",
            "duplicate ranking step 'distance'",
            id="dup-ranking-step",
        ),
        pytest.param(
            doc(profile("default", strategy(ranking=[{"step": "distance"}, {"step": "nearest"}]))),
            ("profiles", 0, "strategies", 0, "ranking", 1),
            "union_tag_invalid",
            "'nearest'",
            id="unknown-step",
        ),
        pytest.param(
            doc(profile("default", strategy(ranking=[]))),
            ("profiles", 0, "strategies", 0, "ranking"),
            "too_short",
            "at least 1",
            id="no-ranking-step",
        ),
        pytest.param(
            doc(profile("default", strategy(ranking=[{"step": "node_priority", "tiers": [["N1"], ["N2", "N1"]]}]))),
            ("profiles", 0, "strategies", 0, "ranking", 0, "node_priority"),
            "value_error",
            "duplicate node in priority tiers 'N1'",
            id="node-twice-in-tiers",
        ),
        pytest.param(
            doc(profile("default", strategy(split={"mode": "never", "max_shipments": 3}))),
            ("profiles", 0, "strategies", 0, "split"),
            "value_error",
            "split mode 'never' means one shipment",
            id="split-never-max-3",
        ),
        pytest.param(
            doc(
                profile(
                    "window",
                    effective_from="2026-12-01T00:00:00Z",
                    effective_until="2026-11-01T00:00:00Z",
                ),
                profile("default"),
            ),
            ("profiles", 0),
            "value_error",
            "effective_from must come before effective_until",
            id="window-reversed",
        ),
        pytest.param(
            doc(
                profile("window", effective_from="2026-12-01T00:00:00Z", effective_until="2026-12-01T00:00:00Z"),
                profile("default"),
            ),
            ("profiles", 0),
            "value_error",
            "effective_from must come before effective_until",
            id="window-empty",
        ),
        pytest.param(
            doc(profile("v", when={"min_value_minor": 500, "max_value_minor": 100}), profile("default")),
            ("profiles", 0, "when"),
            "value_error",
            "min_value_minor (500) is above max_value_minor (100)",
            id="value-range-inverted",
        ),
        pytest.param(
            doc(profile("w", when={"min_weight_g": 10, "max_weight_g": 9}), profile("default")),
            ("profiles", 0, "when"),
            "value_error",
            "min_weight_g (10) is above max_weight_g (9)",
            id="weight-range-inverted",
        ),
        pytest.param(
            doc(
                profile(
                    "p",
                    when={"placed_from": "2026-02-01T00:00:00Z", "placed_until": "2026-01-01T00:00:00Z"},
                ),
                profile("default"),
            ),
            ("profiles", 0, "when"),
            "value_error",
            "placed_from must come before placed_until",
            id="placed-range-inverted",
        ),
        pytest.param(
            doc(profile("p", effective_from="2026-02-01T00:00:00"), profile("default")),
            ("profiles", 0, "effective_from"),
            "timezone_aware",
            "timezone",
            id="naive-effective-from",
        ),
        pytest.param(doc(priority=1), ("priority",), "extra_forbidden", "Extra inputs", id="extra-key-root"),
        pytest.param(
            doc(profile("default", strategy(ranking=[{"step": "distance", "bucket": 50}]))),
            ("profiles", 0, "strategies", 0, "ranking", 0, "distance", "bucket"),
            "extra_forbidden",
            "Extra inputs",
            id="extra-key-in-step",
        ),
        pytest.param(
            doc(profile("default", strategy(filters={"paused": True}))),
            ("profiles", 0, "strategies", 0, "filters", "paused"),
            "extra_forbidden",
            "Extra inputs",
            id="extra-key-in-filters",
        ),
        pytest.param(
            doc(profile("default", when={"channel": ["web"]})),
            ("profiles", 0, "when", "channel"),
            "extra_forbidden",
            "Extra inputs",
            id="extra-key-in-selector",
        ),
        pytest.param(
            doc(profile("Default")),
            ("profiles", 0, "id"),
            "string_pattern_mismatch",
            "pattern",
            id="id-not-lowercase",
        ),
        pytest.param(
            doc(profile("default", strategy(filters={"node_kinds": ["warehouse"]}))),
            ("profiles", 0, "strategies", 0, "filters", "node_kinds", 0),
            "enum",
            "'dc'",
            id="unknown-node-kind",
        ),
        pytest.param(
            doc(profile("default", strategy(filters={"min_atp": 0}))),
            ("profiles", 0, "strategies", 0, "filters", "min_atp"),
            "greater_than_equal",
            "1",
            id="min-atp-zero",
        ),
        pytest.param(
            doc(profile("default", *[strategy(f"s{i}") for i in range(11)])),
            ("profiles", 0, "strategies"),
            "too_long",
            "at most 10",
            id="eleven-strategies",
        ),
        pytest.param(doc(schema_version=2), ("schema_version",), "literal_error", "1", id="schema-version"),
        pytest.param({"profiles": doc()["profiles"]}, ("name",), "missing", "required", id="name-missing"),
        pytest.param(doc(name="  "), ("name",), "string_too_short", "at least 1", id="name-blank"),
    ],
)
def test_invalid_documents_are_refused_with_their_path(document, loc, type_, message_part):
    with pytest.raises(ValidationError) as err:
        PolicyDocument.model_validate(document)
    errors = err.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, type_)], errors
    assert message_part in errors[0]["msg"]


def test_split_never_with_max_shipments_one_is_accepted():
    split = SplitPolicy.model_validate({"mode": "never", "max_shipments": 1})
    assert split.limit == 1
    assert SplitPolicy(mode=SplitMode.NEVER).limit == 1
    assert SplitPolicy(mode=SplitMode.ALLOWED).limit == 3
    assert SplitPolicy(mode=SplitMode.SHIP_AVAILABLE, max_shipments=5).limit == 5


def test_node_ids_lists_every_node_named_in_priority_tiers():
    document = PolicyDocument.model_validate(
        doc(
            profile(
                "b2b",
                strategy("a", ranking=[{"step": "node_priority", "tiers": [["BR-1", "BR-2"], ["DC-1"]]}]),
                when={"segments": ["b2b"]},
            ),
            profile("default", strategy("b", ranking=[{"step": "node_priority", "tiers": [["DC-2"], ["BR-1"]]}])),
        )
    )
    assert document.node_ids() == {"BR-1", "BR-2", "DC-1", "DC-2"}


# --- selectors ----------------------------------------------------------------------------------------------

FACTS = OrderFacts(
    channel=Channel.WEB,
    segment=CustomerSegment.B2C,
    tier=None,
    service_level=ServiceLevel.STANDARD,
    method=Method.DELIVERY,
    country="US",
    region="TX",
    value_minor=5_000,
    weight_g=1_200,
    skus=frozenset({"A", "B"}),
    hazmat=False,
    oversize=True,
    placed_at=datetime(2026, 3, 4, 15, 0, tzinfo=UTC),
)


@pytest.mark.parametrize(
    ("selector", "facts_change", "reason"),
    [
        pytest.param({}, {}, None, id="empty-matches-all"),
        pytest.param({"channels": ["web", "csr"]}, {}, None, id="channel-listed"),
        pytest.param({"channels": ["b2b_portal"]}, {}, "channel web not in the list", id="channel"),
        pytest.param({"segments": ["b2b"]}, {}, "segment b2c not in the list", id="segment"),
        pytest.param({"segments": ["b2b"]}, {"segment": CustomerSegment.B2B}, None, id="segment-b2b"),
        pytest.param({"tiers": ["vip"]}, {}, "tier none not in the list", id="no-tier-never-matches"),
        pytest.param({"tiers": ["vip"]}, {"tier": "gold"}, "tier gold not in the list", id="other-tier"),
        pytest.param({"tiers": ["vip", "gold"]}, {"tier": "gold"}, None, id="tier-listed"),
        pytest.param(
            {"service_levels": ["expedited"]}, {}, "service level standard not in the list", id="service-level"
        ),
        pytest.param({"methods": ["pickup"]}, {}, "method delivery not in the list", id="method"),
        pytest.param({"methods": ["pickup"]}, {"method": Method.PICKUP}, None, id="method-pickup"),
        pytest.param({"countries": ["CA"]}, {}, "country US not in the list", id="country"),
        pytest.param({"regions": ["CA", "NY"]}, {}, "region TX not in the list", id="region"),
        pytest.param({"skus_any": ["Z", "Y"]}, {}, "none of the listed SKUs ordered", id="skus-none"),
        pytest.param({"skus_any": ["Z", "B"]}, {}, None, id="skus-any"),
        pytest.param({"hazmat": True}, {}, "hazmat is False", id="hazmat-true"),
        pytest.param({"hazmat": False}, {}, None, id="hazmat-false-matches"),
        pytest.param({"oversize": False}, {}, "oversize is True", id="oversize-false"),
        pytest.param({"min_value_minor": 5_000}, {}, None, id="min-value-inclusive"),
        pytest.param({"min_value_minor": 5_001}, {}, "value 5000 below 5001", id="min-value"),
        pytest.param({"max_value_minor": 5_000}, {}, None, id="max-value-inclusive"),
        pytest.param({"max_value_minor": 4_999}, {}, "value 5000 above 4999", id="max-value"),
        pytest.param({"min_weight_g": 1_201}, {}, "weight 1200 g below 1201 g", id="min-weight"),
        pytest.param({"max_weight_g": 1_199}, {}, "weight 1200 g above 1199 g", id="max-weight"),
        pytest.param({"min_weight_g": 1_200, "max_weight_g": 1_200}, {}, None, id="weight-inclusive"),
        pytest.param({"placed_from": "2026-03-04T15:00:00Z"}, {}, None, id="placed-from-inclusive"),
        pytest.param(
            {"placed_from": "2026-03-04T15:00:01Z"}, {}, "placed before 2026-03-04 15:00:01+00:00", id="placed-from"
        ),
        pytest.param(
            {"placed_until": "2026-03-04T15:00:00Z"},
            {},
            "placed at or after 2026-03-04 15:00:00+00:00",
            id="placed-until-exclusive",
        ),
        pytest.param(
            {"channels": ["csr"], "countries": ["CA"]}, {}, "channel web not in the list", id="first-failure-named"
        ),
        pytest.param({"channels": ["web"], "countries": ["CA"]}, {}, "country US not in the list", id="all-must-hold"),
    ],
)
def test_selector_mismatch_names_the_first_failing_condition(selector, facts_change, reason):
    facts = FACTS.model_copy(update=facts_change)
    assert Selector.model_validate(selector).mismatch(facts) == reason


@pytest.mark.parametrize(
    ("window", "now", "reason"),
    [
        pytest.param({}, "2026-03-04T00:00:00Z", None, id="no-window"),
        pytest.param({"effective_from": "2026-03-04T00:00:00Z"}, "2026-03-04T00:00:00Z", None, id="from-is-inclusive"),
        pytest.param(
            {"effective_from": "2026-03-04T00:00:00Z"},
            "2026-03-03T23:59:59Z",
            "not effective until 2026-03-04T00:00:00+00:00",
            id="before-from",
        ),
        pytest.param(
            {"effective_until": "2026-03-04T00:00:00Z"},
            "2026-03-04T00:00:00Z",
            "expired at 2026-03-04T00:00:00+00:00",
            id="until-is-exclusive",
        ),
        pytest.param({"effective_until": "2026-03-04T00:00:00Z"}, "2026-03-03T23:59:59Z", None, id="before-until"),
    ],
)
def test_profile_effective_window(window, now, reason):
    p = Profile.model_validate(profile("p", **window))
    assert p.inactive_reason(datetime.fromisoformat(now)) == reason
    assert p.is_catch_all is (not window)


# --- the built-in policy and the schema -------------------------------------------------------------------


def test_builtin_policy_shape():
    assert BUILTIN_VERSION == "builtin"
    (default,) = BUILTIN_POLICY.profiles
    assert default.is_catch_all
    (nearest,) = default.strategies
    assert nearest.engine is Engine.RULES
    assert nearest.ranking == [
        FewestShipments(step="fewest_shipments"),
        Distance(step="distance"),
        NodePriority(step="node_priority"),
    ]
    assert (nearest.split.mode, nearest.split.limit) == (SplitMode.ALLOWED, 5)
    assert nearest.transfer is None
    assert nearest.filters.allow_paused is False
    assert nearest.filters.require_capacity is True
    assert BUILTIN_POLICY.shipping_methods == []
    # It is a valid document like any other.
    assert PolicyDocument.model_validate(BUILTIN_POLICY.model_dump()) == BUILTIN_POLICY


def test_json_schema_is_produced():
    schema = PolicyDocument.model_json_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "profiles"}
    ranking = schema["$defs"]["Strategy"]["properties"]["ranking"]
    assert ranking["minItems"] == 1
    assert set(ranking["items"]["discriminator"]["mapping"]) == {
        "home_branch",
        "node_priority",
        "distance",
        "delivery_speed",
        "total_cost",
        "fewest_shipments",
        "inventory_balance",
        "capacity_headroom",
    }
    assert schema["$defs"]["SplitMode"]["enum"] == ["never", "allowed", "ship_available"]
    assert schema["$defs"]["Engine"]["enum"] == ["rules", "optimizer"]
