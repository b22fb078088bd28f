"""Sourcing decisions on a 1,000-node network: the rule engine beside the exact optimizer, in one run.

Pure and in process, no database. ``infra.seed.generate_network`` describes the network (1,000 nodes on real US
geography: 20 DCs, 960 stores, 10 3PLs, 10 dropship vendors, with opening hours, cut-offs, pick/pack times,
daily capacity and federal holidays) and the first ``--skus`` SKUs of its catalogue. Each order gets the
snapshot the worker would read for it (``InventoryRepository.snapshot_for_order``): every node with a stock row
of an ordered SKU, ATP = on hand minus the row's safety stock (nothing reserved, no tiers), the ordered SKUs'
weights and handling flags, and the demo's carrier services (``infra.seed.DEMO_CARRIER_SERVICES``). Building
the snapshot is not timed; ``domain.sourcing.plan`` is.

The policy is the demo's ``default/cheapest`` strategy (``infra/policies/demo.yaml``) alone, without its
``ship_available`` fallback, so that both engines place an order under the same rules or not at all: ranking
``fewest_shipments > total_cost > delivery_speed > distance``, split allowed up to 3 shipments, hazmat only from
DCs, oversize only from DCs and 3PLs, stores keep 2 units of everything back, and the demo's handling costs.
The optimizer runs the same strategy with ``engine: optimizer`` and a budget (``--budget-ms``, 10 s by default)
far above what it needs, so that it proves the optimum; orders where it did not are counted, never compared.

1. **Decision time**: ``--timed`` orders of 10 lines each (after a warm-up), each planned by the rule engine
   and by the optimizer in turn, alternating which goes first, so a noisy moment on the machine lands on both.
   The optimizer's time is the whole ``plan()`` call (filters, building the model, HiGHS, building the plan);
   HiGHS's own run time is reported beside it.
2. **Quality**: ``--orders`` orders of 1 to 10 lines, each planned by both engines. The figure is the rule
   plan's cost over the proven optimum, for orders both engines placed with the optimum proven.

**One cost function for both: ``plan.cost_minor``.** Both plans are priced by the same code
(``_StrategyRun.part_cost``, summed over shipments by ``_build_plan``): carrier rate for the shipment's zone and
actual weight (``base + per_kg * kg``, rounded per parcel), handling per shipment and per unit. It is what the
business pays, what the ``total_cost`` step ranks by and what the rules simulator reports, and it needs
nothing from the engine's internals. The alternative, ``optimizer.evaluate``, would need the bench to rebuild
the engine's private ``AssignmentProblem`` (offers priced with the service chosen at zero weight), a second copy
of that code to drift. The optimizer minimises a linear version of the same cost (the per-kg part summed per
unit, unrounded), so its optimum under ``cost_minor`` is exact to within rounding: the script reports the
largest difference between the optimizer's objective and its plan's ``cost_minor``, and the orders where the
rule plan came out cheaper than the optimum (rounding only, if the two agree).

**Orders.** Lines of 1 to 4 units of any generated SKU (not the three demo SKUs, whose stock is placed by
rule) almost always fit in one DC, since each DC carries 90 % of the catalogue. So one line in four is a bulk
line instead: 50 to 400 units of a consumable (a SKU of at most 1 kg, about 6 % of the catalogue; bulk lines of
heavy items would make tonne-sized parcels that the linear carrier rates price absurdly). A DC holds 40 to 400
units of what it carries, so a few bulk lines make every single node short often enough that about half of the
10-line orders split, while very few cannot be placed at all (the dropship vendors hold 100 to 1,000 units).
Each order ships to one of the 960 store metro areas (a few km off its centre) and is planned at 10:00 Eastern
on Monday 23 November 2026, with the network's 2026 holidays loaded (Thanksgiving is that Thursday).

    python bench/sourcing.py [--orders 1000] [--timed 300] [--nodes 1000] [--skus 3000] [--seed 11]
                             [--budget-ms 10000]

Prints a table, then one line of JSON with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from domain import optimizer  # noqa: E402
from domain.errors import OutOfStock  # noqa: E402
from domain.network import (  # noqa: E402
    Capability,
    CarrierServiceSpec,
    NetworkSnapshot,
    NodeKind,
    NodeStatus,
    NodeView,
    OperatingHours,
    SkuView,
)
from domain.orders import Address, GeoPoint, Order, OrderLine  # noqa: E402
from domain.policy import Engine, PolicyDocument, Strategy  # noqa: E402
from domain.sourcing import Plan, plan  # noqa: E402
from infra.seed import DEMO_CARRIER_SERVICES, DEMO_SKUS, NodeRow, generate_network  # noqa: E402

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # Monday, 10:00 in New York
HOLIDAY_YEAR = 2026
TIMED_LINES = 10
QUALITY_LINES = (1, 10)
WARM_UP = 20
BULK_SHARE = 0.25  # of lines
BULK_UNITS = (50, 400)
BULK_MAX_WEIGHT_G = 1_000
SMALL_UNITS = (1, 4)
DESTINATION_JITTER_DEG = 0.1  # about 11 km

# The demo's default/cheapest strategy (infra/policies/demo.yaml), alone.
COSTS = {
    "handling_per_shipment_minor": {"dc": 150, "3pl": 250, "store": 400, "dropship": 300},
    "handling_per_unit_minor": {"store": 25},
}  # fmt: skip
FILTERS = {"handling": {"hazmat": ["dc"], "oversize": ["dc", "3pl"]}, "safety_stock_by_kind": {"store": 2}}
RANKING = [{"step": "fewest_shipments"}, {"step": "total_cost"}, {"step": "delivery_speed"}, {"step": "distance"}]
MAX_SHIPMENTS = 3
DEFAULT_BUDGET_MS: int = Strategy.model_fields["time_budget_ms"].default


def policy(engine: Engine, budget_ms: int) -> PolicyDocument:
    strategy = {
        "id": "cheapest",
        "engine": engine.value,
        "time_budget_ms": budget_ms,
        "filters": FILTERS,
        "ranking": RANKING,
        "split": {"mode": "allowed", "max_shipments": MAX_SHIPMENTS},
    }
    return PolicyDocument.model_validate(
        {"name": f"bench ({engine})", "costs": COSTS, "profiles": [{"id": "default", "strategies": [strategy]}]}
    )


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


# --- the network ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Network:
    nodes: dict[str, NodeView]
    kinds: Counter[str]
    atp: dict[str, dict[str, int]]  # sku -> node_id -> units, every stock row (zero ATP included, as the DB reads)
    skus: dict[str, SkuView]
    catalogue: list[str]  # SKUs orders are drawn from
    consumables: list[str]  # the light ones, for bulk lines
    destinations: list[NodeRow]  # stores: one per metro area
    services: list[CarrierServiceSpec]
    stock_rows: int


def node_view(row: NodeRow, holidays: frozenset[date]) -> NodeView:
    return NodeView(
        node_id=row["node_id"],
        name=row["name"],
        kind=NodeKind(row["kind"]),
        status=NodeStatus(row["status"]),
        capabilities=frozenset(Capability(c) for c in row["capabilities"]),
        location=GeoPoint(lat=row["lat"], lon=row["lon"]),
        priority=row["priority"],
        country=row["country"],
        region=row["region"],
        timezone=row["timezone"],
        operating_hours=OperatingHours.model_validate(row["operating_hours"]),
        holidays=holidays,
        cutoff_local=row["cutoff_local"],
        pick_pack_minutes=row["pick_pack_minutes"],
        capacity_orders_per_day=row["capacity_orders_per_day"],
        capacity_units_per_day=row["capacity_units_per_day"],
    )


def build_network(node_count: int, sku_count: int, seed: int) -> Network:
    generated = generate_network(node_count, sku_count, seed=seed, holiday_year=HOLIDAY_YEAR)
    holidays: dict[str, set[date]] = {}
    for h in generated.holidays:
        holidays.setdefault(h["node_id"], set()).add(h["day"])
    nodes = {row["node_id"]: node_view(row, frozenset(holidays.get(row["node_id"], ()))) for row in generated.nodes}
    atp: dict[str, dict[str, int]] = {}
    rows = 0
    for stock in generated.stock:
        atp.setdefault(stock["sku"], {})[stock["node_id"]] = max(0, stock["on_hand"] - stock["safety_stock"])
        rows += 1
    demo = {s["sku"] for s in DEMO_SKUS}
    return Network(
        nodes=nodes,
        kinds=Counter(row["kind"] for row in generated.nodes),
        atp=atp,
        skus={
            s["sku"]: SkuView(
                sku=s["sku"],
                weight_g=s["weight_g"],
                hazmat=s["hazmat"],
                oversize=s["oversize"],
                ship_alone=s["ship_alone"],
            )
            for s in generated.skus
        },
        catalogue=[s["sku"] for s in generated.skus if s["sku"] not in demo],
        consumables=[s["sku"] for s in generated.skus if s["sku"] not in demo and s["weight_g"] <= BULK_MAX_WEIGHT_G],
        destinations=[row for row in generated.nodes if row["kind"] == NodeKind.STORE],
        services=[CarrierServiceSpec.model_validate(s) for s in DEMO_CARRIER_SERVICES],
        stock_rows=rows,
    )


def snapshot_for(network: Network, order: Order) -> NetworkSnapshot:
    """What ``snapshot_for_order`` reads for ``order``: the nodes with a stock row of any ordered SKU."""
    skus = sorted({line.sku for line in order.lines})
    atp: dict[str, dict[str, int]] = {}
    for sku in skus:
        for node_id, units in network.atp.get(sku, {}).items():
            atp.setdefault(node_id, {})[sku] = units
    return NetworkSnapshot(
        nodes=[network.nodes[node_id] for node_id in sorted(atp)],
        atp=atp,
        skus={sku: network.skus[sku] for sku in skus},
        carrier_services=network.services,
    )


def make_orders(network: Network, count: int, lines: tuple[int, int], rng: random.Random, prefix: str) -> list[Order]:
    orders = []
    for i in range(count):
        wanted: dict[str, int] = {}
        for _ in range(rng.randint(*lines)):
            bulk = rng.random() < BULK_SHARE
            pool = network.consumables if bulk else network.catalogue
            sku = rng.choice(pool)
            while sku in wanted:  # one line per SKU
                sku = rng.choice(pool)
            wanted[sku] = rng.randint(*BULK_UNITS) if bulk else rng.randint(*SMALL_UNITS)
        store = rng.choice(network.destinations)
        location = GeoPoint(
            lat=store["lat"] + rng.uniform(-DESTINATION_JITTER_DEG, DESTINATION_JITTER_DEG),
            lon=store["lon"] + rng.uniform(-DESTINATION_JITTER_DEG, DESTINATION_JITTER_DEG),
        )
        orders.append(
            Order(
                order_id=f"{prefix}-{i}",
                customer_id="BENCH",
                ship_to=Address(
                    name="Bench customer",
                    line1="1 Main St",
                    city=store["city"],
                    region=store["region"],
                    postal_code="00000",
                    country="US",
                    location=location,
                ),
                lines=[
                    OrderLine(line_id=str(n), sku=sku, quantity=units, unit_price_minor=rng.randint(500, 20_000))
                    for n, (sku, units) in enumerate(wanted.items(), start=1)
                ],
                placed_at=NOW,
            )
        )
    return orders


# --- deciding ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    ms: float
    plan: Plan | None
    reason: str | None  # why it could not be placed

    @property
    def status(self) -> str | None:
        """The optimizer's status, when it ran."""
        report = self.plan.explanation.optimizer if self.plan is not None else None
        return report.status if report is not None else None


