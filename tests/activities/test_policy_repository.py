"""Policy versions and their journal on real PostgreSQL: numbering, immutability, activation and rollback,
concurrent admins, and the plan requests the simulator replays.

The active policy is global to a database, so these tests use databases of their own (``tests.private_db``):
``shared`` for the module (tests there look only at what they create), ``fresh`` for tests about what happens
from an empty journal.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError

from domain.orders import Address, GeoPoint, Order, OrderLine
from domain.policy import BUILTIN_POLICY, BUILTIN_VERSION, PolicyDocument
from domain.sourcing import Explanation, Plan
from infra.db.policies import (
    AlreadyActive,
    NothingToRollBack,
    PolicyAction,
    PolicyStatus,
    UnknownPolicyVersion,
    checksum,
)
from infra.db.tables import OrderPlan
from infra.db.uow import UowFactory
from tests.private_db import private_database, unit_of_work_factory

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def shared_url(postgres_server_url: str) -> Iterator[str]:
    with private_database(postgres_server_url, "policy") as url:
        yield url


@pytest_asyncio.fixture(scope="module")
async def shared(shared_url: str) -> AsyncIterator[UowFactory]:
    async with unit_of_work_factory(shared_url) as factory:
        yield factory


@pytest_asyncio.fixture
async def fresh(postgres_server_url: str) -> AsyncIterator[UowFactory]:
    with private_database(postgres_server_url, "policy") as url:
        async with unit_of_work_factory(url) as factory:
            yield factory


def policy(name: str = "Test policy", **strategy: Any) -> PolicyDocument:
    data = BUILTIN_POLICY.model_dump(mode="json")
    data["name"] = name
    data["profiles"][0]["strategies"][0].update(strategy)
    return PolicyDocument.model_validate(data)


async def create(uow: UowFactory, document: PolicyDocument | None = None, **kwargs: Any) -> int:
    async with uow() as u:
        record = await u.policies.create(
            document or policy(), actor=kwargs.get("actor", "ana"), note="test", based_on=kwargs.get("based_on")
        )
        await u.commit()
    return record.version


async def activate(uow: UowFactory, version: int, actor: str = "ana") -> None:
    async with uow() as u:
        await u.policies.activate(version, actor=actor, reason="go")
        await u.commit()


# --- versions ------------------------------------------------------------------------------------------------


async def test_versions_are_numbered_in_order_and_read_back_as_stored(shared: UowFactory) -> None:
    document = policy("Numbered", split={"mode": "never"})
    first = await create(shared, document)
    second = await create(shared, policy("Another"), based_on=first)
    assert second == first + 1
    async with shared() as u:
        record = await u.policies.get(first)
        newer = await u.policies.get(second)
        page = await u.policies.list(before=second + 1, limit=2)
        missing = await u.policies.get(second + 1000)
    assert record is not None
    assert newer is not None
    assert record.document == document
    assert record.checksum == checksum(document)
    assert record.status is PolicyStatus.DRAFT
    assert record.created_by == "ana"
    assert record.label == f"v{first}"
    assert newer.based_on == first
    assert [r.version for r in page] == [second, first]
    assert missing is None


async def test_identical_documents_share_a_checksum(shared: UowFactory) -> None:
    document = policy("Twice")
    first = await create(shared, document)
    # The same policy with a default written out is the same document.
    spelled = document.model_dump(mode="json", exclude_defaults=True)
    second = await create(shared, PolicyDocument.model_validate(spelled))
    async with shared() as u:
        assert await u.policies.identical_to(checksum(document)) == [first, second]
        events = await u.policies.journal(version=second)
    assert [e.action for e in events] == [PolicyAction.CREATED]
    assert events[0].detail["identical_to"] == [first]


async def test_concurrent_creates_get_consecutive_numbers(shared: UowFactory) -> None:
    versions = await asyncio.gather(*(create(shared, policy(f"Concurrent {i}")) for i in range(8)))
    assert sorted(versions) == list(range(min(versions), min(versions) + 8))


async def test_based_on_must_exist_and_a_refused_create_leaves_nothing(shared: UowFactory) -> None:
    before = await create(shared)
    with pytest.raises(UnknownPolicyVersion):
        await create(shared, based_on=before + 10_000)
    assert await create(shared) == before + 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE policy_version SET note = 'edited' WHERE version = :v",
        "DELETE FROM policy_version WHERE version = :v",
        "UPDATE policy_event SET reason = 'edited' WHERE version = :v",
        "DELETE FROM policy_event WHERE version = :v",
        "TRUNCATE policy_event",
    ],
)
async def test_versions_and_journal_are_append_only(shared: UowFactory, statement: str) -> None:
    version = await create(shared)
    async with shared() as u:
        with pytest.raises(DBAPIError, match="append-only"):
            await u.session.execute(text(statement), {"v": version})
    async with shared() as u:
        record = await u.policies.get(version)
    assert record is not None
    assert record.note == "test"


# --- what is in force ----------------------------------------------------------------------------------------


async def test_activation_and_rollback_from_an_empty_journal(fresh: UowFactory) -> None:
    async with fresh() as u:
        active = await u.policies.active()
        with pytest.raises(NothingToRollBack, match="built-in policy is in force"):
            await u.policies.rollback(actor="ana", reason="undo")
    assert (active.version, active.version_label, active.document) == (None, BUILTIN_VERSION, BUILTIN_POLICY)

    v1, v2, v3 = [await create(fresh, policy(f"P{i}")) for i in range(3)]
    assert (v1, v2, v3) == (1, 2, 3)
    await activate(fresh, v1)
    with pytest.raises(AlreadyActive, match="v1 is already the active policy"):
        await activate(fresh, v1)
    with pytest.raises(UnknownPolicyVersion):
        await activate(fresh, 99)
    await activate(fresh, v2, actor="bo")

    async with fresh() as u:
        active = await u.policies.active()
        statuses = {r.version: r.status for r in await u.policies.list()}
    assert (active.version_label, active.activated_by, active.document.name) == ("v2", "bo", "P1")
    assert statuses == {1: PolicyStatus.RETIRED, 2: PolicyStatus.ACTIVE, 3: PolicyStatus.DRAFT}

    async with fresh() as u:
        event = await u.policies.rollback(actor="cy", reason="v2 splits too much")
        await u.commit()
    assert (event.version, event.action, event.detail) == (1, PolicyAction.ROLLED_BACK, {"from": "v2", "to": "v1"})
    async with fresh() as u:
        assert (await u.policies.active()).version == 1
        # v1 replaced the built-in policy, which is not a version: nothing further back.
        with pytest.raises(NothingToRollBack, match="v1 replaced the built-in policy"):
            await u.policies.rollback(actor="cy", reason="again")
        journal = await u.policies.journal()
        statuses = {r.version: r.status for r in await u.policies.list()}
    assert [(e.action, e.version, e.actor) for e in journal] == [
        (PolicyAction.ROLLED_BACK, 1, "cy"),
        (PolicyAction.ACTIVATED, 2, "bo"),
        (PolicyAction.ACTIVATED, 1, "ana"),
        (PolicyAction.CREATED, 3, "ana"),
        (PolicyAction.CREATED, 2, "ana"),
        (PolicyAction.CREATED, 1, "ana"),
    ]
    assert journal[1].detail == {"previous": "v1"}
    assert journal[2].detail == {"previous": BUILTIN_VERSION}
    assert statuses == {1: PolicyStatus.ACTIVE, 2: PolicyStatus.RETIRED, 3: PolicyStatus.DRAFT}


async def test_rollback_undoes_activations_one_at_a_time(shared: UowFactory) -> None:
    a, b, c = [await create(shared, policy(f"Stack {i}")) for i in range(3)]
    for version in (a, b, c, b):
        await activate(shared, version)

    async def rollback() -> int:
        async with shared() as u:
            event = await u.policies.rollback(actor="ana", reason="undo")
            await u.commit()
        return event.version

    assert [await rollback(), await rollback(), await rollback()] == [c, b, a]
    await activate(shared, c)
    assert await rollback() == a


async def test_concurrent_activations_leave_a_consistent_journal(shared: UowFactory) -> None:
    versions = [await create(shared, policy(f"Race {i}")) for i in range(6)]
    outcomes = await asyncio.gather(*(activate(shared, v, actor=f"admin-{v}") for v in versions))
    assert outcomes == [None] * len(versions)
    async with shared() as u:
        journal = await u.policies.journal(limit=500)
        active = await u.policies.active()
    # Oldest first, every event that changed what is in force (earlier tests' rollbacks included).
    changes = [e for e in reversed(journal) if e.action is not PolicyAction.CREATED]
    # Each activation names what the change committed just before it put in force: they ran one at a time.
    for before, event in itertools.pairwise(changes):
        if event.action is PolicyAction.ACTIVATED:
            assert event.detail["previous"] == f"v{before.version}", event
    assert sorted(e.version for e in changes[-len(versions) :]) == versions
    assert active.version == changes[-1].version


async def test_the_same_version_activated_twice_at_once_is_activated_once(shared: UowFactory) -> None:
    version = await create(shared, policy("Once"))
    outcomes = await asyncio.gather(*(activate(shared, version) for _ in range(4)), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["AlreadyActive"] * 3 + ["NoneType"]
    async with shared() as u:
        events = await u.policies.journal(version=version)
    assert [e.action for e in events] == [PolicyAction.ACTIVATED, PolicyAction.CREATED]


# --- plan requests -------------------------------------------------------------------------------------------


def order(order_id: str) -> Order:
    return Order(
        order_id=order_id,
        customer_id="C-1",
        ship_to=Address(name="A", line1="1 Main St", city="Austin", region="TX", postal_code="78701", country="US"),
        lines=[OrderLine(line_id="1", sku="SKU-1", quantity=2)],
        placed_at=datetime(2026, 11, 20, tzinfo=UTC),
    )


def request(order_id: str, attempt: int = 1) -> dict[str, Any]:
    return {
        "order": order(order_id).model_dump(mode="json"),
        "destination": {"lat": 30.27, "lon": -97.74},
        "attempt": attempt,
        "excluded_nodes": [],
    }


async def test_recent_plan_requests_are_the_latest_distinct_orders(fresh: UowFactory) -> None:
    start = datetime.now(UTC)
    rows = [
        ("A", 1, request("A"), 0),
        ("B", 1, None, 1),  # planned before requests were kept
        ("A", 2, request("A", 2), 2),
        ("C", 1, {"order": {"order_id": "C"}}, 3),  # no longer reads as an order
        ("D", 1, request("D"), 4),
    ]
    async with fresh() as u:
        await u.session.execute(
            insert(OrderPlan),
            [
                {
                    "plan_id": f"{o}:plan-{a}", "order_id": o, "attempt": a, "policy_version": "builtin",
                    "plan": {}, "request": r, "created_at": start + timedelta(minutes=m),
                }
                for o, a, r, m in rows
            ],
        )  # fmt: skip
        await u.commit()
    async with fresh() as u:
        recent = await u.policies.recent_plan_requests(10)
        one = await u.policies.recent_plan_requests(1)
    assert [(r.order.order_id, r.attempt) for r in recent] == [("D", 1), ("A", 2)]
    assert recent[1].order == order("A")
    assert recent[1].destination == GeoPoint(lat=30.27, lon=-97.74)
    assert [r.order.order_id for r in one] == ["D"]


async def test_recorded_plans_keep_their_request(fresh: UowFactory) -> None:
    plan = Plan(
        plan_id="R-1:plan-1",
        attempt=1,
        shipments=[],
        explanation=Explanation(rule="default/nearest", policy_version="builtin", candidates=[], decision="test"),
    )
    async with fresh() as u:
        await u.plans.record("R-1", plan, request=request("R-1"))
        await u.commit()
    async with fresh() as u:
        recent = await u.policies.recent_plan_requests(5)
    assert [(r.order.order_id, r.destination) for r in recent] == [("R-1", GeoPoint(lat=30.27, lon=-97.74))]
