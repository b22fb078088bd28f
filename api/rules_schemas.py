"""Bodies of the rules API. The policy document itself is ``domain.policy.PolicyDocument``: the request body
validates against it (so a 422 names the path inside the document), and responses carry it as stored."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.schemas import OrderCreate
from domain.policy import PolicyDocument
from domain.policy_checks import PolicyWarning
from domain.policy_diff import Change, ChangeKind
from domain.simulation import Difference, OrderComparison, Outcome, Summary
from infra.db.policies import (
    ActivePolicy,
    PolicyAction,
    PolicyEventRecord,
    PolicyStatus,
    PolicyVersionRecord,
    version_label,
)

_BODY = ConfigDict(extra="forbid")

MAX_SIMULATED_ORDERS = 500

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


# --- requests -----------------------------------------------------------------------------------------------


class PolicyCheck(BaseModel):
    model_config = _BODY

    document: PolicyDocument


class PolicyVersionCreate(BaseModel):
    """A new version, stored as a draft: it is in force only once activated."""

    model_config = _BODY

    document: PolicyDocument
    note: Reason = Field(description="what this version changes and why; kept in the journal")
    based_on: int | None = Field(default=None, ge=1, description="the version this one was edited from")


class ReasonBody(BaseModel):
    model_config = _BODY

    reason: Reason = Field(description="why; kept in the journal")


class SimulationRequest(BaseModel):
    """Orders to re-plan: ``orders`` as ``POST /orders`` takes them, else the ``recent`` latest planned orders.
    With ``orders``, recent ones are added only if ``recent`` is given too."""

    model_config = _BODY

    orders: list[OrderCreate] | None = Field(default=None, max_length=MAX_SIMULATED_ORDERS)
    recent: int = Field(default=50, ge=0, le=MAX_SIMULATED_ORDERS)

    def recent_wanted(self) -> int:
        if self.orders is not None and "recent" not in self.model_fields_set:
            return 0
        return self.recent


# --- responses ----------------------------------------------------------------------------------------------


class PolicyWarningPublic(BaseModel):
    path: str = Field(description="where in the request, e.g. document.profiles.2")
    message: str

    @classmethod
    def from_domain(cls, warning: PolicyWarning, root: str = "document") -> PolicyWarningPublic:
        return cls(path=f"{root}.{warning.path}", message=warning.message)


class PolicyCheckResult(BaseModel):
    valid: Literal[True] = True
    warnings: list[PolicyWarningPublic]
    checksum: str
    identical_to: list[int] = Field(description="stored versions with exactly this document")


class PolicyVersionSummary(BaseModel):
    version: int
    version_label: str
    name: str
    status: PolicyStatus = Field(description="active; draft (never activated); retired (was active, is not now)")
    checksum: str
    based_on: int | None
    note: str
    created_by: str
    created_at: datetime

    @classmethod
    def fields_of(cls, record: PolicyVersionRecord) -> dict[str, Any]:
        return {
            "version": record.version,
            "version_label": record.label,
            "name": record.document.name,
            "status": record.status,
            "checksum": record.checksum,
            "based_on": record.based_on,
            "note": record.note,
            "created_by": record.created_by,
            "created_at": record.created_at,
        }

    @classmethod
    def from_domain(cls, record: PolicyVersionRecord) -> PolicyVersionSummary:
        return cls(**cls.fields_of(record))


class PolicyVersionPublic(PolicyVersionSummary):
    document: PolicyDocument

    @classmethod
    def from_domain(cls, record: PolicyVersionRecord) -> PolicyVersionPublic:
        return cls(**cls.fields_of(record), document=record.document)


class PolicyVersionCreated(PolicyVersionPublic):
    identical_to: list[int] = Field(description="earlier versions with exactly this document")
    warnings: list[PolicyWarningPublic]


class ActivePolicyPublic(BaseModel):
    version_label: str = Field(description='"v3", or "builtin" when no version was ever activated')
    version: int | None
    activated_at: datetime | None
    activated_by: str | None
    reason: str | None
    document: PolicyDocument

    @classmethod
    def from_domain(cls, active: ActivePolicy) -> ActivePolicyPublic:
        return cls(
            version_label=active.version_label,
            version=active.version,
            activated_at=active.activated_at,
            activated_by=active.activated_by,
            reason=active.reason,
            document=active.document,
        )


class PolicyEventPublic(BaseModel):
    id: int
    version: int
    version_label: str
    action: PolicyAction
    actor: str
    reason: str
    at: datetime
    detail: dict[str, Any]

    @classmethod
    def from_domain(cls, event: PolicyEventRecord) -> PolicyEventPublic:
        return cls(
            id=event.id,
            version=event.version,
            version_label=version_label(event.version),
            action=event.action,
            actor=event.actor,
            reason=event.reason,
            at=event.at,
            detail=event.detail,
        )


class ChangePublic(BaseModel):
    path: str = Field(description="profiles[b2b].strategies[cheapest].ranking.1: [id] in id-keyed lists")
    change: ChangeKind
    before: Any = Field(description="the old value; for reordered, the ids in the old order")
    after: Any = Field(description="the new value; for reordered, the ids in the new order")

    @classmethod
    def from_domain(cls, change: Change) -> ChangePublic:
        return cls(path=change.path, change=change.change, before=change.before, after=change.after)


class PolicyDiffPublic(BaseModel):
    version_label: str = Field(description="the version the changes lead to")
    against: str = Field(description="the version the changes start from")
    identical: bool
    changes: list[ChangePublic]


class SimulatedOrder(BaseModel):
    order_id: str
    source: Literal["supplied", "recent"]
    currency: str
    changed: bool
    differences: list[Difference]
    active: Outcome
    candidate: Outcome

    @classmethod
    def from_domain(cls, comparison: OrderComparison, source: Literal["supplied", "recent"]) -> SimulatedOrder:
        return cls(
            order_id=comparison.order_id,
            source=source,
            currency=comparison.currency,
            changed=comparison.changed,
            differences=comparison.differences,
            active=comparison.active,
            candidate=comparison.candidate,
        )


class SkippedOrder(BaseModel):
    order_id: str
    source: Literal["supplied", "recent"]
    reason: str


class SimulationPublic(BaseModel):
    version_label: str = Field(description="the candidate version")
    active_version_label: str = Field(description="the policy in force, the other side of the comparison")
    now: datetime = Field(description="the instant both sides planned at")
    summary: Summary
    orders: list[SimulatedOrder]
    skipped: list[SkippedOrder] = Field(description="orders that could not be planned at all (unknown SKUs)")
