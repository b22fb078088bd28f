"""The exact optimizer: the minimum-cost assignment of order lines to fulfilment nodes, proven by HiGHS.

The sourcing engine ranks candidate plans by rules; a strategy may instead ask for the cheapest assignment
there is. The caller describes the choice as a neutral ``AssignmentProblem`` (lines, what each node offers
and at what cost, a split limit, a backorder penalty) and ``solve`` answers within a time budget. Nothing
here reads a clock, a file or the environment: HiGHS's own time limit is the only thing that can make two
runs differ, and it matters only when the budget runs out (``FEASIBLE`` / ``NO_SOLUTION``).

The mixed-integer programme, for lines ``l`` (quantity ``q_l``, SKU ``s_l``) and nodes ``n``:

- ``x[l,n]`` integer units of ``l`` shipped from ``n``, only where ``n`` has ATP of ``s_l``, within
  ``[0, b_ln]`` with ``b_ln = min(q_l, atp[n][s_l], max_units[n])``;
- ``y[n]`` binary, 1 when ``n`` ships anything; ``u[l]`` units of ``l`` backordered, when that is allowed;
- coverage ``sum_n x[l,n] + u[l] = q_l``; ATP ``sum_{l: s_l = s} x[l,n] <= atp[n][s]`` (lines share SKUs);
  linking ``x[l,n] <= b_ln * y[n]``; capacity ``sum_l x[l,n] <= max_units[n] * y[n]``;
  split limit ``sum_n y[n] <= max_shipments``;
- minimise ``sum shipment_cost * y + sum unit_cost * x + backorder_cost_per_unit * u``.

Rows that a column bound already implies (an ATP row for a SKU only one line wants, a capacity row at a node
that cannot reach its capacity anyway, a split limit above the number of usable nodes) are left out.

``evaluate`` prices any assignment by the same objective, so a rule-based plan and the optimizer's answer are
compared by one function; the optimizer reports the objective of its own (rounded) solution through it.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import highspy

# Fixed so that the same problem always follows the same search path (with ``threads=1``).
RANDOM_SEED = 20240501


@dataclass(frozen=True)
class LineDemand:
    line_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class NodeOffer:
    node_id: str
    # Units available per SKU at this node; a missing SKU (or a non-positive count) means none.
    atp: Mapping[str, int]
    # Fixed cost of using the node at all: one shipment's carrier base rate plus handling.
    shipment_cost: float
    # Variable cost per unit of each SKU shipped from here (per-kg rate x weight, per-unit handling); missing: 0.
    unit_cost: Mapping[str, float]
    # Units the node can still ship today; None: no limit.
    max_units: int | None = None


@dataclass(frozen=True)
class AssignmentProblem:
    lines: Sequence[LineDemand]
    nodes: Sequence[NodeOffer]
    # At most this many nodes ship (1: a single shipment); None: any number.
    max_shipments: int | None = None
    # None: every unit must be assigned, else the problem is infeasible. A number: units may be left
    # unassigned, each at this cost.
    backorder_cost_per_unit: float | None = None


@dataclass(frozen=True)
class Assignment:
    """Units of one line shipped from one node."""

    line_id: str
    node_id: str
    quantity: int


class SolveStatus(StrEnum):
    OPTIMAL = "optimal"  # proven minimum cost
    FEASIBLE = "feasible"  # the budget ran out with a solution that is not proven minimal
    INFEASIBLE = "infeasible"  # no assignment satisfies the constraints
    NO_SOLUTION = "no_solution"  # the budget ran out before any solution was found


@dataclass(frozen=True)
class SolveResult:
    status: SolveStatus
    # Sorted by (the line's position in the problem, node_id); empty unless OPTIMAL or FEASIBLE.
    assignments: tuple[Assignment, ...]
    # line_id -> units left unassigned, for lines with any.
    backordered: Mapping[str, int]
    objective: float | None
    # The best proven lower bound on the objective.
    bound: float | None
    mip_gap: float | None
    # HiGHS's own run time; 0 when the problem was decided without it.
    solve_ms: float
    variables: int
    constraints: int


def solve(problem: AssignmentProblem, *, time_limit_s: float = 1.0, start: Sequence[Assignment] = ()) -> SolveResult:
    """The minimum-cost assignment of ``problem``, or the best one HiGHS found within ``time_limit_s``.

    ``start``, when given, is a feasible assignment (the rule engine's plan, say) that HiGHS begins from, so
    an answer cut short by the budget is never worse than it; ``ValueError`` if it breaks a constraint.
    On a thousand nodes HiGHS's own first incumbents can cost twice what a simple greedy plan does.
    """
    if not (math.isfinite(time_limit_s) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be a positive number of seconds, not {time_limit_s!r}")
    _validate(problem)
    if start:
        evaluate(problem, start)  # raises when the start breaks a constraint
    if problem.backorder_cost_per_unit is None and _obviously_short(problem):
        return _unsolved(SolveStatus.INFEASIBLE, variables=0, constraints=0, solve_ms=0.0)
    model = _Model.build(problem)
    if model.num_col == 0:  # every line asks for nothing
        return SolveResult(SolveStatus.OPTIMAL, (), {}, 0.0, 0.0, 0.0, 0.0, 0, 0)

    highs = _solver(time_limit_s)
    try:
        if highs.passModel(model.lp) != highspy.HighsStatus.kOk:
            raise RuntimeError("HiGHS rejected the assignment model")
        if start and highs.setSolution(model.start(start)) == highspy.HighsStatus.kError:
            raise RuntimeError("HiGHS rejected the starting assignment")
        if highs.run() == highspy.HighsStatus.kError:
            raise RuntimeError(f"HiGHS failed: {highs.modelStatusToString(highs.getModelStatus())}")
        model_status = highs.getModelStatus()
        info = highs.getInfo()
        has_incumbent = info.primal_solution_status == int(highspy.SolutionStatus.kSolutionStatusFeasible)
        values = highs.getSolution().col_value if has_incumbent else []
        solve_ms = highs.getRunTime() * 1000
        bound, gap = _finite(info.mip_dual_bound), _finite(info.mip_gap)
        status_text = highs.modelStatusToString(model_status)
    finally:
        highs.clear()

    status = _status(model_status, has_incumbent, status_text)
    if status not in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
        return _unsolved(status, variables=model.num_col, constraints=model.num_row, solve_ms=solve_ms)

    assignments = model.assignments(values)
    try:
        objective = evaluate(problem, assignments)
    except ValueError as e:  # integral to HiGHS's tolerance, so rounding can never break a constraint
        raise RuntimeError(f"HiGHS returned an assignment that breaks a constraint: {e}") from e
    assigned: dict[str, int] = {}
    for a in assignments:
        assigned[a.line_id] = assigned.get(a.line_id, 0) + a.quantity
    backordered = {
        line.line_id: line.quantity - assigned.get(line.line_id, 0)
        for line in problem.lines
        if line.quantity > assigned.get(line.line_id, 0)
    }
    return SolveResult(
        status=status,
        assignments=assignments,
        backordered=backordered,
        objective=objective,
        # HiGHS's bound can exceed the optimum by rounding noise (3526.0000000000005 over 3526.0).
        bound=None if bound is None else min(bound, objective),
        mip_gap=gap,
        solve_ms=solve_ms,
        variables=model.num_col,
        constraints=model.num_row,
    )


def evaluate(problem: AssignmentProblem, assignments: Iterable[Assignment]) -> float:
    """What ``assignments`` cost under ``problem``'s objective, backorder penalties included.

    Raises ``ValueError`` when they break a constraint: an unknown line or node, a negative quantity, more
    than a line's quantity, more than a node's ATP of a SKU or its capacity, more nodes than the split limit,
    or units left unassigned when backorders are not allowed.
    """
    _validate(problem)
    lines = {line.line_id: line for line in problem.lines}
    nodes = {node.node_id: node for node in problem.nodes}
    by_line: dict[str, int] = {}
    by_node: dict[str, int] = {}
    by_node_sku: dict[tuple[str, str], int] = {}
    costs: list[float] = []
    for a in assignments:
        line, node = lines.get(a.line_id), nodes.get(a.node_id)
        if line is None:
            raise ValueError(f"unknown line {a.line_id!r}")
        if node is None:
            raise ValueError(f"unknown node {a.node_id!r}")
        if a.quantity < 0:
            raise ValueError(f"negative quantity {a.quantity} of line {a.line_id!r} from node {a.node_id!r}")
        if a.quantity == 0:
            continue
        by_line[a.line_id] = by_line.get(a.line_id, 0) + a.quantity
        by_node[a.node_id] = by_node.get(a.node_id, 0) + a.quantity
        key = (a.node_id, line.sku)
        by_node_sku[key] = by_node_sku.get(key, 0) + a.quantity
        costs.append(node.unit_cost.get(line.sku, 0.0) * a.quantity)

    for (node_id, sku), units in sorted(by_node_sku.items()):
        atp = max(nodes[node_id].atp.get(sku, 0), 0)
        if units > atp:
            raise ValueError(f"node {node_id!r} ships {units} x {sku} but has {atp} available")
    for node_id, units in sorted(by_node.items()):
        cap = nodes[node_id].max_units
        if cap is not None and units > max(cap, 0):
            raise ValueError(f"node {node_id!r} ships {units} units but can ship {cap} today")
        costs.append(nodes[node_id].shipment_cost)
    if problem.max_shipments is not None and len(by_node) > problem.max_shipments:
        raise ValueError(f"{len(by_node)} nodes ship but at most {problem.max_shipments} may")

    penalty = problem.backorder_cost_per_unit
    for line in problem.lines:
        units = by_line.get(line.line_id, 0)
        if units > line.quantity:
            raise ValueError(f"line {line.line_id!r} is assigned {units} units but asks for {line.quantity}")
        if units < line.quantity:
            if penalty is None:
                raise ValueError(f"line {line.line_id!r} is assigned {units} of {line.quantity} units")
            costs.append(penalty * (line.quantity - units))
    return math.fsum(costs)


# --- the model ---------------------------------------------------------------------------------------------


@dataclass
class _Model:
    """The programme as one column-wise HiGHS LP with integrality, and how its columns map back to the problem.

    Columns: the pairs ``x`` (node-major), then ``y`` for each node with a pair, then ``u`` per line when
    backorders are allowed. Rows: coverage, ATP, linking, capacity, split limit; in that order, so each
    column's row indices come out sorted.
    """

    problem: AssignmentProblem
    pair_line: list[int] = field(default_factory=list)
    pair_node: list[int] = field(default_factory=list)
    pair_upper: list[int] = field(default_factory=list)
    used_nodes: list[int] = field(default_factory=list)  # nodes with a pair, in order: the y columns
    backorder_lines: list[int] = field(default_factory=list)  # lines with a u column, in order
    lp: highspy.HighsLp = field(default_factory=highspy.HighsLp)

    @property
    def num_col(self) -> int:
        return self.lp.num_col_

    @property
    def num_row(self) -> int:
        return self.lp.num_row_

    @classmethod
    def build(cls, problem: AssignmentProblem) -> _Model:
        m = cls(problem)
        lines, nodes = problem.lines, problem.nodes
        inf = highspy.kHighsInf
        penalty = problem.backorder_cost_per_unit

        # The pairs, and per node the slices of them and the rows the column bounds do not already imply.
        node_pairs: list[tuple[int, int, int]] = []  # (node index, first pair, end pair) for nodes with pairs
        atp_groups: list[tuple[list[int], int]] = []  # (pairs sharing a SKU at a node, that ATP)
        capacity_nodes: list[tuple[int, int]] = []  # (index into node_pairs, capacity)
        for j, node in enumerate(nodes):
            cap = node.max_units
            first = len(m.pair_line)
            by_sku: dict[str, list[int]] = {}
            for i, line in enumerate(lines):
                upper = min(line.quantity, node.atp.get(line.sku, 0))
                if cap is not None:
                    upper = min(upper, cap)
                if upper > 0:
                    by_sku.setdefault(line.sku, []).append(len(m.pair_line))
                    m.pair_line.append(i)
                    m.pair_node.append(j)
                    m.pair_upper.append(upper)
            end = len(m.pair_line)
            if end == first:
                continue
            for sku, pairs in by_sku.items():
                atp = node.atp[sku]
                if len(pairs) > 1 and sum(m.pair_upper[p] for p in pairs) > atp:
                    atp_groups.append((pairs, atp))
            if cap is not None and sum(m.pair_upper[first:end]) > cap:
                capacity_nodes.append((len(node_pairs), cap))
            node_pairs.append((j, first, end))

        n_pairs, n_used = len(m.pair_line), len(node_pairs)
        demanded = [i for i, line in enumerate(lines) if line.quantity > 0]
        m.used_nodes = [j for j, _, _ in node_pairs]
        m.backorder_lines = demanded if penalty is not None else []
        limit = problem.max_shipments
        split_row = limit is not None and limit < n_used

        # Row indices and bounds.
        coverage_row = {i: r for r, i in enumerate(demanded)}
        row_lower: list[float] = [float(lines[i].quantity) for i in demanded]
        row_upper: list[float] = list(row_lower)
        atp_row = [-1] * n_pairs
        for pairs, atp in atp_groups:
            for p in pairs:
                atp_row[p] = len(row_lower)
            row_lower.append(-inf)
            row_upper.append(float(atp))
        link_base = len(row_lower)
        row_lower.extend([-inf] * n_pairs)
        row_upper.extend([0.0] * n_pairs)
        capacity_row: dict[int, tuple[int, int]] = {}  # index into node_pairs -> (row, capacity)
        for k, cap in capacity_nodes:
            capacity_row[k] = (len(row_lower), cap)
            row_lower.append(-inf)
            row_upper.append(0.0)
        split_index = len(row_lower)
        if split_row:
            row_lower.append(-inf)
            row_upper.append(float(limit or 0))

        # Columns, with the matrix column by column.
        cost: list[float] = []
        col_start: list[int] = [0]
        index: list[int] = []
        value: list[float] = []
        node_capacity_row = [-1] * n_pairs
        for k, (_, first, end) in enumerate(node_pairs):
            if k in capacity_row:
                node_capacity_row[first:end] = [capacity_row[k][0]] * (end - first)
        for p in range(n_pairs):
            line = lines[m.pair_line[p]]
            cost.append(float(nodes[m.pair_node[p]].unit_cost.get(line.sku, 0.0)))
            index.append(coverage_row[m.pair_line[p]])
            if atp_row[p] >= 0:
                index.append(atp_row[p])
            index.append(link_base + p)
            if node_capacity_row[p] >= 0:
                index.append(node_capacity_row[p])
            value.extend([1.0] * (len(index) - len(value)))
            col_start.append(len(index))
        for k, (j, first, end) in enumerate(node_pairs):
            cost.append(float(nodes[j].shipment_cost))
            index.extend(range(link_base + first, link_base + end))
            value.extend(-float(u) for u in m.pair_upper[first:end])
            if k in capacity_row:
                row, cap = capacity_row[k]
                index.append(row)
                value.append(-float(cap))
            if split_row:
                index.append(split_index)
                value.append(1.0)
            col_start.append(len(index))
        col_lower = [0.0] * (n_pairs + n_used)
        col_upper = [float(u) for u in m.pair_upper] + [1.0] * n_used
        integrality = [highspy.HighsVarType.kInteger] * (n_pairs + n_used)
        if penalty is not None:
            for i in demanded:
                cost.append(float(penalty))
                col_lower.append(0.0)
                col_upper.append(float(lines[i].quantity))
                integrality.append(highspy.HighsVarType.kContinuous)  # integral anyway: q_l minus integers
                index.append(coverage_row[i])
                value.append(1.0)
                col_start.append(len(index))

        lp = m.lp
        lp.num_col_, lp.num_row_ = len(cost), len(row_lower)
        lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lower, col_upper
        lp.row_lower_, lp.row_upper_ = row_lower, row_upper
        lp.integrality_ = integrality
        matrix = lp.a_matrix_
        matrix.format_ = highspy.MatrixFormat.kColwise
        matrix.num_col_, matrix.num_row_ = lp.num_col_, lp.num_row_
        matrix.start_, matrix.index_, matrix.value_ = col_start, index, value
        lp.a_matrix_ = matrix
        return m

    def start(self, assignments: Iterable[Assignment]) -> highspy.HighsSolution:
        """A full column vector for a feasible assignment (checked by ``evaluate``), for HiGHS to start from."""
        line_index = {line.line_id: i for i, line in enumerate(self.problem.lines)}
        node_index = {node.node_id: j for j, node in enumerate(self.problem.nodes)}
        pair = {(i, j): p for p, (i, j) in enumerate(zip(self.pair_line, self.pair_node, strict=True))}
        n_pairs = len(self.pair_line)
        y_column = {j: n_pairs + k for k, j in enumerate(self.used_nodes)}
        values = [0.0] * self.num_col
        assigned = [0] * len(self.problem.lines)
        for a in assignments:
            if a.quantity > 0:
                i, j = line_index[a.line_id], node_index[a.node_id]
                values[pair[i, j]] += a.quantity
                values[y_column[j]] = 1.0
                assigned[i] += a.quantity
        for k, i in enumerate(self.backorder_lines):
            values[n_pairs + len(self.used_nodes) + k] = float(self.problem.lines[i].quantity - assigned[i])
        solution = highspy.HighsSolution()
        solution.col_value = values
        solution.value_valid = True
        return solution

    def assignments(self, values: Sequence[float]) -> tuple[Assignment, ...]:
        lines, nodes = self.problem.lines, self.problem.nodes
        found = [
            (self.pair_line[p], nodes[self.pair_node[p]].node_id, round(values[p]))
            for p in range(len(self.pair_line))
            if round(values[p]) > 0
        ]
        found.sort(key=lambda f: (f[0], f[1]))
        return tuple(Assignment(lines[i].line_id, node_id, units) for i, node_id, units in found)


# --- helpers -----------------------------------------------------------------------------------------------


def _validate(problem: AssignmentProblem) -> None:
    """Reject what no caller should send: ids used twice, negative quantities or limits, costs that are not
    numbers."""
    seen_lines: set[str] = set()
    for line in problem.lines:
        if line.line_id in seen_lines:
            raise ValueError(f"line {line.line_id!r} appears twice")
        if line.quantity < 0:
            raise ValueError(f"line {line.line_id!r} has a negative quantity")
        seen_lines.add(line.line_id)
    seen_nodes: set[str] = set()
    for node in problem.nodes:
        if node.node_id in seen_nodes:
            raise ValueError(f"node {node.node_id!r} appears twice")
        seen_nodes.add(node.node_id)
        if not (math.isfinite(node.shipment_cost) and all(math.isfinite(c) for c in node.unit_cost.values())):
            raise ValueError(f"node {node.node_id!r} has a cost that is not a finite number")
    if problem.max_shipments is not None and problem.max_shipments < 0:
        raise ValueError("max_shipments cannot be negative")
    penalty = problem.backorder_cost_per_unit
    if penalty is not None and not math.isfinite(penalty):
        raise ValueError("backorder_cost_per_unit must be a finite number")


def _obviously_short(problem: AssignmentProblem) -> bool:
    """True when every unit is required but some SKU, or the order as a whole, needs more than the nodes can
    ship: all of them, or the ``max_shipments`` that can ship the most. Infeasible without asking HiGHS (whose
    presolve can spend a whole budget on such a model); False proves nothing."""
    demand: dict[str, int] = {}
    for line in problem.lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    total = sum(demand.values())
    if total == 0:
        return False
    by_sku: dict[str, list[int]] = {sku: [] for sku in demand}
    by_node: list[int] = []
    for node in problem.nodes:
        cap = total if node.max_units is None else max(node.max_units, 0)
        offered = 0
        for sku, wanted in demand.items():
            units = min(max(node.atp.get(sku, 0), 0), cap, wanted)
            if units:
                by_sku[sku].append(units)
                offered += units
        by_node.append(min(offered, cap))
    k = len(problem.nodes) if problem.max_shipments is None else problem.max_shipments
    return sum(heapq.nlargest(k, by_node)) < total or any(
        sum(heapq.nlargest(k, by_sku[sku])) < wanted for sku, wanted in demand.items()
    )


def _solver(time_limit_s: float) -> highspy.Highs:
    highs: highspy.Highs = highspy.Highs()  # type: ignore[no-untyped-call]  # the constructor lacks annotations
    for name, option in (
        ("output_flag", False),
        ("log_to_console", False),
        ("time_limit", float(time_limit_s)),
        ("threads", 1),
        ("random_seed", RANDOM_SEED),
        ("mip_rel_gap", 0.0),
        # The model is already tight (no redundant rows, disaggregated linking); on 1,000-node networks
        # presolve's probing of the binaries took 0.4-2 s, often the whole budget, and off reached the same
        # optimum 1-8x sooner.
        ("presolve", "off"),
    ):
        if highs.setOptionValue(name, option) != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS refused option {name}={option!r}")
    return highs


# Stops that leave whatever incumbent HiGHS had: FEASIBLE with one, NO_SOLUTION without.
_LIMITS = frozenset(
    {
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kSolutionLimit,
        highspy.HighsModelStatus.kInterrupt,
        highspy.HighsModelStatus.kMemoryLimit,
        highspy.HighsModelStatus.kObjectiveBound,
        highspy.HighsModelStatus.kObjectiveTarget,
        highspy.HighsModelStatus.kUnknown,
    }
)


def _status(model_status: highspy.HighsModelStatus, has_incumbent: bool, text: str) -> SolveStatus:
    if model_status == highspy.HighsModelStatus.kOptimal and has_incumbent:
        return SolveStatus.OPTIMAL
    # Every variable is bounded, so "unbounded or infeasible" can only be infeasible.
    if model_status in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return SolveStatus.INFEASIBLE
    if model_status in _LIMITS:
        return SolveStatus.FEASIBLE if has_incumbent else SolveStatus.NO_SOLUTION
    raise RuntimeError(f"HiGHS ended the solve with model status {text!r}")


def _unsolved(status: SolveStatus, *, variables: int, constraints: int, solve_ms: float) -> SolveResult:
    return SolveResult(status, (), {}, None, None, None, solve_ms, variables, constraints)


def _finite(number: float) -> float | None:
    return number if math.isfinite(number) else None