def decide(order: Order, snapshot: NetworkSnapshot, document: PolicyDocument) -> Decision:
    started = time.perf_counter()
    try:
        result = plan(order, snapshot, document, NOW, destination=order.ship_to.location)
    except OutOfStock as e:
        return Decision((time.perf_counter() - started) * 1000, None, str(e))
    return Decision((time.perf_counter() - started) * 1000, result, None)


def both(
    network: Network, order: Order, index: int, rules: PolicyDocument, best: PolicyDocument
) -> tuple[Decision, Decision, int]:
    """The order planned by each engine on one snapshot, alternating which goes first; and the snapshot's size."""
    snapshot = snapshot_for(network, order)
    if index % 2 == 0:
        r = decide(order, snapshot, rules)
        o = decide(order, snapshot, best)
    else:
        o = decide(order, snapshot, best)
        r = decide(order, snapshot, rules)
    return r, o, len(snapshot.nodes)


# --- the two measurements ------------------------------------------------------------------------------------


def measure_time(
    network: Network, orders: list[Order], warm: list[Order], rules: PolicyDocument, best: PolicyDocument
) -> dict[str, float | int]:
    for i, order in enumerate(warm):
        both(network, order, i, rules, best)
    rules_ms: list[float] = []
    optimizer_ms: list[float] = []
    highs_ms: list[float] = []
    sizes: list[int] = []
    splits = unplaced = 0
    for i, order in enumerate(orders):
        r, o, size = both(network, order, i, rules, best)
        rules_ms.append(r.ms)
        optimizer_ms.append(o.ms)
        sizes.append(size)
        if o.plan is not None and o.plan.explanation.optimizer is not None:
            highs_ms.append(o.plan.explanation.optimizer.solve_ms)
        if r.plan is None:
            unplaced += 1
        elif len(r.plan.shipments) > 1:
            splits += 1
    return {
        "lines": TIMED_LINES,
        "timed_orders": len(orders),
        "snapshot_nodes_p50": round(statistics.median(sizes)),
        "rules_p50_ms": round(percentile(rules_ms, 50), 2),
        "rules_p99_ms": round(percentile(rules_ms, 99), 2),
        "optimizer_p50_ms": round(percentile(optimizer_ms, 50), 2),
        "optimizer_p99_ms": round(percentile(optimizer_ms, 99), 2),
        "highs_p50_ms": round(percentile(highs_ms, 50), 2) if highs_ms else 0.0,
        "highs_p99_ms": round(percentile(highs_ms, 99), 2) if highs_ms else 0.0,
        "optimizer_to_rules_ratio": round(percentile(optimizer_ms, 50) / percentile(rules_ms, 50), 2),
        "timed_rules_split_share": round(splits / len(orders), 3),
        "timed_rules_unplaced": unplaced,
    }


