"""The reservation ledger on real PostgreSQL: all-or-nothing plans, tier-aware ATP, the held → committed →
consumed / released lifecycle, expiry, and idempotency by business key.

Every test builds its own network (unique ids), so it shares the session's database with the others. Expiry
is global (a sweep releases every due hold in the database), so tests that count what a sweep released
first drain whatever is already due at their ``now``.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.inventory import InventoryActivities
from activities.sourcing import SourcingActivities
from domain.errors import ErrorType, OutOfStock, ReservationReleased
from domain.sourcing import Allocation
from infra.db.atp import atp_expression
from infra.db.repositories import InventoryRepository
from infra.db.tables import (
    AllocationTier,
    Customer,
    InventoryJournal,
    ReservationRequest,
    Stock,
    StockProtection,
)
from infra.db.uow import UowFactory
from tests.support import (
    AUSTIN,
    DALLAS,
    NEWARK,
    NodeSpec,
    SeededNetwork,
    build_network,
    make_order,
    states_of,
    stock_row,
)
from workflows.contracts import (
    CommitStockInput,
    ExpireReservationsInput,
    PlanOrderInput,
    ReserveStockInput,
    SettleStockInput,
)

pytestmark = pytest.mark.db

NODES = [NodeSpec("AUSTIN", AUSTIN), NodeSpec("DALLAS", DALLAS), NodeSpec("NEWARK", NEWARK)]
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)


# --- helpers (the concurrency and state-machine tests use them too) -------------------------------------


def new_key(net: SeededNetwork) -> str:
    return f"T{net.prefix}-{uuid.uuid4().hex[:8]}:reserve:plan-1"


def alloc(net: SeededNetwork, line_id: str, node: str, sku: str, quantity: int) -> Allocation:
    return Allocation(line_id=line_id, node_id=net.node(node), sku=net.sku(sku), quantity=quantity)


async def claimed(uow: UowFactory, key: str) -> bool:
    async with uow() as u:
        return await u.session.get(ReservationRequest, key) is not None


async def set_stock(uow: UowFactory, node_id: str, sku: str, **values: int) -> None:
    async with uow() as u:
        await u.session.execute(update(Stock).filter_by(node_id=node_id, sku=sku).values(**values))
        await u.commit()


async def add_tiers(uow: UowFactory, count: int) -> list[str]:
    """``count`` new allocation tiers, highest first. Ranks are unique across the database, so they are
    taken above every rank already there (and above 10,000, clear of any small fixed ranks a seed uses)."""
    prefix = uuid.uuid4().hex[:6]
    async with uow() as u:
        top = await u.session.scalar(select(func.max(AllocationTier.rank)))
        base = max(top or 0, 10_000)
        tiers = [f"t{prefix}-{i}" for i in range(1, count + 1)]
        await u.session.execute(
            insert(AllocationTier), [{"tier": t, "rank": base + i} for i, t in enumerate(tiers, start=1)]
        )
        await u.commit()
    return tiers


async def add_customer(uow: UowFactory, tier: str | None) -> str:
    customer_id = f"C-{uuid.uuid4().hex[:10]}"
    async with uow() as u:
        await u.session.execute(insert(Customer).values(customer_id=customer_id, name="Test", tier=tier))
        await u.commit()
    return customer_id


async def protect(uow: UowFactory, node_id: str, sku: str, tier: str, quantity: int) -> None:
    async with uow() as u:
        await u.session.execute(insert(StockProtection).values(node_id=node_id, sku=sku, tier=tier, quantity=quantity))
        await u.commit()


async def reserve(
    uow: UowFactory,
    key: str,
    allocations: list[Allocation],
    *,
    customer_id: str | None = None,
    expires_at: datetime | None = None,
) -> tuple[int, bool]:
    async with uow() as u:
        outcome = await u.inventory.reserve(
            key, key.split(":")[0], allocations, customer_id=customer_id, expires_at=expires_at
        )
        await u.commit()
    return outcome.reserved_units, outcome.replayed


async def refused(
    uow: UowFactory, key: str, allocations: list[Allocation], *, customer_id: str | None = None
) -> OutOfStock:
    with pytest.raises(OutOfStock) as err:
        await reserve(uow, key, allocations, customer_id=customer_id)
    return err.value


async def drain_due(uow: UowFactory, now: datetime) -> None:
    """Release whatever any earlier test left due at ``now``, so a count of this test's releases is exact."""
    while True:
        async with uow() as u:
            released = await u.inventory.expire_held(now)
            await u.commit()
        if released == 0:
            return


