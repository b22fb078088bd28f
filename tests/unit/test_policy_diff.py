"""The policy diff: paths by key, by index, by [id]; whole values where parts would not read well; reorders."""

from __future__ import annotations

from typing import Any

import pytest

from domain.policy import BUILTIN_POLICY, PolicyDocument
from domain.policy_diff import Change, ChangeKind, diff_documents, diff_json

ADDED, REMOVED, CHANGED, REORDERED = ChangeKind.ADDED, ChangeKind.REMOVED, ChangeKind.CHANGED, ChangeKind.REORDERED


def profile(profile_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": profile_id, "strategies": [{"id": "s", "ranking": [{"step": "distance"}]}], **extra}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param({"a": 1}, {"a": 1}, [], id="equal"),
        pytest.param({"a": 1}, {"a": 2}, [Change("a", CHANGED, 1, 2)], id="leaf"),
        pytest.param({"a": 1}, {"a": True}, [Change("a", CHANGED, 1, True)], id="leaf-type"),
        pytest.param({"a": {"b": "x"}}, {"a": {"b": "y"}}, [Change("a.b", CHANGED, "x", "y")], id="nested"),
        pytest.param({}, {"a": 1}, [Change("a", ADDED, None, 1)], id="key-added"),
        pytest.param({"a": 1, "b": 2}, {"b": 2}, [Change("a", REMOVED, 1, None)], id="key-removed"),
        pytest.param({"a": None}, {"a": {"x": 1}}, [Change("a", CHANGED, None, {"x": 1})], id="null-to-object"),
        pytest.param(
            {"kinds": ["store", "dc"]},
            {"kinds": ["dc"]},
            [Change("kinds", CHANGED, ["store", "dc"], ["dc"])],
            id="plain-list-whole",
        ),
        pytest.param(
            {"tiers": [["A", "B"], ["C"]]},
            {"tiers": [["B", "A"], ["C"]]},
            [Change("tiers", CHANGED, [["A", "B"], ["C"]], [["B", "A"], ["C"]])],
            id="list-of-lists-whole",
        ),
        pytest.param(
            {"ranking": [{"step": "distance", "bucket_km": None}, {"step": "total_cost", "tolerance_minor": 0}]},
            {"ranking": [{"step": "distance", "bucket_km": 50.0}, {"step": "total_cost", "tolerance_minor": 0}]},
            [Change("ranking.0.bucket_km", CHANGED, None, 50.0)],
            id="objects-by-index",
        ),
        pytest.param(
            {"ranking": [{"step": "distance", "bucket_km": None}]},
            {"ranking": [{"step": "total_cost", "tolerance_minor": 0}]},
            [
                Change(
                    "ranking.0",
                    CHANGED,
                    {"step": "distance", "bucket_km": None},
                    {"step": "total_cost", "tolerance_minor": 0},
                )
            ],
            id="other-kind-whole",
        ),
        pytest.param(
            {"ranking": [{"step": "distance"}]},
            {"ranking": [{"step": "distance"}, {"step": "fewest_shipments"}]},
            [Change("ranking.1", ADDED, None, {"step": "fewest_shipments"})],
            id="index-added",
        ),
        pytest.param(
            {"ranking": [{"step": "distance"}, {"step": "fewest_shipments"}]},
            {"ranking": [{"step": "distance"}]},
            [Change("ranking.1", REMOVED, {"step": "fewest_shipments"}, None)],
            id="index-removed",
        ),
    ],
)
def test_diff_json(before: Any, after: Any, expected: list[Change]) -> None:
    assert diff_json(before, after) == expected


@pytest.mark.parametrize(
    ("before_ids", "after_ids", "expected"),
    [
        pytest.param(["a", "b", "c"], ["a", "b", "c"], [], id="same"),
        pytest.param(
            ["a", "b", "c"],
            ["b", "a", "c"],
            [Change("profiles", REORDERED, ["a", "b", "c"], ["b", "a", "c"])],
            id="swap",
        ),
        pytest.param(
            ["a", "c"], ["b", "a", "c"], [Change("profiles[b]", ADDED, None, profile("b"))], id="insert-not-reorder"
        ),
        pytest.param(
            ["a", "b", "c"], ["a", "c"], [Change("profiles[b]", REMOVED, profile("b"), None)], id="remove-not-reorder"
        ),
        pytest.param(
            ["a", "b", "c"],
            ["c", "a", "d"],
            [
                Change("profiles", REORDERED, ["a", "b", "c"], ["c", "a", "d"]),
                Change("profiles[b]", REMOVED, profile("b"), None),
                Change("profiles[d]", ADDED, None, profile("d")),
            ],
            id="reorder-remove-add",
        ),
    ],
)
def test_id_keyed_lists(before_ids: list[str], after_ids: list[str], expected: list[Change]) -> None:
    before = {"profiles": [profile(i) for i in before_ids]}
    after = {"profiles": [profile(i) for i in after_ids]}
    assert diff_json(before, after) == expected


def test_id_keyed_items_are_compared_inside_under_their_id() -> None:
    before = {"profiles": [profile("a"), profile("b")]}
    moved = profile("b")
    moved["strategies"][0]["ranking"][0] = {"step": "distance", "bucket_km": 10.0}
    after = {"profiles": [moved, profile("a", description="x")]}
    assert diff_json(before, after) == [
        Change("profiles", REORDERED, ["a", "b"], ["b", "a"]),
        Change("profiles[b].strategies[s].ranking.0.bucket_km", ADDED, None, 10.0),
        Change("profiles[a].description", ADDED, None, "x"),
    ]


def test_duplicate_ids_fall_back_to_indexes() -> None:
    before = [{"id": "a", "v": 1}, {"id": "a", "v": 2}]
    after = [{"id": "a", "v": 1}, {"id": "a", "v": 3}]
    assert diff_json(before, after) == [Change("1.v", CHANGED, 2, 3)]


def test_documents_compare_with_defaults_filled_in() -> None:
    explicit = BUILTIN_POLICY.model_dump(mode="json")
    explicit["profiles"][0]["strategies"][0]["split"]["mode"] = "allowed"  # the default, written out
    assert diff_documents(BUILTIN_POLICY, PolicyDocument.model_validate(explicit)) == []


def test_documents_diff_reads_as_paths_into_the_policy() -> None:
    changed = BUILTIN_POLICY.model_dump(mode="json")
    changed["name"] = "Cheaper"
    changed["profiles"].insert(0, profile("vip", when={"tiers": ["vip"]}))
    changed["profiles"][1]["strategies"][0]["split"] = {"mode": "never", "max_shipments": 1}
    after = PolicyDocument.model_validate(changed)
    changes = diff_documents(BUILTIN_POLICY, after)
    assert [(c.path, c.change) for c in changes] == [
        ("name", CHANGED),
        ("profiles[vip]", ADDED),
        ("profiles[default].strategies[nearest].split.mode", CHANGED),
        ("profiles[default].strategies[nearest].split.max_shipments", CHANGED),
    ]
    assert changes[2].before == "allowed"
    assert changes[2].after == "never"
    assert changes[1].after["id"] == "vip"
