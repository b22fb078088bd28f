"""A structural diff of two policy documents, for a human deciding whether to activate a version.

Both documents are compared as their JSON form (``model_dump(mode="json")``), defaults filled in, so leaving a
field out and writing its default are the same document. Each difference is one ``Change``:

- ``path`` names the place: object keys joined by dots, list items by index (``ranking.1``), or by id in
  brackets in lists whose items all carry an ``id`` (``profiles[b2b].strategies[cheapest].split.mode``), so a
  profile keeps its path when others are inserted, removed or moved around it;
- ``change`` is ``added`` / ``removed`` (``before`` / ``after`` hold the whole value that came or went),
  ``changed`` (a leaf value, or a whole value when comparing inside it would not read well: see below), or
  ``reordered``: the items of an id-keyed list kept their ids but not their order. Order is meaning here (the
  first matching profile wins; strategies are tried in order), so the list gets one change of its own whose
  ``before`` / ``after`` are the ids in each order. Inserting or removing an item alone is not a reordering.

Lists of plain values (``node_kinds``, node priority ``tiers``) are reported whole when they differ: ``[store,
dc] -> [dc]`` reads better than a change per index. Objects in an index-compared list that are different kinds
of thing (ranking steps with another ``step``) are reported whole too; the same kind is compared field by field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.policy import PolicyDocument

# Keys naming what kind of object a dict is: two objects of different kinds are not compared field by field.
KIND_KEYS = ("step",)


class ChangeKind(StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
    REORDERED = "reordered"


@dataclass(frozen=True)
class Change:
    path: str
    change: ChangeKind
    before: Any = None
    after: Any = None


def diff_documents(before: PolicyDocument, after: PolicyDocument) -> list[Change]:
    """What changes from ``before`` to ``after``, in document order; empty when they are the same policy."""
    return diff_json(before.model_dump(mode="json"), after.model_dump(mode="json"))


def diff_json(before: Any, after: Any) -> list[Change]:
    """The diff of two JSON values (dicts, lists, scalars), in the format described in the module docstring."""
    changes: list[Change] = []
    _walk("", before, after, changes)
    return changes


def _key(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _item(path: str, item_id: str) -> str:
    return f"{path}[{item_id}]"


def _kind(value: Mapping[str, Any]) -> tuple[object, ...]:
    return tuple(value.get(key) for key in KIND_KEYS)


def _same(before: Any, after: Any) -> bool:
    """Equal as JSON: ``1`` and ``true`` (equal in Python) are not."""
    if type(before) is not type(after):
        return False
    if isinstance(before, dict):
        return before.keys() == after.keys() and all(_same(v, after[k]) for k, v in before.items())
    if isinstance(before, list):
        return len(before) == len(after) and all(_same(a, b) for a, b in zip(before, after, strict=True))
    return bool(before == after)


def _walk(path: str, before: Any, after: Any, out: list[Change]) -> None:
    if _same(before, after):
        return
    if isinstance(before, dict) and isinstance(after, dict) and _kind(before) == _kind(after):
        _walk_object(path, before, after, out)
    elif isinstance(before, list) and isinstance(after, list):
        if _keyed(before) and _keyed(after):
            _walk_keyed(path, before, after, out)
        elif any(isinstance(v, dict) for v in (*before, *after)):
            _walk_indexed(path, before, after, out)
        else:
            out.append(Change(path, ChangeKind.CHANGED, before, after))
    else:
        out.append(Change(path, ChangeKind.CHANGED, before, after))


def _walk_object(path: str, before: Mapping[str, Any], after: Mapping[str, Any], out: list[Change]) -> None:
    for key in [*before, *(k for k in after if k not in before)]:
        where = _key(path, key)
        if key not in after:
            out.append(Change(where, ChangeKind.REMOVED, before[key], None))
        elif key not in before:
            out.append(Change(where, ChangeKind.ADDED, None, after[key]))
        else:
            _walk(where, before[key], after[key], out)


def _keyed(items: Sequence[Any]) -> bool:
    """A list of objects that each carry a distinct string ``id`` (an empty list fits any such list)."""
    ids = [item.get("id") if isinstance(item, dict) else None for item in items]
    return all(isinstance(i, str) for i in ids) and len(set(ids)) == len(ids)


def _walk_keyed(path: str, before: Sequence[Any], after: Sequence[Any], out: list[Change]) -> None:
    old = {item["id"]: item for item in before}
    new = {item["id"]: item for item in after}
    kept_before = [i for i in old if i in new]
    kept_after = [i for i in new if i in old]
    if kept_before != kept_after:
        out.append(Change(path, ChangeKind.REORDERED, list(old), list(new)))
    for item_id, item in old.items():
        if item_id not in new:
            out.append(Change(_item(path, item_id), ChangeKind.REMOVED, item, None))
    for item_id, item in new.items():
        if item_id in old:
            _walk(_item(path, item_id), old[item_id], item, out)
        else:
            out.append(Change(_item(path, item_id), ChangeKind.ADDED, None, item))


def _walk_indexed(path: str, before: Sequence[Any], after: Sequence[Any], out: list[Change]) -> None:
    for index in range(max(len(before), len(after))):
        where = _key(path, index)
        if index >= len(after):
            out.append(Change(where, ChangeKind.REMOVED, before[index], None))
        elif index >= len(before):
            out.append(Change(where, ChangeKind.ADDED, None, after[index]))
        else:
            _walk(where, before[index], after[index], out)
