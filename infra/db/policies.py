"""Sourcing policy versions and their journal: created as drafts, activated, rolled back, never changed.

- A **version** is an immutable, validated ``PolicyDocument``, numbered 1, 2, 3 … in the order they were created
  (no gaps: a refused or rolled-back create uses no number). Nothing updates or deletes one; the database's
  triggers refuse it as well.
- The **journal** (``policy_event``) records every change with who made it and why. The active version is the
  version of the latest ``activated`` / ``rolled_back`` event; with none, the built-in policy is in force.
- **Rollback** is undo: activations form a stack (``activated`` pushes a version, ``rolled_back`` pops one), and
  a rollback re-activates the version under the top. Activate v1, v2, v3, then roll back twice: v2, then v1; a
  third rollback is refused (``NothingToRollBack``), as v1 replaced the built-in policy, which is not a version.

Every change takes one transaction-scoped advisory lock first, so creates and activations run one at a time:
version numbers come out in order and each journal entry is written knowing the one before it. Readers never
wait. The caller commits (``UnitOfWork.commit``).
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import Row, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.network import NodeStatus
from domain.orders import GeoPoint, Order
from domain.policy import BUILTIN_POLICY, BUILTIN_VERSION, PolicyDocument
from infra.db.tables import Node, OrderPlan, PolicyEvent, PolicyVersion

log = structlog.get_logger(__name__)

_LOCK_KEY = "sourcing-policy"
ACTIVATING = ("activated", "rolled_back")


class PolicyAction(StrEnum):
    CREATED = "created"
    ACTIVATED = "activated"
    ROLLED_BACK = "rolled_back"


class PolicyStatus(StrEnum):
    ACTIVE = "active"
    DRAFT = "draft"  # never activated
    RETIRED = "retired"  # was active, is not now


def version_label(version: int | None) -> str:
    """How plans and people name a version: ``v3``, or ``builtin`` for the policy in force before any."""
    return BUILTIN_VERSION if version is None else f"v{version}"


def checksum(document: PolicyDocument) -> str:
    """sha256 of the document's canonical JSON (defaults filled in, keys sorted): equal policies, equal sums."""
    canonical = json.dumps(document.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ActivePolicy:
    """The policy in force: a stored version, or the built-in one (``version`` None, label ``builtin``)."""

    version_label: str
    version: int | None
    document: PolicyDocument
    activated_at: datetime | None = None
    activated_by: str | None = None
    reason: str | None = None


BUILTIN = ActivePolicy(version_label=BUILTIN_VERSION, version=None, document=BUILTIN_POLICY)


@dataclass(frozen=True)
class PolicyVersionRecord:
    version: int
    document: PolicyDocument
    checksum: str
    based_on: int | None
    note: str
    created_by: str
    created_at: datetime
    status: PolicyStatus

    @property
    def label(self) -> str:
        return version_label(self.version)


@dataclass(frozen=True)
class PolicyEventRecord:
    id: int
    version: int
    action: PolicyAction
    actor: str
    reason: str
    at: datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class PlanRequest:
    """What a recorded plan was asked for: the order and its destination as geocoded then."""

    order: Order
    destination: GeoPoint | None
    attempt: int
    recorded_at: datetime


class UnknownPolicyVersion(Exception):
    def __init__(self, version: int) -> None:
        self.version = version
        super().__init__(f"policy version {version} not found")


class AlreadyActive(Exception):
    def __init__(self, active: ActivePolicy) -> None:
        self.active = active
        since = f" (since {active.activated_at.isoformat()}, by {active.activated_by})" if active.activated_at else ""
        super().__init__(f"{active.version_label} is already the active policy{since}")


class NothingToRollBack(Exception):
    def __init__(self, active: ActivePolicy) -> None:
        self.active = active
        if active.version is None:
            message = "no policy version was ever activated: the built-in policy is in force"
        else:
            message = (
                f"{active.version_label} replaced the built-in policy, which is not a stored version: "
                "there is no earlier version to roll back to (activate another version instead)"
            )
        super().__init__(message)


def _status_column() -> Any:
    """Whether a version was ever active, as a column of a ``policy_version`` query."""
    return exists().where(PolicyEvent.version == PolicyVersion.version, PolicyEvent.action.in_(ACTIVATING))


class PolicyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def _lock(self) -> None:
        """Serialise every change to policies, until this transaction ends."""
        key = func.hashtextextended(_LOCK_KEY, 0)
        await self._session.execute(select(func.pg_advisory_xact_lock(key)))

    # --- versions ------------------------------------------------------------------------------------------

    async def create(
        self, document: PolicyDocument, *, actor: str, note: str, based_on: int | None = None
    ) -> PolicyVersionRecord:
        """Store ``document`` as the next version, a draft (created, not active), and journal it.

        Raises ``UnknownPolicyVersion`` if ``based_on`` names no version. The journal entry's detail lists the
        earlier versions with the same checksum (``identical_to``), if any.
        """
        await self._lock()
        if based_on is not None and await self._session.get(PolicyVersion, based_on) is None:
            raise UnknownPolicyVersion(based_on)
        digest = checksum(document)
        identical = await self.identical_to(digest)
        version = int(await self._session.scalar(select(func.coalesce(func.max(PolicyVersion.version), 0))) or 0) + 1
        row = PolicyVersion(
            version=version,
            document=document.model_dump(mode="json"),
            checksum=digest,
            based_on=based_on,
            note=note,
            created_by=actor,
        )
        self._session.add(row)
        await self._session.flush()
        await self._journal(
            version,
            PolicyAction.CREATED,
            actor=actor,
            reason=note,
            detail={"checksum": digest, "based_on": based_on, "identical_to": identical},
        )
        await self._session.refresh(row, ["created_at"])
        log.info("policy version created", version=version, actor=actor, based_on=based_on, identical_to=identical)
        return PolicyVersionRecord(
            version=version,
            document=document,
            checksum=digest,
            based_on=based_on,
            note=note,
            created_by=actor,
            created_at=row.created_at,
            status=PolicyStatus.DRAFT,
        )

    async def identical_to(self, digest: str) -> builtins.list[int]:
        """Versions whose document has this checksum, oldest first."""
        found = await self._session.scalars(
            select(PolicyVersion.version).where(PolicyVersion.checksum == digest).order_by(PolicyVersion.version)
        )
        return builtins.list(found)

    async def get(self, version: int) -> PolicyVersionRecord | None:
        active = await self._active_version()
        row = (
            await self._session.execute(
                select(PolicyVersion, _status_column().label("was_active")).where(PolicyVersion.version == version)
            )
        ).one_or_none()
        return None if row is None else self._record(row, active)

    async def list(self, *, before: int | None = None, limit: int = 100) -> builtins.list[PolicyVersionRecord]:
        """Newest first; ``before`` is the last version of the previous page (versions below it follow)."""
        active = await self._active_version()
        query = (
            select(PolicyVersion, _status_column().label("was_active"))
            .order_by(PolicyVersion.version.desc())
            .limit(limit)
        )
        if before is not None:
            query = query.where(PolicyVersion.version < before)
        return [self._record(row, active) for row in await self._session.execute(query)]

    def _record(self, row: Row[Any], active: int | None) -> PolicyVersionRecord:
        stored: PolicyVersion = row[0]
        if stored.version == active:
            status = PolicyStatus.ACTIVE
        else:
            status = PolicyStatus.RETIRED if row.was_active else PolicyStatus.DRAFT
        return PolicyVersionRecord(
            version=stored.version,
            document=_document(stored.version, stored.checksum, stored.document),
            checksum=stored.checksum,
            based_on=stored.based_on,
            note=stored.note,
            created_by=stored.created_by,
            created_at=stored.created_at,
            status=status,
        )

    # --- what is in force ----------------------------------------------------------------------------------

    def _latest_activation(self) -> Any:
        return (
            select(PolicyEvent.version, PolicyEvent.at, PolicyEvent.actor, PolicyEvent.reason)
            .where(PolicyEvent.action.in_(ACTIVATING))
            .order_by(PolicyEvent.id.desc())
            .limit(1)
        )

    async def _active_version(self) -> int | None:
        version: int | None = await self._session.scalar(
            self._latest_activation().with_only_columns(PolicyEvent.version)
        )
        return version

    async def active(self) -> ActivePolicy:
        """The policy in force now: the latest activated (or rolled back to) version, else the built-in one."""
        latest = self._latest_activation().subquery()
        row = (
            await self._session.execute(
                select(
                    PolicyVersion.version,
                    PolicyVersion.checksum,
                    PolicyVersion.document,
                    latest.c.at,
                    latest.c.actor,
                    latest.c.reason,
                ).join(latest, latest.c.version == PolicyVersion.version)
            )
        ).one_or_none()
        if row is None:
            return BUILTIN
        return ActivePolicy(
            version_label=version_label(row.version),
            version=row.version,
            document=_document(row.version, row.checksum, row.document),
            activated_at=row.at,
            activated_by=row.actor,
            reason=row.reason,
        )

    async def activate(self, version: int, *, actor: str, reason: str) -> PolicyEventRecord:
        """Put ``version`` in force. ``UnknownPolicyVersion`` if there is none, ``AlreadyActive`` if it is."""
        await self._lock()
        if await self._session.get(PolicyVersion, version) is None:
            raise UnknownPolicyVersion(version)
        current = await self.active()
        if current.version == version:
            raise AlreadyActive(current)
        event = await self._journal(
            version, PolicyAction.ACTIVATED, actor=actor, reason=reason, detail={"previous": current.version_label}
        )
        log.info("policy activated", version=version, previous=current.version_label, actor=actor, reason=reason)
        return event

    async def rollback(self, *, actor: str, reason: str) -> PolicyEventRecord:
        """Re-activate the version that was in force before the current one (undoing its activation)."""
        await self._lock()
        current = await self.active()
        stack = await self._activation_stack()
        if len(stack) < 2:
            raise NothingToRollBack(current)
        target = stack[-2]
        event = await self._journal(
            target,
            PolicyAction.ROLLED_BACK,
            actor=actor,
            reason=reason,
            detail={"from": current.version_label, "to": version_label(target)},
        )
        log.info("policy rolled back", version=target, previous=current.version_label, actor=actor, reason=reason)
        return event

    async def _activation_stack(self) -> builtins.list[int]:
        """Replay the activations: each ``activated`` pushes its version, each ``rolled_back`` pops the top."""
        events = await self._session.execute(
            select(PolicyEvent.action, PolicyEvent.version)
            .where(PolicyEvent.action.in_(ACTIVATING))
            .order_by(PolicyEvent.id)
        )
        stack: builtins.list[int] = []
        for action, version in events:
            if action == PolicyAction.ACTIVATED:
                stack.append(version)
            elif stack:
                stack.pop()
        return stack

    # --- the journal ---------------------------------------------------------------------------------------

    async def _journal(
        self, version: int, action: PolicyAction, *, actor: str, reason: str, detail: dict[str, Any]
    ) -> PolicyEventRecord:
        row = PolicyEvent(version=version, action=action.value, actor=actor, reason=reason, detail=detail)
        self._session.add(row)
        await self._session.flush()
        await self._session.refresh(row, ["id", "at"])
        return _event(row)

    async def journal(
        self, *, version: int | None = None, before: int | None = None, limit: int = 100
    ) -> builtins.list[PolicyEventRecord]:
        """Events newest first, optionally of one version; ``before`` is the last event id of the previous page."""
        query = select(PolicyEvent).order_by(PolicyEvent.id.desc()).limit(limit)
        if version is not None:
            query = query.where(PolicyEvent.version == version)
        if before is not None:
            query = query.where(PolicyEvent.id < before)
        return [_event(row) for row in await self._session.scalars(query)]

    # --- what documents refer to ---------------------------------------------------------------------------

    async def node_statuses(self, node_ids: Iterable[str]) -> dict[str, NodeStatus]:
        """The status of each of these nodes that exists; an unknown id is left out of the answer."""
        wanted = sorted(set(node_ids))
        if not wanted:
            return {}
        rows = await self._session.execute(select(Node.node_id, Node.status).where(Node.node_id.in_(wanted)))
        return {node_id: NodeStatus(status) for node_id, status in rows}

    # --- what plans were asked for -------------------------------------------------------------------------

    async def recent_plan_requests(self, limit: int) -> builtins.list[PlanRequest]:
        """The latest ``limit`` distinct orders that were planned with their request kept, newest first, each
        with its latest attempt's request. Requests that no longer read as an order are skipped (logged)."""
        later = OrderPlan.__table__.alias("later")
        newer_attempt = exists().where(
            and_(
                later.c.order_id == OrderPlan.order_id,
                later.c.attempt > OrderPlan.attempt,
                later.c.request.is_not(None),
            )
        )
        rows = await self._session.execute(
            select(OrderPlan.order_id, OrderPlan.attempt, OrderPlan.request, OrderPlan.created_at)
            .where(OrderPlan.request.is_not(None), ~newer_attempt)
            .order_by(OrderPlan.created_at.desc(), OrderPlan.plan_id.desc())
            .limit(limit)
        )
        requests: builtins.list[PlanRequest] = []
        for row in rows:
            stored: dict[str, Any] = row.request
            try:
                order = Order.model_validate(stored["order"])
                where = stored.get("destination")
                destination = None if where is None else GeoPoint.model_validate(where)
            except (KeyError, TypeError, ValidationError) as err:
                log.warning("plan request unreadable", order_id=row.order_id, attempt=row.attempt, error=str(err))
                continue
            requests.append(
                PlanRequest(order=order, destination=destination, attempt=row.attempt, recorded_at=row.created_at)
            )
        return requests


def _event(row: PolicyEvent) -> PolicyEventRecord:
    return PolicyEventRecord(
        id=row.id,
        version=row.version,
        action=PolicyAction(row.action),
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        detail=dict(row.detail or {}),
    )


# Parsed documents by (version, checksum). Versions never change, so a parsed one stays right; the checksum in
# the key keeps two databases' "v1" apart in a process that talks to both (the tests do).
_PARSED: dict[tuple[int, str], PolicyDocument] = {}
_PARSED_MAX = 64


def _document(version: int, digest: str, stored: dict[str, Any]) -> PolicyDocument:
    key = (version, digest)
    parsed = _PARSED.get(key)
    if parsed is None:
        parsed = PolicyDocument.model_validate(stored)
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = parsed
    return parsed
