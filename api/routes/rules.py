"""The rules API: an administrator's view of the sourcing policy (``domain.policy``) and its versions.

A policy goes through: **validate** (is it a policy? does it name only nodes that exist? what in it can never
apply?) → **create** a version (a draft: stored, immutable, not in force) → **diff** it against what is in
force → **simulate** it on real orders → **activate** it. **Rollback** undoes the last activation. Every change
is journaled with who (the ``X-Actor`` header, taken on trust until API keys exist) and why (a required
``note`` or ``reason``). Until a version is activated, the built-in policy (``builtin``) is in force.

A document that is not a valid policy, or names a node the network does not have, is refused with 422 in the
one error shape, each error's ``field`` being the path inside the request (``document.profiles.0.strategies.1
.ranking.2``), and nothing is stored: a refused document never gets a version, so it can never be activated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Path, Query, Response, status
from starlette.concurrency import run_in_threadpool

from api.auth import ActorDep
from api.deps import GeocoderDep, UowDep
from api.errors import ApiError, validation_error
from api.network_schemas import Page
from api.rules_schemas import (
    ActivePolicyPublic,
    ChangePublic,
    PolicyCheck,
    PolicyCheckResult,
    PolicyDiffPublic,
    PolicyEventPublic,
    PolicyVersionCreate,
    PolicyVersionCreated,
    PolicyVersionPublic,
    PolicyVersionSummary,
    PolicyWarningPublic,
    ReasonBody,
    SimulatedOrder,
    SimulationPublic,
    SimulationRequest,
    SkippedOrder,
)
from domain import sourcing
from domain.errors import BusinessError
from domain.network import NetworkSnapshot, NodeStatus
from domain.orders import GeoPoint, Order
from domain.policy import BUILTIN_POLICY, BUILTIN_VERSION, PolicyDocument
from domain.policy_checks import node_references, warnings
from domain.policy_diff import diff_documents
from domain.simulation import OrderComparison, Outcome, compare, summarise
from infra.db.policies import (
    ActivePolicy,
    AlreadyActive,
    NothingToRollBack,
    UnknownPolicyVersion,
    checksum,
    version_label,
)
from infra.db.uow import UnitOfWork

router = APIRouter(prefix="/rules", tags=["rules"])
log = structlog.get_logger(__name__)

VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="the version number (3 for v3)")]
Limit = Annotated[int, Query(ge=1, le=500, description="page size")]
Against = Annotated[
    str,
    Query(
        pattern=r"^(active|builtin|[1-9][0-9]{0,9})$",
        description="`active` (the policy in force), `builtin`, or a version number",
    ),
]
Source = Literal["supplied", "recent"]

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such version"}}
_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"description": "not a valid policy, or names unknown nodes: each error's field is its path; nothing stored"}
}


def _not_found(version: int) -> ApiError:
    return ApiError(404, f"policy version {version} ({version_label(version)}) not found")


async def _check(uow: UnitOfWork, document: PolicyDocument) -> list[PolicyWarningPublic]:
    """Refuse (422 by path) a document naming nodes the network does not have; warn about paused ones and
    about rules that can never apply."""
    references = node_references(document)
    statuses = await uow.policies.node_statuses(r.node_id for r in references)
    unknown = [r for r in references if r.node_id not in statuses]
    if unknown:
        raise validation_error(
            [
                {
                    "loc": ("body", "document", *r.path.split(".")),
                    "msg": f"unknown node {r.node_id}: the network has no such node",
                    "type": "unknown_reference",
                }
                for r in unknown
            ],
            "policy",
        )
    found = [PolicyWarningPublic.from_domain(w) for w in warnings(document, datetime.now(UTC))]
    found += [
        PolicyWarningPublic(path=f"document.{r.path}", message=f"node {r.node_id} is paused: it is not used")
        for r in references
        if statuses[r.node_id] is NodeStatus.PAUSED
    ]
    return found


# --- the language --------------------------------------------------------------------------------------------


@router.get("/schema", response_model=dict[str, Any])
async def policy_schema() -> dict[str, Any]:
    """The JSON Schema of a policy document (``PolicyDocument``); docs/rules.md explains it with examples."""
    return PolicyDocument.model_json_schema()


@router.post("/validate", response_model=PolicyCheckResult, responses=_REFUSED)
async def validate_policy(body: PolicyCheck, uow: UowDep) -> PolicyCheckResult:
    """Check a document without storing it: 200 with warnings (legal but surely a mistake), or 422 by path."""
    digest = checksum(body.document)
    async with uow:
        found = await _check(uow, body.document)
        identical = await uow.policies.identical_to(digest)
    return PolicyCheckResult(warnings=found, checksum=digest, identical_to=identical)


# --- versions ------------------------------------------------------------------------------------------------


@router.post(
    "/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyVersionCreated,
    responses={**_REFUSED, 201: {"description": "stored as the next version, a draft (not in force)"}},
)
async def create_version(
    body: PolicyVersionCreate, response: Response, uow: UowDep, actor: ActorDep
) -> PolicyVersionCreated:
    """Store the document as the next version, a draft. It is in force only once activated."""
    async with uow:
        found = await _check(uow, body.document)
        try:
            record = await uow.policies.create(body.document, actor=actor, note=body.note, based_on=body.based_on)
        except UnknownPolicyVersion as err:
            raise validation_error(
                [
                    {
                        "loc": ("body", "based_on"),
                        "msg": f"policy version {err.version} not found",
                        "type": "unknown_reference",
                    }
                ],
                "policy version",
            ) from None
        identical = [v for v in await uow.policies.identical_to(record.checksum) if v != record.version]
        await uow.commit()
    response.headers["Location"] = f"/rules/versions/{record.version}"
    return PolicyVersionCreated(
        **PolicyVersionPublic.from_domain(record).model_dump(), identical_to=identical, warnings=found
    )


@router.get("/versions", response_model=Page[PolicyVersionSummary])
async def list_versions(
    uow: UowDep,
    after: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="the last version seen (`next_after`)")] = None,
    limit: Limit = 100,
) -> Page[PolicyVersionSummary]:
    """Versions, newest first, each with its status; documents are left out (``GET /rules/versions/{n}``)."""
    async with uow:
        records = await uow.policies.list(before=after, limit=limit + 1)
    page = records[:limit]
    next_after = str(page[-1].version) if len(records) > limit else None
    return Page(items=[PolicyVersionSummary.from_domain(r) for r in page], next_after=next_after)


@router.get("/versions/{version}", response_model=PolicyVersionPublic, responses=_NOT_FOUND)
async def get_version(version: VersionPath, uow: UowDep) -> PolicyVersionPublic:
    async with uow:
        record = await uow.policies.get(version)
    if record is None:
        raise _not_found(version)
    return PolicyVersionPublic.from_domain(record)


@router.get("/active", response_model=ActivePolicyPublic)
async def get_active(uow: UowDep) -> ActivePolicyPublic:
    """The policy in force: the last version activated (or rolled back to), else the built-in policy."""
    async with uow:
        active = await uow.policies.active()
    return ActivePolicyPublic.from_domain(active)


@router.get("/versions/{version}/diff", response_model=PolicyDiffPublic, responses=_NOT_FOUND)
async def diff_version(version: VersionPath, uow: UowDep, against: Against = "active") -> PolicyDiffPublic:
    """What changes going from ``against`` to this version. Paths name list items by ``[id]`` where items have
    ids (profiles, strategies, shipping methods), else by index; ``reordered`` gives a list's ids in each order;
    lists of plain values are compared whole."""
    async with uow:
        record = await uow.policies.get(version)
        if record is None:
            raise _not_found(version)
        if against == "active":
            active = await uow.policies.active()
            base_label, base = active.version_label, active.document
        elif against == BUILTIN_VERSION:
            base_label, base = BUILTIN_VERSION, BUILTIN_POLICY
        else:
            other = await uow.policies.get(int(against))
            if other is None:
                raise _not_found(int(against))
            base_label, base = other.label, other.document
    changes = diff_documents(base, record.document)
    return PolicyDiffPublic(
        version_label=record.label,
        against=base_label,
        identical=not changes,
        changes=[ChangePublic.from_domain(c) for c in changes],
    )


# --- what is in force ----------------------------------------------------------------------------------------


@router.post(
    "/versions/{version}/activate",
    response_model=PolicyEventPublic,
    responses={**_NOT_FOUND, 409: {"description": "this version is already the active one"}},
)
async def activate_version(version: VersionPath, body: ReasonBody, uow: UowDep, actor: ActorDep) -> PolicyEventPublic:
    """Put this version in force for every plan made from now on (plans already made keep theirs)."""
    async with uow:
        try:
            event = await uow.policies.activate(version, actor=actor, reason=body.reason)
        except UnknownPolicyVersion:
            raise _not_found(version) from None
        except AlreadyActive as err:
            raise ApiError(409, str(err), active_version_label=err.active.version_label) from None
        await uow.commit()
    return PolicyEventPublic.from_domain(event)


@router.post(
    "/rollback",
    response_model=PolicyEventPublic,
    responses={409: {"description": "no earlier version to go back to"}},
)
async def rollback(body: ReasonBody, uow: UowDep, actor: ActorDep) -> PolicyEventPublic:
    """Undo the last activation: the version in force before it is in force again."""
    async with uow:
        try:
            event = await uow.policies.rollback(actor=actor, reason=body.reason)
        except NothingToRollBack as err:
            raise ApiError(409, str(err), active_version_label=err.active.version_label) from None
        await uow.commit()
    return PolicyEventPublic.from_domain(event)


@router.get("/journal", response_model=Page[PolicyEventPublic])
async def journal(
    uow: UowDep,
    version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only this version's events")] = None,
    after: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="the last event id seen (`next_after`)")] = None,
    limit: Limit = 100,
) -> Page[PolicyEventPublic]:
    """Every change to policies, newest first: created, activated, rolled_back, with who and why."""
    async with uow:
        events = await uow.policies.journal(version=version, before=after, limit=limit + 1)
    page = events[:limit]
    next_after = str(page[-1].id) if len(events) > limit else None
    return Page(items=[PolicyEventPublic.from_domain(e) for e in page], next_after=next_after)


# --- simulation ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Case:
    order: Order
    destination: GeoPoint | None
    source: Source
    snapshot: NetworkSnapshot | None = None
    skipped: str | None = None


def _outcome(case: _Case, snapshot: NetworkSnapshot, document: PolicyDocument, label: str, now: datetime) -> Outcome:
    try:
        decided = sourcing.plan(case.order, snapshot, document, now, destination=case.destination, policy_version=label)
    except BusinessError as err:
        return Outcome.unfulfillable(err.message)
    return Outcome.planned(decided, now.astimezone(UTC).date())


def _replan(
    cases: Sequence[_Case], active: ActivePolicy, candidate: PolicyDocument, label: str, now: datetime
) -> list[OrderComparison]:
    """Both sides of every case, on its one snapshot, in order: pure and CPU-bound, so it runs off the event
    loop."""
    comparisons: list[OrderComparison] = []
    for case in cases:
        if case.snapshot is None:
            raise ValueError(f"order {case.order.order_id} has no network snapshot to plan on")
        comparisons.append(
            compare(
                case.order.order_id,
                case.order.currency,
                _outcome(case, case.snapshot, active.document, active.version_label, now),
                _outcome(case, case.snapshot, candidate, label, now),
            )
        )
    return comparisons


async def _with_snapshots(uow: UnitOfWork, cases: Sequence[_Case], now: datetime) -> list[_Case]:
    """Each case with the network as it is now for its order; an order naming unknown SKUs is skipped."""
    known = await uow.catalog.known_skus({line.sku for case in cases for line in case.order.lines})
    ready: list[_Case] = []
    for case in cases:
        unknown = sorted({line.sku for line in case.order.lines} - known)
        if unknown:
            reason = f"unknown SKU(s): {', '.join(unknown)}"
            ready.append(_Case(case.order, case.destination, case.source, skipped=reason))
            continue
        snapshot = await uow.inventory.snapshot_for_order(case.order, now=now, pickup_node_id=None)
        ready.append(_Case(case.order, case.destination, case.source, snapshot=snapshot))
    return ready


@router.post("/versions/{version}/simulate", response_model=SimulationPublic, responses=_NOT_FOUND)
async def simulate(
    version: VersionPath, body: SimulationRequest, uow: UowDep, geocoder: GeocoderDep
) -> SimulationPublic:
    """Re-plan orders under the active policy and under this version, on the same network snapshot and the
    same ``now``, and say per order what changed, with each side's totals. Nothing is reserved or recorded.

    Supplied orders are planned as ``POST /orders`` would plan them (destination: ``ship_to.location``, else
    the address geocoded); recent ones as they were asked for, as the order placed (first attempt, no node
    excluded), from the plans recorded with their request.
    """
    now = datetime.now(UTC)
    supplied = [o.to_domain(now) for o in body.orders or []]
    # The geocoder builds its index of places on first use: not on the event loop.
    located = await run_in_threadpool(lambda: [geocoder.locate(order.ship_to) for order in supplied])
    cases = [_Case(order, where, "supplied") for order, where in zip(supplied, located, strict=True)]
    async with uow:
        record = await uow.policies.get(version)
        if record is None:
            raise _not_found(version)
        active = await uow.policies.active()
        if wanted := body.recent_wanted():
            recent = await uow.policies.recent_plan_requests(wanted)
            cases += [_Case(r.order, r.destination, "recent") for r in recent]
        cases = await _with_snapshots(uow, cases, now)
    planned = [c for c in cases if c.skipped is None]
    comparisons = await run_in_threadpool(_replan, planned, active, record.document, record.label, now)
    summary = summarise(comparisons)
    log.info(
        "policy simulated",
        version=record.label,
        active=active.version_label,
        orders=summary.orders,
        changed=summary.changed,
        skipped=len(cases) - len(planned),
    )
    return SimulationPublic(
        version_label=record.label,
        active_version_label=active.version_label,
        now=now,
        summary=summary,
        orders=[SimulatedOrder.from_domain(c, case.source) for c, case in zip(comparisons, planned, strict=True)],
        skipped=[
            SkippedOrder(order_id=c.order.order_id, source=c.source, reason=c.skipped)
            for c in cases
            if c.skipped is not None
        ],
    )
