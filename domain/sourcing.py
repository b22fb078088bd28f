"""The sourcing engine: which node(s) fulfil which lines, and why.

``plan`` is pure and deterministic: the same order, snapshot and exclusions always give the same plan,
so a workflow can record it once and a replay never disagrees. The ranking here is the built-in default
(one node for the whole order if any can, nearest first; otherwise the fewest, nearest nodes line by line);
the policy language replaces the ranking without changing the shapes below.
"""

from __future__ import annotations

from collections.abc import Collection

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import OutOfStock
from domain.network import Capability, NetworkSnapshot, NodeStatus, NodeView, haversine_km
from domain.orders import GeoPoint, Order

DEFAULT_RULE = "builtin:single-node-nearest-then-split"


class Allocation(BaseModel):
    """Units of one order line taken from one node."""

    model_config = ConfigDict(frozen=True)

    line_id: str
    sku: str
    node_id: str
    quantity: int = Field(gt=0)


class PlannedShipment(BaseModel):
    model_config = ConfigDict(frozen=True)

    shipment_id: str
    node_id: str
    allocations: list[Allocation]
    distance_km: float | None = None


class CandidateVerdict(BaseModel):
    """What the engine thought of one node: kept with a score, or removed and why."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    eliminated_by: str | None = None
    reason: str | None = None
    distance_km: float | None = None
    rank: int | None = None


class Explanation(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    policy_version: str
    candidates: list[CandidateVerdict]
    decision: str


class Plan(BaseModel):
    model_config = ConfigDict(frozen=True)

    plan_id: str
    attempt: int
    shipments: list[PlannedShipment]
    explanation: Explanation

    @property
    def allocations(self) -> list[Allocation]:
        return [a for s in self.shipments for a in s.allocations]

    @property
    def node_ids(self) -> list[str]:
        return [s.node_id for s in self.shipments]


def plan_id(order_id: str, attempt: int) -> str:
    """Business identity of a plan: one decision per order and attempt, recorded once."""
    return f"{order_id}:plan-{attempt}"


def shipment_id(order_id: str, attempt: int, node_id: str) -> str:
    """Business identity of a shipment: the same plan attempt at the same node is the same shipment."""
    return f"{order_id}:p{attempt}:{node_id}"


def _distance(node: NodeView, destination: GeoPoint | None) -> float | None:
    return None if destination is None else round(haversine_km(node.location, destination), 1)


def _sort_key(node: NodeView, destination: GeoPoint | None) -> tuple[float, int, str]:
    distance = _distance(node, destination)
    return (distance if distance is not None else 0.0, node.priority, node.node_id)


def plan(
    order: Order,
    snapshot: NetworkSnapshot,
    *,
    destination: GeoPoint | None,
    attempt: int = 1,
    excluded_nodes: Collection[str] = (),
    policy_version: str = "builtin",
) -> Plan:
    """Decide where each line comes from. Raises ``OutOfStock`` with a per-SKU shortfall when it cannot."""
    needed = order.quantities_by_sku()
    verdicts: dict[str, CandidateVerdict] = {}
    eligible: list[NodeView] = []
    for node in sorted(snapshot.nodes, key=lambda n: n.node_id):
        distance = _distance(node, destination)
        if node.node_id in excluded_nodes:
            verdicts[node.node_id] = CandidateVerdict(
                node_id=node.node_id,
                eliminated_by="excluded",
                reason="excluded after a failure there",
                distance_km=distance,
            )
        elif node.status is not NodeStatus.ACTIVE:
            verdicts[node.node_id] = CandidateVerdict(
                node_id=node.node_id, eliminated_by="status", reason=f"node is {node.status}", distance_km=distance
            )
        elif Capability.SHIP not in node.capabilities:
            verdicts[node.node_id] = CandidateVerdict(
                node_id=node.node_id, eliminated_by="capability", reason="node cannot ship", distance_km=distance
            )
        elif not any(snapshot.atp_of(node.node_id, sku) > 0 for sku in needed):
            verdicts[node.node_id] = CandidateVerdict(
                node_id=node.node_id,
                eliminated_by="stock",
                reason="no stock of any ordered SKU",
                distance_km=distance,
            )
        else:
            eligible.append(node)

    eligible.sort(key=lambda n: _sort_key(n, destination))

    # First choice: one node that has everything, nearest first.
    complete = [n for n in eligible if all(snapshot.atp_of(n.node_id, s) >= q for s, q in needed.items())]
    if complete:
        chosen = complete[0]
        for rank, node in enumerate(eligible, start=1):
            if node in complete:
                verdicts[node.node_id] = CandidateVerdict(
                    node_id=node.node_id, distance_km=_distance(node, destination), rank=rank
                )
            else:
                short = sorted(s for s, q in needed.items() if snapshot.atp_of(node.node_id, s) < q)
                verdicts[node.node_id] = CandidateVerdict(
                    node_id=node.node_id,
                    eliminated_by="single-node-fill",
                    reason=f"short of {', '.join(short)}",
                    distance_km=_distance(node, destination),
                    rank=rank,
                )
        shipment = PlannedShipment(
            shipment_id=shipment_id(order.order_id, attempt, chosen.node_id),
            node_id=chosen.node_id,
            allocations=[
                Allocation(line_id=line.line_id, sku=line.sku, node_id=chosen.node_id, quantity=line.quantity)
                for line in order.lines
            ],
            distance_km=_distance(chosen, destination),
        )
        return Plan(
            plan_id=plan_id(order.order_id, attempt),
            attempt=attempt,
            shipments=[shipment],
            explanation=Explanation(
                rule=DEFAULT_RULE,
                policy_version=policy_version,
                candidates=[verdicts[k] for k in sorted(verdicts)],
                decision=(
                    f"{chosen.node_id} can fill the whole order and is the nearest such node"
                    if destination is not None
                    else f"{chosen.node_id} can fill the whole order and ranks first by priority "
                    "(destination not located, so distance was not used)"
                ),
            ),
        )

    # Otherwise split: each line from the nearest nodes that have it, preferring nodes already used.
    remaining_atp = {n.node_id: {s: snapshot.atp_of(n.node_id, s) for s in needed} for n in eligible}
    used: list[str] = []
    allocations: list[Allocation] = []
    shortfall: dict[str, int] = {}
    for line in order.lines:
        left = line.quantity
        ordered = sorted(eligible, key=lambda n: (n.node_id not in used, *_sort_key(n, destination)))
        for node in ordered:
            take = min(left, remaining_atp[node.node_id][line.sku])
            if take <= 0:
                continue
            allocations.append(Allocation(line_id=line.line_id, sku=line.sku, node_id=node.node_id, quantity=take))
            remaining_atp[node.node_id][line.sku] -= take
            left -= take
            if node.node_id not in used:
                used.append(node.node_id)
            if left == 0:
                break
        if left:
            shortfall[line.sku] = shortfall.get(line.sku, 0) + left
    if shortfall:
        detail = ", ".join(f"{sku} short by {qty}" for sku, qty in sorted(shortfall.items()))
        raise OutOfStock(f"not enough stock in the network: {detail}", details=shortfall)

    for rank, node in enumerate(eligible, start=1):
        verdicts[node.node_id] = CandidateVerdict(
            node_id=node.node_id,
            distance_km=_distance(node, destination),
            rank=rank,
            eliminated_by=None if node.node_id in used else "split-not-needed",
        )
    shipments = [
        PlannedShipment(
            shipment_id=shipment_id(order.order_id, attempt, node_id),
            node_id=node_id,
            allocations=[a for a in allocations if a.node_id == node_id],
            distance_km=_distance(next(n for n in eligible if n.node_id == node_id), destination),
        )
        for node_id in used
    ]
    return Plan(
        plan_id=plan_id(order.order_id, attempt),
        attempt=attempt,
        shipments=shipments,
        explanation=Explanation(
            rule=DEFAULT_RULE,
            policy_version=policy_version,
            candidates=[verdicts[k] for k in sorted(verdicts)],
            decision=f"no single node has every line; split across {', '.join(used)} nearest first",
        ),
    )