async def expire(uow: UowFactory, now: datetime, *, limit: int = 500) -> int:
    async with uow() as u:
        released = await u.inventory.expire_held(now, limit=limit)
        await u.commit()
    return released


# --- all or nothing, with a shortfall per row -----------------------------------------------------------


async def test_a_multi_node_plan_is_held_whole(uow_factory: UowFactory) -> None:
    net = await build_network(
        uow_factory, NODES, {("AUSTIN", "DRILL"): 5, ("DALLAS", "LADDER"): 2, ("NEWARK", "DRILL"): 4}
    )
    key = new_key(net)
    plan = [
        alloc(net, "1", "AUSTIN", "DRILL", 5),
        alloc(net, "2", "DALLAS", "LADDER", 2),
        alloc(net, "3", "NEWARK", "DRILL", 1),
    ]
    assert await reserve(uow_factory, key, plan) == (8, False)
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (5, 5)
    assert await stock_row(uow_factory, net.node("DALLAS"), net.sku("LADDER")) == (2, 2)
    assert await stock_row(uow_factory, net.node("NEWARK"), net.sku("DRILL")) == (4, 1)
    assert await states_of(uow_factory, key) == ["held", "held", "held"]


@dataclass(frozen=True)
class RefusalCase:
    name: str
    stock: dict[tuple[str, str], int]
    # (line, node, sku, quantity)
    plan: list[tuple[str, str, str, int]]
    # sku@node -> (line ids, requested, available)
    shortfall: dict[tuple[str, str], tuple[list[str], int, int]]


REFUSALS = [
    RefusalCase(
        "one node short refuses the whole plan",
        {("AUSTIN", "DRILL"): 5, ("DALLAS", "LADDER"): 1},
        [("1", "AUSTIN", "DRILL", 5), ("2", "DALLAS", "LADDER", 3)],
        {("DALLAS", "LADDER"): (["2"], 3, 1)},
    ),
    RefusalCase(
        "every short row is reported",
        {("AUSTIN", "DRILL"): 1, ("DALLAS", "LADDER"): 0, ("NEWARK", "DRILL"): 9},
        [("1", "AUSTIN", "DRILL", 2), ("2", "DALLAS", "LADDER", 1), ("3", "NEWARK", "DRILL", 9)],
        {("AUSTIN", "DRILL"): (["1"], 2, 1), ("DALLAS", "LADDER"): (["2"], 1, 0)},
    ),
    RefusalCase(
        "two lines on one row are summed before checking",
        {("AUSTIN", "DRILL"): 4},
        [("1", "AUSTIN", "DRILL", 3), ("2", "AUSTIN", "DRILL", 2)],
        {("AUSTIN", "DRILL"): (["1", "2"], 5, 4)},
    ),
    RefusalCase(
        "a node that does not stock the SKU has nothing to promise",
        {("AUSTIN", "DRILL"): 4, ("DALLAS", "LADDER"): 4},
        [("1", "AUSTIN", "DRILL", 1), ("2", "AUSTIN", "LADDER", 1)],
        {("AUSTIN", "LADDER"): (["2"], 1, 0)},
    ),
]


