"""The demo network seed: what it inserts, that a second run changes nothing, and the generator behind it."""

from __future__ import annotations

import re
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from infra.db.tables import InventoryJournal, Stock
from infra.seed import (
    DEMO_BITS,
    DEMO_BRANCH,
    DEMO_DRILL,
    DEMO_LADDER,
    DEMO_NODE_COUNT,
    DEMO_SKU_COUNT,
    SEED_ACTOR,
    Network,
    NodeRow,
    SeedSummary,
    generate_network,
    seed_demo_network,
)

pytestmark = pytest.mark.db

# The lower 48 states, which is all the seed places nodes in.
LAT_RANGE = (24.0, 50.0)
LON_RANGE = (-125.0, -66.0)


def demo_network() -> Network:
    return generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=7)


def demo_node_ids() -> list[str]:
    return [n["node_id"] for n in demo_network().nodes]


@pytest_asyncio.fixture(scope="module")
async def first_seed(uow_factory) -> SeedSummary:
    """The first call, made once for the module: tests below run in any order after it."""
    return await seed_demo_network(uow_factory, seed=7)


async def test_first_call_inserts_the_whole_demo_network(first_seed):
    network = demo_network()
    assert first_seed == SeedSummary(
        nodes=len(network.nodes), skus=len(network.skus), stock_rows=sum(1 for _ in network.stock)
    )
    assert first_seed.nodes == 45
    assert first_seed.skus == 2_000
    assert 20_000 < first_seed.stock_rows < 40_000
    assert "45 nodes" in str(first_seed)


async def test_demo_skus_are_stocked_where_the_walkthrough_needs_them(first_seed, uow_factory):
    dcs = {n["node_id"] for n in demo_network().nodes if n["kind"] == "dc"}
    async with uow_factory() as u:
        rows = (
            await u.session.execute(
                select(Stock.sku, Stock.node_id, Stock.on_hand).where(
                    Stock.sku.in_([DEMO_DRILL, DEMO_BITS, DEMO_LADDER]), Stock.node_id.in_(demo_node_ids())
                )
            )
        ).all()
    on_hand = {(sku, node): units for sku, node, units in rows}
    at = {sku: {node for s, node in on_hand if s == sku} for sku in (DEMO_DRILL, DEMO_BITS, DEMO_LADDER)}

    assert len(dcs) == 3
    assert at[DEMO_DRILL] == dcs | {DEMO_BRANCH}
    assert all(on_hand[(DEMO_DRILL, node)] >= 20 for node in at[DEMO_DRILL])
    assert dcs < at[DEMO_BITS]
    assert DEMO_BRANCH in at[DEMO_BITS]
    assert at[DEMO_LADDER] == dcs


async def test_second_call_inserts_nothing_and_keeps_changed_stock(first_seed, uow_factory):
    # A generated SKU's row, so the demo SKUs' levels stay as the test above expects them.
    seeded = next(row for row in demo_network().stock if row["sku"].startswith("SKU-"))
    node, sku = seeded["node_id"], seeded["sku"]
    async with uow_factory() as u:
        await u.session.execute(
            update(Stock).where(Stock.node_id == node, Stock.sku == sku).values(on_hand=seeded["on_hand"] + 7)
        )
        await u.commit()

    again = await seed_demo_network(uow_factory, seed=7)
    assert again == SeedSummary(nodes=0, skus=0, stock_rows=0)
    assert "nothing inserted" in str(again)

    async with uow_factory() as u:
        on_hand = await u.session.scalar(select(Stock.on_hand).where(Stock.node_id == node, Stock.sku == sku))
        journalled = await u.session.scalars(
            select(InventoryJournal.on_hand_after).where(
                InventoryJournal.node_id == node, InventoryJournal.sku == sku, InventoryJournal.actor == SEED_ACTOR
            )
        )
        journal = list(journalled)
    assert on_hand == seeded["on_hand"] + 7
    assert journal == [seeded["on_hand"]]  # the seed's own entry, written once


def test_generator_is_deterministic_per_seed():
    def sample(seed: int):
        network = generate_network(DEMO_NODE_COUNT, DEMO_SKU_COUNT, seed=seed)
        return network.nodes, network.skus, list(islice(network.stock, 5_000))

    assert sample(7) == sample(7)
    nodes7, skus7, stock7 = sample(7)
    nodes8, skus8, stock8 = sample(8)
    assert nodes7 == nodes8  # geography and ids are fixed by the data, so the README's ids hold for every seed
    assert skus7 != skus8
    assert stock7 != stock8


def test_large_network_is_described_lazily():
    network = generate_network(1_000, 100_000, seed=1)
    assert len(network.nodes) == 1_000
    assert len({n["node_id"] for n in network.nodes}) == 1_000
    assert len(network.skus) == 100_000
    assert not isinstance(network.stock, list)
    first = next(network.stock)
    assert first["node_id"] == network.nodes[0]["node_id"]


@pytest.mark.parametrize("node_count", [DEMO_NODE_COUNT, 1_000])
def test_nodes_have_real_timezones_readable_ids_and_us_coordinates(node_count):
    for node in generate_network(node_count, 10, seed=7).nodes:
        ZoneInfo(node["timezone"])
        assert re.fullmatch(r"[A-Z0-9-]+", node["node_id"]), node["node_id"]
        assert node["country"] == "US"
        assert LAT_RANGE[0] <= node["lat"] <= LAT_RANGE[1], node
        assert LON_RANGE[0] <= node["lon"] <= LON_RANGE[1], node


def test_demo_network_has_the_promised_shape():
    by_kind: dict[str, list[NodeRow]] = {}
    for node in demo_network().nodes:
        by_kind.setdefault(node["kind"], []).append(node)
    assert {kind: len(nodes) for kind, nodes in by_kind.items()} == {"dc": 3, "store": 40, "3pl": 1, "dropship": 1}
    assert len({n["region"] for n in by_kind["dc"]}) == 3
    assert {n["priority"] for n in by_kind["dc"]} == {10}
    assert {n["priority"] for n in by_kind["store"]} == {100}
    assert by_kind["3pl"][0]["priority"] == 50
    assert by_kind["dropship"][0]["priority"] == 200
    assert DEMO_BRANCH in {n["node_id"] for n in by_kind["store"]}
