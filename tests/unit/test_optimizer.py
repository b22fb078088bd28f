"""The exact optimizer: hand-checkable tables, then a property against brute force over node subsets."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.optimizer import (
    Assignment,
    AssignmentProblem,
    LineDemand,
    NodeOffer,
    SolveResult,
    SolveStatus,
    evaluate,
    solve,
)


def lines(*specs: str) -> list[LineDemand]:
    """``lines("A:2", "B:1")``: one line per ``SKU:quantity``, ids ``L1``, ``L2``, ..."""
    out = []
    for i, spec in enumerate(specs, start=1):
        sku, qty = spec.split(":")
        out.append(LineDemand(f"L{i}", sku, int(qty)))
    return out


def node(
    node_id: str,
    atp: Mapping[str, int],
    *,
    ship: float = 0.0,
    unit: Mapping[str, float] | None = None,
    cap: int | None = None,
) -> NodeOffer:
    return NodeOffer(node_id, atp=atp, shipment_cost=ship, unit_cost=unit or {}, max_units=cap)


def units_by_node(result: SolveResult) -> dict[str, int]:
    out: dict[str, int] = {}
    for a in result.assignments:
        out[a.node_id] = out.get(a.node_id, 0) + a.quantity
    return out


# --- solve: small networks whose answer can be checked by hand -------------------------------------------------


@dataclass(frozen=True)
class Case:
    problem: AssignmentProblem
    status: SolveStatus
    objective: float | None = None
    by_node: dict[str, int] = field(default_factory=dict)
    backordered: dict[str, int] = field(default_factory=dict)


CASES = {
    "single node, the cheapest": Case(
        AssignmentProblem(
            lines("A:2"),
            [node("N1", {"A": 5}, ship=20, unit={"A": 1}), node("N2", {"A": 5}, ship=10, unit={"A": 1})],
        ),
        SolveStatus.OPTIMAL,
        12.0,
        {"N2": 2},
    ),
    "unit costs outweigh a cheaper shipment": Case(
        AssignmentProblem(
            lines("A:10"),
            [node("N1", {"A": 10}, ship=10, unit={"A": 5}), node("N2", {"A": 10}, ship=30, unit={"A": 2})],
        ),
        SolveStatus.OPTIMAL,
        50.0,
        {"N2": 10},
    ),
    "split beats one expensive complete node": Case(
        AssignmentProblem(
            lines("A:2", "B:2"),
            [node("N1", {"A": 2}, ship=10), node("N2", {"B": 2}, ship=10), node("N3", {"A": 2, "B": 2}, ship=50)],
        ),
        SolveStatus.OPTIMAL,
        20.0,
        {"N1": 2, "N2": 2},
    ),
    "max_shipments=1 forces the expensive complete node": Case(
        AssignmentProblem(
            lines("A:2", "B:2"),
            [node("N1", {"A": 2}, ship=10), node("N2", {"B": 2}, ship=10), node("N3", {"A": 2, "B": 2}, ship=50)],
            max_shipments=1,
        ),
        SolveStatus.OPTIMAL,
        50.0,
        {"N3": 4},
    ),
    "capacity forces a split": Case(
        AssignmentProblem(
            lines("A:4"),
            [
                node("N1", {"A": 4}, ship=10, unit={"A": 1}, cap=3),
                node("N2", {"A": 4}, ship=20, unit={"A": 2}, cap=2),
                node("N3", {"A": 4}, ship=100),
            ],
        ),
        SolveStatus.OPTIMAL,
        35.0,  # 10 + 3 x 1 at N1, 20 + 1 x 2 at N2
        {"N1": 3, "N2": 1},
    ),
    "capacity across lines forces a split": Case(
        AssignmentProblem(
            lines("A:2", "B:2"),
            [
                node("N1", {"A": 2, "B": 2}, ship=10, cap=3),
                node("N2", {"A": 2, "B": 2}, ship=30, unit={"A": 10, "B": 10}),
            ],
        ),
        SolveStatus.OPTIMAL,
        50.0,  # N2 alone would cost 70
        {"N1": 3, "N2": 1},
    ),
    "two lines sharing a SKU share its ATP": Case(
        AssignmentProblem(
            lines("A:2", "A:2"),
            [node("N1", {"A": 3}, ship=10), node("N2", {"A": 3}, ship=30)],
        ),
        SolveStatus.OPTIMAL,
        40.0,
        {"N1": 3, "N2": 1},
    ),
    "short in total, no backorder: infeasible": Case(
        AssignmentProblem(lines("A:5"), [node("N1", {"A": 3}), node("N2", {"B": 9})]),
        SolveStatus.INFEASIBLE,
    ),
    "enough stock, but no two nodes hold all five SKUs": Case(
        AssignmentProblem(
            lines("A:1", "B:1", "C:1", "D:1", "E:1"),
            [
                node("N1", {"A": 1, "B": 1, "C": 1}),
                node("N2", {"A": 1, "B": 1, "D": 1}),
                node("N3", {"A": 1, "B": 1, "E": 1}),
            ],
            max_shipments=2,
        ),
        SolveStatus.INFEASIBLE,
    ),
    "no shipments allowed: infeasible": Case(
        AssignmentProblem(lines("A:1"), [node("N1", {"A": 3})], max_shipments=0),
        SolveStatus.INFEASIBLE,
    ),
    "penalty below the shipping cost: backorder everything": Case(
        AssignmentProblem(lines("A:2"), [node("N1", {"A": 2}, ship=100, unit={"A": 1})], backorder_cost_per_unit=10),
        SolveStatus.OPTIMAL,
        20.0,
        {},
        {"L1": 2},
    ),
    "penalty above the shipping cost: ship": Case(
        AssignmentProblem(lines("A:2"), [node("N1", {"A": 2}, ship=100, unit={"A": 1})], backorder_cost_per_unit=60),
        SolveStatus.OPTIMAL,
        102.0,
        {"N1": 2},
    ),
    "short stock with a penalty: ship what there is, backorder the rest": Case(
        AssignmentProblem(lines("A:3", "B:1"), [node("N1", {"A": 2, "B": 1}, ship=10)], backorder_cost_per_unit=1000),
        SolveStatus.OPTIMAL,
        1010.0,
        {"N1": 3},
        {"L1": 1},
    ),
    "split limit with a penalty: backorder what the best node lacks": Case(
        AssignmentProblem(
            lines("A:1", "B:1"),
            [node("N1", {"A": 1}, ship=10), node("N2", {"B": 1}, ship=20)],
            max_shipments=1,
            backorder_cost_per_unit=500,
        ),
        SolveStatus.OPTIMAL,
        510.0,
        {"N1": 1},
        {"L2": 1},
    ),
    "nothing to ship": Case(
        AssignmentProblem(lines("A:0"), [node("N1", {"A": 3}, ship=10)]),
        SolveStatus.OPTIMAL,
        0.0,
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_solve(case: Case) -> None:
    result = solve(case.problem)

    assert result.status is case.status
    assert result.objective == case.objective
    assert units_by_node(result) == case.by_node
    assert dict(result.backordered) == case.backordered
    if case.status is SolveStatus.OPTIMAL:
        assert evaluate(case.problem, result.assignments) == result.objective
        assert result.bound is not None
        assert result.bound == pytest.approx(result.objective)
    else:
        assert result.assignments == ()
        assert result.objective is None


def test_assignments_sorted_by_line_order_then_node_and_deterministic() -> None:
    # Lines listed L2 before L1, nodes Z before A: the order follows the problem's lines, then node ids.
    problem = AssignmentProblem(
        [LineDemand("L2", "A", 3), LineDemand("L1", "B", 3)],
        [node("Z", {"A": 2, "B": 2}, ship=1, cap=4), node("A", {"A": 2, "B": 2}, ship=1, cap=4)],
    )

    first, second = solve(problem), solve(problem)

    assert [(a.line_id, a.node_id) for a in first.assignments] == [("L2", "A"), ("L2", "Z"), ("L1", "A"), ("L1", "Z")]
    assert replace(first, solve_ms=0.0) == replace(second, solve_ms=0.0)


def test_the_model_leaves_out_what_no_node_can_supply() -> None:
    # Pairs only where a node holds the SKU: N1-L1 and N2-L2, so 2 x, 2 y; rows: 2 coverage + 2 linking.
    problem = AssignmentProblem(
        lines("A:1", "B:1"), [node("N1", {"A": 1, "B": 0}), node("N2", {"B": 4}), node("N3", {})]
    )

    result = solve(problem)

    assert (result.variables, result.constraints) == (4, 4)


@pytest.mark.parametrize(
    "problem",
    [
        AssignmentProblem(lines("A:3"), [node("N1", {"A": 2})]),
        AssignmentProblem(lines("A:2", "A:1"), [node("N1", {"A": 2}), node("N2", {"B": 5})]),
        AssignmentProblem(lines("A:3"), [node("N1", {"A": 5}, cap=2)]),
        AssignmentProblem(lines("A:1", "B:1"), [node("N1", {"A": 1}), node("N2", {"B": 1})], max_shipments=1),
        AssignmentProblem(lines("A:1"), [node("N1", {"A": 1})], max_shipments=0),
    ],
    ids=["short", "lines share the shortage", "capacity", "no node alone", "no shipments"],
)
def test_obvious_infeasibility_is_decided_without_highs(problem: AssignmentProblem) -> None:
    result = solve(problem)

    assert (result.status, result.variables, result.constraints, result.solve_ms) == (SolveStatus.INFEASIBLE, 0, 0, 0)


def random_network(seed: int, n_lines: int, n_nodes: int) -> AssignmentProblem:
    r = random.Random(seed)
    skus = [f"S{k}" for k in range(8)]
    return AssignmentProblem(
        [LineDemand(f"L{i}", r.choice(skus), r.randint(1, 5)) for i in range(n_lines)],
        [
            node(
                f"N{j:04d}",
                {s: r.randint(0, 6) for s in skus if r.random() < 0.7},
                ship=r.randint(500, 1500),
                unit={s: r.randint(20, 300) for s in skus},
                cap=r.randint(0, 12),
            )
            for j in range(n_nodes)
        ],
    )


def first_fit(problem: AssignmentProblem) -> list[Assignment]:
    """Each line from the nodes in their order, as much as each can still give: a plan, not a good one."""
    atp = {n.node_id: dict(n.atp) for n in problem.nodes}
    room = {n.node_id: n.max_units if n.max_units is not None else 10**9 for n in problem.nodes}
    plan = []
    for line in problem.lines:
        missing = line.quantity
        for n in problem.nodes:
            units = min(missing, atp[n.node_id].get(line.sku, 0), room[n.node_id])
            if units > 0:
                plan.append(Assignment(line.line_id, n.node_id, units))
                atp[n.node_id][line.sku] -= units
                room[n.node_id] -= units
                missing -= units
    return plan


def test_a_budget_too_short_to_prove_anything() -> None:
    # Ten lines over a thousand nodes take HiGHS seconds to prove; 20 ms is not enough.
    problem = random_network(1, 10, 1000)

    result = solve(problem, time_limit_s=0.02)

    assert result.status in (SolveStatus.FEASIBLE, SolveStatus.NO_SOLUTION)
    assert result.variables > 5000
    if result.status is SolveStatus.FEASIBLE:
        assert result.objective == evaluate(problem, result.assignments)
        assert result.bound is not None
        assert result.bound <= result.objective
    else:
        assert (result.assignments, result.objective) == ((), None)


def test_a_start_means_an_answer_no_worse_than_it_even_when_the_budget_runs_out() -> None:
    problem = random_network(1, 10, 1000)
    start = first_fit(problem)

    result = solve(problem, time_limit_s=0.02, start=start)

    assert result.status in (SolveStatus.FEASIBLE, SolveStatus.OPTIMAL)
    assert result.objective is not None
    assert result.objective <= evaluate(problem, start)


def test_a_start_does_not_change_the_optimum() -> None:
    case = CASES["capacity across lines forces a split"]
    start = [Assignment("L1", "N2", 2), Assignment("L2", "N2", 2)]  # N2 alone: 70

    assert replace(solve(case.problem, start=start), solve_ms=0) == replace(solve(case.problem), solve_ms=0)


def test_a_start_that_breaks_a_constraint_is_rejected() -> None:
    case = CASES["capacity across lines forces a split"]

    with pytest.raises(ValueError, match="can ship 3 today"):
        solve(case.problem, start=[Assignment("L1", "N1", 2), Assignment("L2", "N1", 2)])


@pytest.mark.parametrize(
    ("problem", "time_limit_s", "message"),
    [
        (AssignmentProblem([LineDemand("L1", "A", 1), LineDemand("L1", "B", 1)], []), 1.0, "appears twice"),
        (AssignmentProblem(lines("A:1"), [node("N1", {"A": 1}), node("N1", {"A": 1})]), 1.0, "appears twice"),
        (AssignmentProblem([LineDemand("L1", "A", -1)], []), 1.0, "negative quantity"),
        (AssignmentProblem(lines("A:1"), [node("N1", {"A": 1}, ship=float("nan"))]), 1.0, "finite"),
        (AssignmentProblem(lines("A:1"), [], max_shipments=-1), 1.0, "negative"),
        (AssignmentProblem(lines("A:1"), [], backorder_cost_per_unit=float("inf")), 1.0, "finite"),
        (AssignmentProblem(lines("A:1"), []), 0.0, "positive"),
    ],
)
def test_solve_rejects_malformed_problems(problem: AssignmentProblem, time_limit_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        solve(problem, time_limit_s=time_limit_s)


# --- evaluate: one price for any plan --------------------------------------------------------------------------

PRICED = AssignmentProblem(
    lines("A:3", "B:1"),
    [
        node("N1", {"A": 2, "B": 1}, ship=10, unit={"A": 2, "B": 5}, cap=3),
        node("N2", {"A": 5}, ship=20, unit={"A": 1}),
    ],
    max_shipments=2,
    backorder_cost_per_unit=100,
)


@pytest.mark.parametrize(
    ("assignments", "cost"),
    [
        ([Assignment("L1", "N1", 2), Assignment("L2", "N1", 1), Assignment("L1", "N2", 1)], 10 + 4 + 5 + 20 + 1),
        ([Assignment("L1", "N2", 3)], 20 + 3 + 100),  # L2 backordered
        ([], 400),  # everything backordered
        ([Assignment("L1", "N2", 1), Assignment("L1", "N2", 2), Assignment("L2", "N1", 0)], 20 + 3 + 100),
    ],
)
def test_evaluate_prices_plans(assignments: list[Assignment], cost: float) -> None:
    assert evaluate(PRICED, assignments) == cost


@pytest.mark.parametrize(
    ("problem", "assignments", "message"),
    [
        (PRICED, [Assignment("L1", "N1", 3)], "has 2 available"),
        (PRICED, [Assignment("L1", "N1", 2), Assignment("L1", "N1", 1)], "has 2 available"),
        (PRICED, [Assignment("L2", "N2", 1)], "has 0 available"),
        (replace(PRICED, lines=lines("A:3", "A:1")), [Assignment("L1", "N1", 2), Assignment("L2", "N1", 1)], "has 2"),
        (replace(PRICED, lines=lines("A:9")), [Assignment("L1", "N1", 2), Assignment("L1", "N2", 7)], "has 5"),
        (PRICED, [Assignment("L1", "N2", 4)], "asks for 3"),
        (PRICED, [Assignment("L3", "N2", 1)], "unknown line"),
        (PRICED, [Assignment("L1", "N9", 1)], "unknown node"),
        (PRICED, [Assignment("L1", "N2", -1)], "negative quantity"),
        (replace(PRICED, max_shipments=1), [Assignment("L1", "N2", 2), Assignment("L2", "N1", 1)], "at most 1"),
        (replace(PRICED, backorder_cost_per_unit=None), [Assignment("L1", "N2", 3)], "0 of 1 units"),
    ],
)
def test_evaluate_rejects_plans_that_break_a_constraint(
    problem: AssignmentProblem, assignments: list[Assignment], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(problem, assignments)


def test_evaluate_rejects_over_capacity() -> None:
    problem = replace(PRICED, nodes=[node("N1", {"A": 5, "B": 5}, cap=3)])

    with pytest.raises(ValueError, match="can ship 3 today"):
        evaluate(problem, [Assignment("L1", "N1", 3), Assignment("L2", "N1", 1)])


# --- property: on tiny networks, the optimum is the brute-force optimum -----------------------------------------


def cheapest_flow(problem: AssignmentProblem, nodes: Sequence[NodeOffer]) -> float | None:
    """The cheapest way to cover the demand from exactly ``nodes`` (shipment costs aside), or None.

    Lines sharing a SKU are interchangeable, so this is a min-cost flow source -> SKU -> node -> sink (plus
    SKU -> sink at the backorder penalty), solved by successive shortest paths: independent of the MIP.
    """
    demand: dict[str, int] = {}
    for line in problem.lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    skus = sorted(demand)
    source, sink = 0, 1
    sku_vertex = {s: 2 + k for k, s in enumerate(skus)}
    node_vertex = [2 + len(skus) + j for j in range(len(nodes))]
    # Edges as [to, capacity, cost, index of the reverse edge] in adjacency lists.
    graph: list[list[list[float]]] = [[] for _ in range(2 + len(skus) + len(nodes))]

    def edge(a: int, b: int, capacity: float, cost: float) -> None:
        graph[a].append([b, capacity, cost, len(graph[b])])
        graph[b].append([a, 0, -cost, len(graph[a]) - 1])

    total = sum(demand.values())
    for s in skus:
        edge(source, sku_vertex[s], demand[s], 0.0)
        if problem.backorder_cost_per_unit is not None:
            edge(sku_vertex[s], sink, demand[s], problem.backorder_cost_per_unit)
        for j, n in enumerate(nodes):
            if n.atp.get(s, 0) > 0:
                edge(sku_vertex[s], node_vertex[j], n.atp[s], n.unit_cost.get(s, 0.0))
    for j, n in enumerate(nodes):
        edge(node_vertex[j], sink, total if n.max_units is None else max(n.max_units, 0), 0.0)

    flow, cost = 0, 0.0
    while flow < total:
        dist = [float("inf")] * len(graph)
        previous: list[tuple[int, int] | None] = [None] * len(graph)
        dist[source] = 0.0
        for _ in range(len(graph)):  # Bellman-Ford: residual edges carry negative costs
            changed = False
            for a, edges in enumerate(graph):
                if dist[a] == float("inf"):
                    continue
                for k, (b, capacity, c, _) in enumerate(edges):
                    if capacity > 0 and dist[a] + c < dist[int(b)]:
                        dist[int(b)], previous[int(b)] = dist[a] + c, (a, k)
                        changed = True
            if not changed:
                break
        if dist[sink] == float("inf"):
            return None
        push, v = total - flow, sink
        while (step := previous[v]) is not None:
            push = min(push, int(graph[step[0]][step[1]][1]))
            v = step[0]
        v = sink
        while (step := previous[v]) is not None:
            e = graph[step[0]][step[1]]
            e[1] -= push
            graph[int(e[0])][int(e[3])][1] += push
            v = step[0]
        flow += push
        cost += push * dist[sink]
    return cost


def brute_force(problem: AssignmentProblem) -> float | None:
    """The minimum over every allowed set of nodes of its shipment costs plus its cheapest flow."""
    limit = len(problem.nodes) if problem.max_shipments is None else min(problem.max_shipments, len(problem.nodes))
    best: float | None = None
    for size in range(limit + 1):
        for chosen in itertools.combinations(problem.nodes, size):
            flow = cheapest_flow(problem, chosen)
            if flow is not None:
                cost = sum(n.shipment_cost for n in chosen) + flow
                best = cost if best is None else min(best, cost)
    return best


def assert_respects_every_constraint(problem: AssignmentProblem, result: SolveResult) -> None:
    line = {x.line_id: x for x in problem.lines}
    offer = {n.node_id: n for n in problem.nodes}
    per_line = {x.line_id: 0 for x in problem.lines}
    per_node: dict[str, int] = {}
    per_node_sku: dict[tuple[str, str], int] = {}
    for a in result.assignments:
        assert a.quantity > 0
        per_line[a.line_id] += a.quantity
        per_node[a.node_id] = per_node.get(a.node_id, 0) + a.quantity
        key = (a.node_id, line[a.line_id].sku)
        per_node_sku[key] = per_node_sku.get(key, 0) + a.quantity
    for (node_id, sku), units in per_node_sku.items():
        assert units <= offer[node_id].atp.get(sku, 0)
    for node_id, units in per_node.items():
        cap = offer[node_id].max_units
        assert cap is None or units <= cap
    assert problem.max_shipments is None or len(per_node) <= problem.max_shipments
    for line_id, units in per_line.items():
        assert units + result.backordered.get(line_id, 0) == line[line_id].quantity
    if problem.backorder_cost_per_unit is None:
        assert not result.backordered


SKUS = ("A", "B", "C")


@st.composite
def tiny_problems(draw: st.DrawFn) -> AssignmentProblem:
    demand = draw(st.lists(st.tuples(st.sampled_from(SKUS), st.integers(1, 4)), min_size=1, max_size=4))
    units = st.integers(0, 5)
    offers = [
        NodeOffer(
            f"N{j}",
            atp=draw(st.fixed_dictionaries(dict.fromkeys(SKUS, units))),
            shipment_cost=draw(st.integers(0, 50)),
            unit_cost=draw(st.fixed_dictionaries({}, optional=dict.fromkeys(SKUS, st.integers(0, 10)))),
            max_units=draw(st.none() | st.integers(0, 8)),
        )
        for j in range(draw(st.integers(1, 6)))
    ]
    return AssignmentProblem(
        [LineDemand(f"L{i}", sku, qty) for i, (sku, qty) in enumerate(demand, start=1)],
        offers,
        max_shipments=draw(st.none() | st.integers(1, 3)),
        backorder_cost_per_unit=draw(st.none() | st.integers(0, 100)),
    )


@settings(max_examples=120, deadline=None)
@given(tiny_problems())
def test_optimal_is_the_brute_force_minimum(problem: AssignmentProblem) -> None:
    result = solve(problem, time_limit_s=10.0)
    expected = brute_force(problem)

    if expected is None:
        assert result.status is SolveStatus.INFEASIBLE
        return
    assert result.status is SolveStatus.OPTIMAL
    assert_respects_every_constraint(problem, result)
    assert result.objective == pytest.approx(expected, abs=1e-6)
    assert evaluate(problem, result.assignments) == result.objective