@pytest.mark.parametrize("case", REFUSALS, ids=[c.name for c in REFUSALS])
async def test_a_plan_that_does_not_fit_holds_nothing_and_reports_each_short_row(
    uow_factory: UowFactory, case: RefusalCase
) -> None:
    net = await build_network(uow_factory, NODES, case.stock)
    key = new_key(net)
    plan = [alloc(net, *line) for line in case.plan]
    err = await refused(uow_factory, key, plan)

    expected = {
        f"{net.sku(sku)}@{net.node(node)}": {
            "node_id": net.node(node),
            "sku": net.sku(sku),
            "line_ids": lines,
            "requested": requested,
            "available": available,
            "short": requested - available,
        }
        for (node, sku), (lines, requested, available) in case.shortfall.items()
    }
    assert err.details == expected
    assert err.type is ErrorType.OUT_OF_STOCK
    for detail in expected.values():
        assert f"{detail['sku']}@{detail['node_id']} short by {detail['short']}" in err.message
    # Nothing held anywhere, and the key is free again for a later attempt.
    for node, sku in case.stock:
        assert (await stock_row(uow_factory, net.node(node), net.sku(sku)))[1] == 0
    assert await states_of(uow_factory, key) == []
    assert not await claimed(uow_factory, key)


async def test_a_refused_key_can_succeed_later_when_stock_arrives(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 1})
    key = new_key(net)
    plan = [alloc(net, "1", "AUSTIN", "DRILL", 3)]
    await refused(uow_factory, key, plan)
    await set_stock(uow_factory, net.node("AUSTIN"), net.sku("DRILL"), on_hand=3)
    assert await reserve(uow_factory, key, plan) == (3, False)


async def test_a_node_id_that_does_not_exist_is_a_shortfall_not_a_crash(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 5})
    key = new_key(net)
    ghost = Allocation(line_id="1", node_id=f"T{net.prefix}-NOWHERE", sku=net.sku("DRILL"), quantity=1)
    err = await refused(uow_factory, key, [ghost])
    assert err.details == {
        f"{net.sku('DRILL')}@T{net.prefix}-NOWHERE": {
            "node_id": f"T{net.prefix}-NOWHERE",
            "sku": net.sku("DRILL"),
            "line_ids": ["1"],
            "requested": 1,
            "available": 0,
            "short": 1,
        }
    }


# --- idempotency by business key ------------------------------------------------------------------------


async def test_a_repeated_key_returns_the_first_outcome_even_after_stock_moved(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 5, ("DALLAS", "DRILL"): 5})
    key = new_key(net)
    plan = [alloc(net, "1", "AUSTIN", "DRILL", 3), alloc(net, "2", "DALLAS", "DRILL", 1)]
    assert await reserve(uow_factory, key, plan) == (4, False)

    # The rest of Austin's stock goes elsewhere: a fresh reserve of this plan would now be refused.
    await reserve(uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", 2)])
    assert await reserve(uow_factory, key, plan) == (4, True)
    # A key is one decision: asking it for other allocations is a bug upstream, refused loudly, holding nothing.
    with pytest.raises(RuntimeError, match="was made for"):
        await reserve(uow_factory, key, [alloc(net, "1", "DALLAS", "DRILL", 4)])

    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (5, 5)
    assert await stock_row(uow_factory, net.node("DALLAS"), net.sku("DRILL")) == (5, 1)
    assert await states_of(uow_factory, key) == ["held", "held"]


@pytest.mark.parametrize(
    ("settle_with", "replay"),
    [
        pytest.param("release", "refused", id="released by compensation: the key cannot hold again"),
        pytest.param("expire", "refused", id="lapsed and swept: the key cannot hold again"),
        pytest.param("consume", "replayed", id="shipped: the first outcome still stands"),
    ],
)
async def test_repeating_a_key_after_its_hold_ended(uow_factory: UowFactory, settle_with: str, replay: str) -> None:
    await drain_due(uow_factory, NOW)
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 5})
    key = new_key(net)
    plan = [alloc(net, "1", "AUSTIN", "DRILL", 2)]
    await reserve(uow_factory, key, plan, expires_at=NOW if settle_with == "expire" else None)
    async with uow_factory() as u:
        if settle_with == "expire":
            assert await u.inventory.expire_held(NOW) == 1
        else:
            await u.inventory.settle(key, consume=settle_with == "consume", node_id=None, actor="test")
        await u.commit()
    before = await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL"))

    if replay == "refused":
        with pytest.raises(ApplicationError) as err:
            await InventoryActivities(uow_factory).reserve_stock(
                ReserveStockInput(reservation_key=key, order_id="o", allocations=plan)
            )
        assert err.value.type == ErrorType.RESERVATION_RELEASED
    else:
        assert await reserve(uow_factory, key, plan) == (2, True)
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == before