# Why an order is left out of the comparison: JSON key, and what it means.
SKIPS = {
    "skipped_neither_placed": "neither engine could place it within the split limit",
    "skipped_only_optimizer_placed": "only the optimizer placed it (the greedy split found no cover within the limit)",
    "skipped_only_rules_placed": "only the rule engine placed it, though the optimizer proved none exists (a bug)",
    "unproven_orders": "the optimizer did not prove its optimum within the budget",
}


@dataclass(frozen=True)
class Pair:
    """One compared order: each engine's cost (``plan.cost_minor``) and shipments."""

    rules_cost: int
    optimum_cost: int
    rules_shipments: int
    optimizer_shipments: int

    @property
    def ratio(self) -> float:
        return self.rules_cost / self.optimum_cost


def ratio_figures(pairs: list[Pair], prefix: str) -> dict[str, float | int | None]:
    ratios = [p.ratio for p in pairs]
    return {
        f"{prefix}orders": len(pairs),
        f"{prefix}cost_ratio_mean": round(statistics.fmean(ratios), 4) if ratios else None,
        f"{prefix}cost_ratio_p95": round(percentile(ratios, 95), 4) if ratios else None,
        f"{prefix}rules_optimal_share": round(sum(p.rules_cost <= p.optimum_cost for p in pairs) / len(pairs), 4)
        if pairs
        else None,
    }


