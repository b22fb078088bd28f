"""API keys (hashed at rest) and the journal of mutating API calls.

A token is ``<key_id>.<secret>``: the key id (``ok_`` and 12 hex digits) finds the row, the secret (32 random
bytes, URL-safe base64) is shown once at creation and only its SHA-256 is stored, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.db.tables import ApiJournal, ApiKey

KEY_PREFIX = "ok_"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    key_id, sep, secret = token.partition(".")
    if not sep or not key_id.startswith(KEY_PREFIX) or not secret or len(key_id) > 32:
        return None
    return key_id, secret


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    name: str
    role: str
    tenant: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyRecord:
        return cls(row.key_id, row.name, row.role, row.tenant, row.created_at, row.revoked_at, row.last_used_at)


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKeyRecord
    token: str  # shown once; never stored


@dataclass(frozen=True)
class JournalEntry:
    key_id: str | None
    actor: str
    role: str
    tenant: str | None
    method: str
    path: str
    status_code: int
    reason: str | None
    request: Any
    response: Any


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, *, name: str, role: str, tenant: str | None) -> CreatedKey:
        key_id = f"{KEY_PREFIX}{secrets.token_hex(6)}"
        secret = secrets.token_urlsafe(32)
        row = ApiKey(key_id=key_id, secret_sha256=hash_secret(secret), name=name, role=role, tenant=tenant)
        self._session.add(row)
        await self._session.flush()
        await self._session.refresh(row)
        return CreatedKey(ApiKeyRecord.of(row), f"{key_id}.{secret}")

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._session.get(ApiKey, key_id)
        return None if row is None else ApiKeyRecord.of(row)

    async def find_by_name(self, name: str) -> ApiKeyRecord | None:
        """The newest live key with this name."""
        row = await self._session.scalar(
            select(ApiKey)
            .where(ApiKey.name == name, ApiKey.revoked_at.is_(None))
            .order_by(ApiKey.created_at.desc())
            .limit(1)
        )
        return None if row is None else ApiKeyRecord.of(row)

    async def authenticate(self, token: str) -> ApiKeyRecord | None:
        """The live key this token belongs to, with its last use recorded; None for unknown, wrong or revoked."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        row = await self._session.get(ApiKey, key_id)
        if row is None or not hmac.compare_digest(row.secret_sha256, hash_secret(secret)) or row.revoked_at:
            return None
        row.last_used_at = datetime.now(UTC)
        await self._session.flush()
        return ApiKeyRecord.of(row)

    async def revoke(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._session.get(ApiKey, key_id)
        if row is None:
            return None
        if row.revoked_at is None:
            row.revoked_at = datetime.now(UTC)
            await self._session.flush()
        return ApiKeyRecord.of(row)

    async def all(self) -> list[ApiKeyRecord]:
        rows = await self._session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.key_id))
        return [ApiKeyRecord.of(r) for r in rows]

    async def journal(self, entry: JournalEntry) -> None:
        self._session.add(
            ApiJournal(
                key_id=entry.key_id,
                actor=entry.actor,
                role=entry.role,
                tenant=entry.tenant,
                method=entry.method,
                path=entry.path,
                status_code=entry.status_code,
                reason=entry.reason,
                request=entry.request,
                response=entry.response,
            )
        )
        await self._session.flush()

    async def journal_entries(self, *, key_id: str | None = None, limit: int = 100) -> list[JournalEntry]:
        query = select(ApiJournal).order_by(ApiJournal.id.desc()).limit(limit)
        if key_id is not None:
            query = query.where(ApiJournal.key_id == key_id)
        rows = await self._session.scalars(query)
        return [
            JournalEntry(
                r.key_id, r.actor, r.role, r.tenant, r.method, r.path, r.status_code, r.reason, r.request, r.response
            )
            for r in rows
        ]