# --- available to promise: safety stock and allocation tiers --------------------------------------------


@dataclass(frozen=True)
class AtpCase:
    name: str
    # who asks: an index into the three tiers (0 is the highest), "untiered", "unknown" or None
    customer: int | str | None
    atp: int


# One row of 10 units with 1 unit of safety stock; tier 1 protects 3, tier 2 protects 2, tier 3 protects 1.
# Protection nests: a customer may not take what is protected for the tiers above theirs.
TIER_CASES = [
    AtpCase("tier 1 takes everything but safety stock", 0, 9),
    AtpCase("tier 2 may not take tier 1's units", 1, 6),
    AtpCase("tier 3 may not take tiers 1 and 2's units", 2, 4),
    AtpCase("a customer without a tier ranks below every tier", "untiered", 3),
    AtpCase("an unknown customer ranks like an untiered one", "unknown", 3),
    AtpCase("no customer at all ranks like an untiered one", None, 3),
]


@pytest.mark.parametrize("case", TIER_CASES, ids=[c.name for c in TIER_CASES])
async def test_reserve_and_snapshot_agree_on_a_tiered_atp(uow_factory: UowFactory, case: AtpCase) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10})
    node, sku = net.node("AUSTIN"), net.sku("DRILL")
    await set_stock(uow_factory, node, sku, safety_stock=1)
    tiers = await add_tiers(uow_factory, 3)
    for tier, quantity in zip(tiers, (3, 2, 1), strict=True):
        await protect(uow_factory, node, sku, tier, quantity)
    if isinstance(case.customer, int):
        customer_id: str | None = await add_customer(uow_factory, tiers[case.customer])
    elif case.customer == "untiered":
        customer_id = await add_customer(uow_factory, None)
    elif case.customer == "unknown":
        customer_id = f"C-nobody-{uuid.uuid4().hex[:6]}"
    else:
        customer_id = None

    async with uow_factory() as u:
        snapshot = await u.inventory.snapshot_for([sku], customer_id=customer_id)
    assert snapshot.atp_of(node, sku) == case.atp

    err = await refused(
        uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", case.atp + 1)], customer_id=customer_id
    )
    assert err.details == {
        f"{sku}@{node}": {
            "node_id": node, "sku": sku, "line_ids": ["1"],
            "requested": case.atp + 1, "available": case.atp, "short": 1,
        }
    }  # fmt: skip
    key = new_key(net)
    assert await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", case.atp)], customer_id=customer_id) == (
        case.atp,
        False,
    )
    assert await stock_row(uow_factory, node, sku) == (10, case.atp)


async def test_a_vip_gets_the_protected_units_a_lower_tier_was_refused(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 4})
    node, sku = net.node("AUSTIN"), net.sku("DRILL")
    vip_tier, standard_tier = await add_tiers(uow_factory, 2)
    await protect(uow_factory, node, sku, vip_tier, 3)
    vip, standard = await add_customer(uow_factory, vip_tier), await add_customer(uow_factory, standard_tier)

    await reserve(uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", 1)], customer_id=standard)
    await refused(uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", 1)], customer_id=standard)
    assert await reserve(uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", 3)], customer_id=vip) == (
        3,
        False,
    )
    async with uow_factory() as u:
        atp = await u.session.scalar(select(atp_expression()).where(Stock.node_id == node, Stock.sku == sku))
    assert atp == 0


async def test_planning_leaves_out_units_protected_from_the_customer(uow_factory: UowFactory) -> None:
    """The nearest node's units are protected for a VIP tier: a VIP is planned there, anyone else is not."""
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 2, ("NEWARK", "DRILL"): 2})
    vip_tier = (await add_tiers(uow_factory, 1))[0]
    await protect(uow_factory, net.node("AUSTIN"), net.sku("DRILL"), vip_tier, 2)
    vip = await add_customer(uow_factory, vip_tier)
    sourcing = SourcingActivities(uow_factory)
    order = make_order(net, {"DRILL": 2})

    plans = {}
    for who, customer_id in (("vip", vip), ("anyone", order.customer_id)):
        # Two orders (a plan is recorded once per order and attempt), the same lines, different customers.
        tiered = order.model_copy(update={"customer_id": customer_id, "order_id": f"{order.order_id}-{who}"})
        plans[who] = await sourcing.plan_order(PlanOrderInput(order=tiered, destination=AUSTIN, attempt=1))
    assert plans["vip"].node_ids == [net.node("AUSTIN")]
    assert plans["anyone"].node_ids == [net.node("NEWARK")]