def measure_quality(
    network: Network, orders: list[Order], rules: PolicyDocument, best: PolicyDocument
) -> dict[str, object]:
    pairs: list[Pair] = []
    objective_gap = 0.0
    skipped: Counter[str] = Counter()
    solve_ms: list[float] = []
    rules_s = optimizer_s = 0.0
    for i, order in enumerate(orders):
        r, o, _ = both(network, order, i, rules, best)
        rules_s += r.ms / 1000
        optimizer_s += o.ms / 1000
        if o.plan is not None and o.plan.explanation.optimizer is not None:
            solve_ms.append(o.plan.explanation.optimizer.solve_ms)
        proven = o.status == optimizer.SolveStatus.OPTIMAL.value or (
            o.plan is None and "optimizer proved no assignment" in (o.reason or "")
        )
        if not proven:
            skipped["unproven_orders"] += 1
            continue
        if r.plan is None or o.plan is None:
            if r.plan is None and o.plan is None:
                skipped["skipped_neither_placed"] += 1
            else:
                skipped["skipped_only_optimizer_placed" if r.plan is None else "skipped_only_rules_placed"] += 1
            continue
        report = o.plan.explanation.optimizer
        assert report is not None
        assert report.objective is not None
        objective_gap = max(objective_gap, abs(report.objective - o.plan.cost_minor))
        pairs.append(Pair(r.plan.cost_minor, o.plan.cost_minor, len(r.plan.shipments), len(o.plan.shipments)))
    n = len(pairs)
    cheaper = [p.optimum_cost - p.rules_cost for p in pairs if p.rules_cost < p.optimum_cost]
    same = [p for p in pairs if p.rules_shipments == p.optimizer_shipments]
    return {
        "orders": len(orders),
        "compared_orders": n,
        **{key: skipped[key] for key in SKIPS},
        **ratio_figures(pairs, ""),
        "cost_ratio_max": round(max(p.ratio for p in pairs), 4) if n else None,
        "cost_ratio_total": round(sum(p.rules_cost for p in pairs) / sum(p.optimum_cost for p in pairs), 4)
        if n
        else None,
        "rules_shipments_per_order": round(sum(p.rules_shipments for p in pairs) / n, 3) if n else None,
        "optimizer_shipments_per_order": round(sum(p.optimizer_shipments for p in pairs) / n, 3) if n else None,
        # Where both used as many shipments, the difference is the greedy split's, not the policy's choice of
        # fewer shipments over cost.
        **ratio_figures(same, "same_shipments_"),
        "optimizer_more_shipments_orders": sum(p.optimizer_shipments > p.rules_shipments for p in pairs),
        "optimizer_fewer_shipments_orders": sum(p.optimizer_shipments < p.rules_shipments for p in pairs),
        "rules_cheaper_orders": len(cheaper),
        "rules_cheaper_max_minor": max(cheaper, default=0),
        "objective_gap_max_minor": round(objective_gap, 2),
        "quality_highs_p99_ms": round(percentile(solve_ms, 99), 1) if solve_ms else 0.0,
        "quality_highs_max_ms": round(max(solve_ms), 1) if solve_ms else 0.0,
        # Solves that took longer than a strategy's default budget, so would not be proven under it.
        "over_default_budget_orders": sum(ms > DEFAULT_BUDGET_MS for ms in solve_ms),
        "quality_rules_s": round(rules_s, 1),
        "quality_optimizer_s": round(optimizer_s, 1),
    }