async def test_the_reserve_activity_judges_stock_for_the_customer_it_is_given(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 2})
    vip_tier = (await add_tiers(uow_factory, 1))[0]
    await protect(uow_factory, net.node("AUSTIN"), net.sku("DRILL"), vip_tier, 2)
    vip = await add_customer(uow_factory, vip_tier)
    inventory = InventoryActivities(uow_factory)
    plan = [alloc(net, "1", "AUSTIN", "DRILL", 2)]

    with pytest.raises(ApplicationError) as err:
        await inventory.reserve_stock(ReserveStockInput(reservation_key=new_key(net), order_id="o", allocations=plan))
    assert err.value.type == ErrorType.OUT_OF_STOCK
    assert err.value.non_retryable
    result = await inventory.reserve_stock(
        ReserveStockInput(reservation_key=new_key(net), order_id="o", allocations=plan, customer_id=vip)
    )
    assert result.reserved_units == 2


# --- held → committed → consumed / released, and expiry ---------------------------------------------------


Action = Callable[[InventoryRepository, str, SeededNetwork], Awaitable[int]]


async def _commit(repo: InventoryRepository, key: str, net: SeededNetwork) -> int:
    return await repo.commit(key)


async def _consume(repo: InventoryRepository, key: str, net: SeededNetwork) -> int:
    return await repo.settle(key, consume=True, node_id=net.node("AUSTIN"), actor="test")


async def _release(repo: InventoryRepository, key: str, net: SeededNetwork) -> int:
    return await repo.settle(key, consume=False, node_id=None, actor="test")


async def _expire(repo: InventoryRepository, key: str, net: SeededNetwork) -> int:
    return await repo.expire_held(NOW + timedelta(minutes=30))


@dataclass(frozen=True)
class TransitionCase:
    name: str
    committed_first: bool
    action: Action
    first: int
    state: str
    # (on_hand, reserved) after, from (10, 4)
    stock: tuple[int, int]


TRANSITIONS = [
    TransitionCase("commit a hold", False, _commit, 1, "committed", (10, 4)),
    TransitionCase("consume a hold", False, _consume, 1, "consumed", (6, 0)),
    TransitionCase("consume a commitment", True, _consume, 1, "consumed", (6, 0)),
    TransitionCase("release a hold", False, _release, 1, "released", (10, 0)),
    TransitionCase("release a commitment", True, _release, 1, "released", (10, 0)),
    TransitionCase("a hold past its expiry is released", False, _expire, 1, "released", (10, 0)),
    TransitionCase("a commitment never expires", True, _expire, 0, "committed", (10, 4)),
]


@pytest.mark.parametrize("case", TRANSITIONS, ids=[c.name for c in TRANSITIONS])
async def test_each_transition_happens_once(uow_factory: UowFactory, case: TransitionCase) -> None:
    await drain_due(uow_factory, NOW + timedelta(minutes=30))
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10})
    key = new_key(net)
    await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", 4)], expires_at=NOW + timedelta(minutes=15))
    if case.committed_first:
        async with uow_factory() as u:
            assert await u.inventory.commit(key) == 1
            await u.commit()

    outcomes = []
    for _ in range(2):
        async with uow_factory() as u:
            outcomes.append(await case.action(u.inventory, key, net))
            await u.commit()
    assert outcomes == [case.first, 0]
    assert await states_of(uow_factory, key) == [case.state]
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == case.stock
    async with uow_factory() as u:
        line = (await u.inventory.reservations_for(key.split(":")[0]))[0]
    # Committing clears the expiry: a commitment is kept until it is settled, however long that takes.
    assert (line.expires_at is None) is (case.committed_first or case.state == "committed")


async def test_commit_after_the_hold_lapsed_is_refused(uow_factory: UowFactory) -> None:
    await drain_due(uow_factory, NOW)
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10})
    key = new_key(net)
    await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", 4)], expires_at=NOW - timedelta(seconds=1))
    assert await expire(uow_factory, NOW) == 1
    async with uow_factory() as u:
        with pytest.raises(ReservationReleased, match="expired or was released"):
            await u.inventory.commit(key)
    async with uow_factory() as u:
        with pytest.raises(LookupError):
            await u.inventory.commit(f"{key}-never-reserved")

    # Through the activity, the lapse is a business failure the workflow can branch on.
    with pytest.raises(ApplicationError) as err:
        await InventoryActivities(uow_factory).commit_stock(CommitStockInput(reservation_key=key))
    assert err.value.type == ErrorType.RESERVATION_RELEASED
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (10, 0)


async def test_a_hold_due_but_not_yet_swept_can_still_be_committed(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10})
    key = new_key(net)
    await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", 4)], expires_at=NOW - timedelta(days=1))
    result = await InventoryActivities(uow_factory).commit_stock(CommitStockInput(reservation_key=key))
    assert result.lines_committed == 1
    await expire(uow_factory, NOW)
    assert await states_of(uow_factory, key) == ["committed"]
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (10, 4)


async def test_expiry_releases_whole_plans_in_batches_and_leaves_the_rest(uow_factory: UowFactory) -> None:
    await drain_due(uow_factory, NOW)
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10, ("DALLAS", "LADDER"): 20})
    plan = [alloc(net, "1", "AUSTIN", "DRILL", 1), alloc(net, "2", "DALLAS", "LADDER", 2)]
    due = [new_key(net) for _ in range(3)]
    for key in due:
        await reserve(uow_factory, key, plan, expires_at=NOW - timedelta(minutes=1))
    exactly_now, later, forever = new_key(net), new_key(net), new_key(net)
    await reserve(uow_factory, exactly_now, plan, expires_at=NOW)
    await reserve(uow_factory, later, plan, expires_at=NOW + timedelta(seconds=1))
    await reserve(uow_factory, forever, plan)

    assert [await expire(uow_factory, NOW, limit=3) for _ in range(3)] == [3, 1, 0]
    for key in [*due, exactly_now]:
        assert await states_of(uow_factory, key) == ["released", "released"]
    for key in (later, forever):
        assert await states_of(uow_factory, key) == ["held", "held"]
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (10, 2)
    assert await stock_row(uow_factory, net.node("DALLAS"), net.sku("LADDER")) == (20, 4)


async def test_the_expire_activity_sweeps_in_bounded_batches_at_its_own_clock(uow_factory: UowFactory) -> None:
    await drain_due(uow_factory, NOW)
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10})
    keys = [new_key(net) for _ in range(3)]
    for key in keys:
        await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", 1)], expires_at=NOW)
    inventory = InventoryActivities(uow_factory, clock=lambda: NOW)
    sweep = ExpireReservationsInput(batch_size=1, max_batches=2)

    # In an activity context (it heartbeats per batch), as a worker would run it.
    env = ActivityEnvironment()
    first = await env.run(inventory.expire_reservations, sweep)
    assert (first.swept_at, first.reservations_released, first.batches, first.more_due) == (NOW, 2, 2, True)
    second = await env.run(inventory.expire_reservations, sweep)
    assert (second.reservations_released, second.batches, second.more_due) == (1, 2, False)
    assert await stock_row(uow_factory, net.node("AUSTIN"), net.sku("DRILL")) == (10, 0)


# --- consumption is journaled ----------------------------------------------------------------------------