def main(node_count: int, sku_count: int, seed: int, timed: int, quality: int, budget_ms: int) -> dict[str, object]:
    started = time.perf_counter()
    network = build_network(node_count, sku_count, seed)
    build_s = time.perf_counter() - started
    rules, best = policy(Engine.RULES, budget_ms), policy(Engine.OPTIMIZER, budget_ms)
    warm = make_orders(network, WARM_UP, (TIMED_LINES, TIMED_LINES), random.Random(f"{seed}/warm-up"), "W")
    timed_orders = make_orders(network, timed, (TIMED_LINES, TIMED_LINES), random.Random(f"{seed}/timed"), "T")
    quality_orders = make_orders(network, quality, QUALITY_LINES, random.Random(f"{seed}/quality"), "Q")
    timing_started = time.perf_counter()
    timing = measure_time(network, timed_orders, warm, rules, best)
    quality_started = time.perf_counter()
    figures = measure_quality(network, quality_orders, rules, best)
    finished = time.perf_counter()
    return {
        "nodes": len(network.nodes),
        "skus": len(network.skus),
        "stock_rows": network.stock_rows,
        **{f"{kind}_nodes": count for kind, count in sorted(network.kinds.items())},
        "seed": seed,
        "budget_ms": budget_ms,
        "build_s": round(build_s, 1),
        **timing,
        "timing_s": round(quality_started - timing_started, 1),
        **figures,
        "quality_s": round(finished - quality_started, 1),
        "runtime_s": round(finished - started, 1),
    }