async def test_consuming_one_node_of_a_split_plan_journals_that_node_only(uow_factory: UowFactory) -> None:
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 10, ("DALLAS", "LADDER"): 3})
    key = new_key(net)
    await reserve(uow_factory, key, [alloc(net, "1", "AUSTIN", "DRILL", 4), alloc(net, "2", "DALLAS", "LADDER", 1)])
    inventory = InventoryActivities(uow_factory)
    for _ in range(2):  # a retried consume changes nothing the second time
        await inventory.consume_stock(SettleStockInput(reservation_key=key, node_id=net.node("AUSTIN")))
    assert await states_of(uow_factory, key) == ["consumed", "held"]

    async with uow_factory() as u:
        journal = (
            await u.session.execute(
                select(
                    InventoryJournal.node_id,
                    InventoryJournal.sku,
                    InventoryJournal.kind,
                    InventoryJournal.source_ref,
                    InventoryJournal.on_hand_before,
                    InventoryJournal.on_hand_after,
                ).where(InventoryJournal.source_ref == key)
            )
        ).all()
    assert [tuple(row) for row in journal] == [(net.node("AUSTIN"), net.sku("DRILL"), "shipment", key, 10, 6)]

    # Releasing the rest frees Dallas without touching on_hand, and journals nothing.
    await inventory.release_stock(SettleStockInput(reservation_key=key))
    assert await states_of(uow_factory, key) == ["consumed", "released"]
    assert await stock_row(uow_factory, net.node("DALLAS"), net.sku("LADDER")) == (3, 0)
    async with uow_factory() as u:
        count = await u.session.scalar(
            select(func.count()).select_from(InventoryJournal).where(InventoryJournal.source_ref == key)
        )
    assert count == 1


# --- bad input is refused before any SQL ------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [0, -1])
def test_a_quantity_below_one_cannot_even_be_expressed(quantity: int) -> None:
    with pytest.raises(ValidationError, match="greater than 0"):
        Allocation(line_id="1", sku="S", node_id="N", quantity=quantity)
    with pytest.raises(ValidationError, match="greater than 0"):
        ReserveStockInput.model_validate(
            {
                "reservation_key": "k",
                "order_id": "o",
                "allocations": [{"line_id": "1", "sku": "S", "node_id": "N", "quantity": quantity}],
            }
        )


NAIVE = datetime(2026, 11, 20, 15, 0)  # the point of the case: no time zone
ONE = Allocation(line_id="1", sku="S", node_id="N", quantity=1)


@pytest.mark.parametrize(
    ("allocations", "expires_at", "message"),
    [
        pytest.param([], None, "at least one allocation", id="an empty plan"),
        pytest.param([ONE, ONE], None, "appears twice", id="a line twice at one node"),
        pytest.param([ONE], NAIVE, "timezone-aware", id="an expiry without a time zone"),
    ],
)
async def test_malformed_calls_are_refused_before_touching_the_database(
    uow_factory: UowFactory, allocations: list[Allocation], expires_at: datetime | None, message: str
) -> None:
    key = f"bad-{uuid.uuid4().hex[:8]}:reserve:plan-1"
    async with uow_factory() as u:
        with pytest.raises(ValueError, match=message):
            await u.inventory.reserve(key, "bad", allocations, expires_at=expires_at)
        # The session never began a transaction: no statement was sent.
        assert not u.session.in_transaction()
    assert not await claimed(uow_factory, key)


async def test_a_plan_is_decided_once_per_order_and_attempt(uow_factory: UowFactory) -> None:
    """A retried, replayed or reset workflow gets the recorded plan, even after stock moved: deciding again
    could pick another node and release the order to two warehouses."""
    net = await build_network(uow_factory, NODES, {("AUSTIN", "DRILL"): 5, ("NEWARK", "DRILL"): 5})
    sourcing = SourcingActivities(uow_factory)
    order = make_order(net, {"DRILL": 5})
    first = await sourcing.plan_order(PlanOrderInput(order=order, destination=AUSTIN, attempt=1))
    assert first.node_ids == [net.node("AUSTIN")]

    await reserve(uow_factory, new_key(net), [alloc(net, "1", "AUSTIN", "DRILL", 5)])  # Austin sells out
    again = await sourcing.plan_order(PlanOrderInput(order=order, destination=AUSTIN, attempt=1))
    assert again == first
    next_attempt = await sourcing.plan_order(PlanOrderInput(order=order, destination=AUSTIN, attempt=2))
    assert next_attempt.node_ids == [net.node("NEWARK")], "a new attempt decides afresh"
    async with uow_factory() as u:
        assert [p.plan_id for p in await u.plans.for_order(order.order_id)] == [first.plan_id, next_attempt.plan_id]