def report(f: dict[str, object]) -> None:
    print(
        f"Network: {f['nodes']:,} nodes ({f['dc_nodes']} DCs, {f['store_nodes']} stores,"
        f" {f['3pl_nodes']} 3PLs, {f['dropship_nodes']} dropship vendors), {f['skus']:,} SKUs,"
        f" {f['stock_rows']:,} stock rows; built in {f['build_s']} s"
    )
    print(
        f"Policy: {' > '.join(s['step'] for s in RANKING)}, split up to {MAX_SHIPMENTS}, the demo's filters;"
        f" optimizer budget {f['budget_ms']:,} ms"
    )
    print()
    print(
        f"Decision time, {f['timed_orders']} orders of {f['lines']} lines (median {f['snapshot_nodes_p50']} nodes"
        f" in a snapshot), after {WARM_UP} warm-up orders, {f['timing_s']} s"
    )
    print(f"  {'':32}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"  {'rule engine, plan()':32}{f['rules_p50_ms']:>10}{f['rules_p99_ms']:>10}")
    print(f"  {'optimizer, plan()':32}{f['optimizer_p50_ms']:>10}{f['optimizer_p99_ms']:>10}")
    print(f"  {'  of which HiGHS':32}{f['highs_p50_ms']:>10}{f['highs_p99_ms']:>10}")
    print(f"  optimizer / rules (p50): {f['optimizer_to_rules_ratio']}")
    split = f["timed_rules_split_share"]
    assert isinstance(split, float)
    print(f"  the rule engine split {split:.0%} of them and could not place {f['timed_rules_unplaced']}")
    print()
    print(
        f"Quality, {f['orders']:,} orders of {QUALITY_LINES[0]} to {QUALITY_LINES[1]} lines, {f['quality_s']} s"
        f" (rule engine {f['quality_rules_s']} s, optimizer {f['quality_optimizer_s']} s)"
    )
    print(f"  compared (both placed, optimum proven): {f['compared_orders']:,}")
    for key, reason in SKIPS.items():
        print(f"  skipped, {reason}: {f[key]}")
    print(f"  {'cost, rules / proven optimum':44}{'orders':>8}{'mean':>8}{'p95':>8}{'optimal':>9}")
    for label, prefix in (("all compared orders", ""), ("  where both used as many shipments", "same_shipments_")):
        share = f[f"{prefix}rules_optimal_share"]
        optimal = f"{share:.1%}" if isinstance(share, float) else "-"
        print(
            f"  {label:44}{f[f'{prefix}orders']:>8,}{f[f'{prefix}cost_ratio_mean']!s:>8}"
            f"{f[f'{prefix}cost_ratio_p95']!s:>8}{optimal:>9}"
        )
    print(f"  (max {f['cost_ratio_max']}; total cost of the rule plans / total of the optima {f['cost_ratio_total']})")
    print(f"  {'':44}{'rules':>8}{'optimum':>9}")
    print(f"  {'shipments per order':44}{f['rules_shipments_per_order']!s:>8}{f['optimizer_shipments_per_order']!s:>9}")
    print(
        f"  the optimum used more shipments than the rules in {f['optimizer_more_shipments_orders']} orders,"
        f" fewer in {f['optimizer_fewer_shipments_orders']}"
    )
    print(
        "  cost function: plan.cost_minor for both. The optimizer's objective and its plan's cost_minor differ by at"
        f" most {f['objective_gap_max_minor']} minor units; rule plans cheaper than the optimum:"
        f" {f['rules_cheaper_orders']} (by at most {f['rules_cheaper_max_minor']} minor units: rounding)"
    )
    print(
        f"  HiGHS run time over these orders: p99 {f['quality_highs_p99_ms']} ms, max {f['quality_highs_max_ms']} ms;"
        f" {f['over_default_budget_orders']} took longer than the default budget ({DEFAULT_BUDGET_MS} ms)"
    )
    print(f"Runtime {f['runtime_s']} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000, help="orders for the quality comparison")
    parser.add_argument("--timed", type=int, default=300, help="10-line orders for the decision time")
    parser.add_argument("--nodes", type=int, default=1_000)
    parser.add_argument("--skus", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--budget-ms", type=int, default=10_000, help="the optimizer's time budget per order")
    args = parser.parse_args()
    figures = main(args.nodes, args.skus, args.seed, args.timed, args.orders, args.budget_ms)
    report(figures)
    print(json.dumps(figures))
