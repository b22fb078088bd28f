"""The authorization matrix: every route of the app by every caller, each cell as docs/api.md documents it.

The routes come from the app itself (its OpenAPI description lists every included route), so a route added
without a rule in ``api.auth.ROUTE_ROLES`` fails here. A caller whose role may call a route gets past the gate:
anything but 401/403 and never a 5xx (requests are built to fail validation or find nothing, so no workflow is
started: a 404 or a 422 proves the gate was passed). A role that may not gets 403 naming the roles that may;
no key, an unknown key or a revoked one gets 401 with ``WWW-Authenticate: Bearer``. Public routes answer every
caller alike. Tenant scoping (a channel's or integration's key sees only its tenant's orders) is tested on real
orders, on a Temporal server of their own (``isolated_api``): nothing serves their task queue.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.auth import PUBLIC, ROUTE_ROLES, Role, allowed_roles
from infra.cli import KEY_ROLES
from infra.db.uow import UowFactory
from infra.settings import Settings
from tests.api.conftest import IsolatedApi
from tests.support import IMMEDIATE

pytestmark = pytest.mark.db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
# Values that pass each path parameter's validation and name nothing that exists.
PATH_VALUES = {"version": "999999", "day": "2031-01-01", "order_id": "MATRIX-NONE"}
CALLERS = ["anonymous", "unknown", "revoked", *[r.value for r in Role]]


def _app() -> FastAPI:
    return create_app(Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": "postgresql://unused/unused"}))


def operations(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, as its OpenAPI description lists them."""
    return sorted((method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops)


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), f"matrix-{m.group(1)}"), path)


async def new_key(uow_factory: UowFactory, role: str, *, tenant: str | None = None, revoked: bool = False) -> str:
    async with uow_factory() as uow:
        created = await uow.api_keys.create(name=f"matrix-{role}", role=role, tenant=tenant)
        if revoked:
            await uow.api_keys.revoke(created.record.key_id)
        await uow.commit()
    return created.token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture
async def anonymous(database_url: str, temporal_env: WorkflowEnvironment) -> AsyncIterator[httpx.AsyncClient]:
    """The app with authentication required (the default), and a client sending no key by itself."""
    app = create_app(
        Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url}), temporal=temporal_env.client
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        yield http


async def headers_of(caller: str, uow_factory: UowFactory) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller == "unknown":
        return bearer(f"ok_{uuid.uuid4().hex[:12]}.not-a-secret")
    if caller == "revoked":
        return bearer(await new_key(uow_factory, "admin", revoked=True))
    tenant = "matrix-tenant" if Role(caller).tenant_scoped else None
    return bearer(await new_key(uow_factory, caller, tenant=tenant))


def test_every_route_has_a_rule_and_the_roles_agree_with_the_cli() -> None:
    app = _app()
    missing = [op for op in operations(app) if allowed_roles(*op) is None]
    assert missing == [], f"routes without an authorization rule in api.auth.ROUTE_ROLES: {missing}"
    stale = sorted(set(ROUTE_ROLES) - set(operations(app)))
    assert stale == [], f"rules for routes that do not exist: {stale}"
    assert tuple(r.value for r in Role) == KEY_ROLES


def test_the_matrix_in_the_docs_is_the_one_enforced() -> None:
    """docs/api.md's table has one row per route, its cells as ``api.auth`` decides them."""
    text = DOCS.read_text()
    for method, path in operations(_app()):
        roles = allowed_roles(method, path)
        assert roles is not None
        cells = ["public" if roles == PUBLIC else ("yes" if role in roles else "-") for role in Role]
        row = f"| `{method} {path}` | " + " | ".join(cells) + " |"
        assert row in text, f"docs/api.md lacks the matrix row: {row}"


@pytest.mark.parametrize("caller", CALLERS)
async def test_matrix(caller: str, anonymous: httpx.AsyncClient, uow_factory: UowFactory) -> None:
    headers = await headers_of(caller, uow_factory)
    cells: list[str] = []
    wrong: list[str] = []
    for method, path in operations(_app()):
        roles = allowed_roles(method, path)
        assert roles is not None
        body: Any = {} if method in ("POST", "PUT", "PATCH") else None
        response = await anonymous.request(method, _url(path), json=body, headers=headers)
        code = response.status_code
        cells.append(f"{method} {path}: {code}")
        if code >= 500:
            wrong.append(f"{method} {path}: {code} {response.text[:200]}")
        elif roles == PUBLIC:
            reference = await anonymous.request(method, _url(path), json=body)
            if code != reference.status_code:
                wrong.append(f"{method} {path}: public, yet {code} with a key and {reference.status_code} without")
        elif caller in ("anonymous", "unknown", "revoked"):
            if code != 401 or response.headers.get("www-authenticate") != "Bearer":
                wrong.append(f"{method} {path}: expected 401 with WWW-Authenticate, got {code}")
        elif Role(caller) in roles:
            if code in (401, 403):
                wrong.append(f"{method} {path}: {caller} may call it, got {code} {response.text[:200]}")
        elif code != 403 or "needs" not in response.json()["message"]:
            wrong.append(f"{method} {path}: {caller} may not call it, expected 403, got {code}")
    assert len(cells) == len(operations(_app()))
    assert wrong == [], "\n".join(wrong)


def order_body(order_id: str) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": "C-42",
        "ship_to": {"name": "Ada", "line1": "500 Congress Ave", "city": "Austin", "region": "TX",
                    "postal_code": "78701", "country": "US"},
        "lines": [{"line_id": "1", "sku": "MATRIX-SKU", "quantity": 1}],
    }  # fmt: skip


@dataclass
class Tenants:
    api: IsolatedApi
    a_channel: dict[str, str]
    a_integration: dict[str, str]
    b_channel: dict[str, str]
    b_integration: dict[str, str]
    csr: dict[str, str]
    admin: dict[str, str]


@pytest_asyncio.fixture
async def tenants(isolated_api: IsolatedApi, uow_factory: UowFactory) -> Tenants:
    return Tenants(
        api=isolated_api,
        a_channel=bearer(await new_key(uow_factory, "channel", tenant="shop-a")),
        a_integration=bearer(await new_key(uow_factory, "integration", tenant="shop-a")),
        b_channel=bearer(await new_key(uow_factory, "channel", tenant="shop-b")),
        b_integration=bearer(await new_key(uow_factory, "integration", tenant="shop-b")),
        csr=bearer(await new_key(uow_factory, "csr")),
        admin=bearer(await new_key(uow_factory, "admin")),
    )


async def test_a_tenant_sees_only_its_own_orders(tenants: Tenants) -> None:
    http, env = tenants.api.http, tenants.api.env
    order_id = f"MATRIX-{uuid.uuid4().hex[:8]}"
    placed = await http.post("/orders", json=order_body(order_id), headers=tenants.a_channel)
    assert placed.status_code == 201, placed.text
    memo = await (await env.client.get_workflow_handle(f"order:{order_id}").describe()).memo()
    assert memo["tenant"] == "shop-a"

    # Another tenant's keys: the order does not exist for them (404), on every order route.
    order_routes = [op for op in operations(_app()) if op[1].startswith("/orders/{order_id}")]
    for headers in (tenants.b_channel, tenants.b_integration):
        for method, path in order_routes:
            response = await http.request(method, path.replace("{order_id}", order_id), json={}, headers=headers)
            if allowed_roles(method, path) and response.status_code != 403:
                assert response.status_code == 404, (method, path, response.status_code, response.text)
    # Its own tenant passes the gate (the empty body is then refused: 422, nothing is changed).
    note = await http.post(f"/orders/{order_id}/notes", json={}, headers=tenants.a_channel)
    assert note.status_code == 422, note.text
    # Staff see every tenant's orders (an empty body: 422 past the gate).
    for headers in (tenants.csr, tenants.admin):
        assert (await http.post(f"/orders/{order_id}/hold", json={}, headers=headers)).status_code == 422

    # The same order id and body from another tenant is not "the same order": a conflict, not a replay.
    again = await http.post("/orders", json=order_body(order_id), headers=tenants.b_integration)
    assert again.status_code == 409, again.text
    await env.client.get_workflow_handle(f"order:{order_id}").terminate("test over")


async def test_a_staff_placed_order_is_not_visible_to_a_tenant(tenants: Tenants) -> None:
    http, env = tenants.api.http, tenants.api.env
    order_id = f"MATRIX-{uuid.uuid4().hex[:8]}"
    assert (await http.post("/orders", json=order_body(order_id), headers=tenants.admin)).status_code == 201
    memo = await (await env.client.get_workflow_handle(f"order:{order_id}").describe()).memo()
    assert "tenant" not in memo
    response = await http.post(f"/orders/{order_id}/cancel", json={}, headers=tenants.a_channel)
    assert response.status_code == 404
    await env.client.get_workflow_handle(f"order:{order_id}").terminate("test over")


async def test_mutating_calls_are_journaled_and_reads_are_not(
    anonymous: httpx.AsyncClient, uow_factory: UowFactory
) -> None:
    token = await new_key(uow_factory, "csr")
    key_id = token.split(".")[0]
    headers = {**bearer(token), "X-Reason": "matrix check"}
    await anonymous.get("/inventory", headers=headers)
    refused = await anonymous.post("/rules/rollback", json={"reason": "x"}, headers=headers)
    assert refused.status_code == 403
    invalid = await anonymous.post("/orders/MATRIX-NONE/notes", json={"reason_code": "typo"}, headers=bearer(token))
    assert invalid.status_code in (404, 422)
    async with uow_factory() as uow:
        entries = await uow.api_keys.journal_entries(key_id=key_id)
    assert [(e.method, e.path, e.status_code, e.role, e.reason) for e in reversed(entries)] == [
        ("POST", "/rules/rollback", 403, "csr", "matrix check"),
        ("POST", "/orders/MATRIX-NONE/notes", invalid.status_code, "csr", "typo"),
    ]
    assert entries[0].request == {"reason_code": "typo"}
    assert "message" in (entries[0].response or {})


async def test_a_journal_that_fails_does_not_fail_the_request(
    anonymous: httpx.AsyncClient, uow_factory: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.db.api_keys import ApiKeyRepository

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("journal down")

    token = await new_key(uow_factory, "admin")
    monkeypatch.setattr(ApiKeyRepository, "journal", broken)
    response = await anonymous.post("/rules/validate", json={}, headers=bearer(token))
    assert response.status_code == 422


async def test_bodies_over_the_limit_are_refused(database_url: str, temporal_env: WorkflowEnvironment) -> None:
    settings = Settings.model_validate(
        {**IMMEDIATE, "ORCH_DATABASE_URL": database_url, "ORCH_MAX_BODY_BYTES": 1000, "ORCH_AUTH": "off"}
    )
    app = create_app(settings, temporal=temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        json_type = {"content-type": "application/json"}
        declared = await http.post("/orders", content=b"{" + b" " * 2000 + b"}", headers=json_type)
        assert declared.status_code == 413
        assert "larger than 1000 bytes" in declared.json()["message"]

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(5):
                yield b" " * 400

        streamed = await http.post("/rules/validate", content=chunks(), headers=json_type)
        assert streamed.status_code == 413
        # The inventory feeds keep their own (larger) cap: a 2 KB body is read and judged on its content.
        feed = await http.post("/inventory/snapshots", json={"source": "erp", "rows": [], "pad": "x" * 2000})
        assert feed.status_code == 422


async def test_auth_off_lets_everyone_in_as_admin(database_url: str, temporal_env: WorkflowEnvironment) -> None:
    settings = Settings.model_validate({**IMMEDIATE, "ORCH_DATABASE_URL": database_url, "ORCH_AUTH": "off"})
    app = create_app(settings, temporal=temporal_env.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
    ):
        assert (await http.get("/rules/active")).status_code == 200
        assert (await http.get("/webhooks/unmatched")).status_code == 200


async def test_a_key_records_its_last_use_and_a_revoked_one_is_refused(
    anonymous: httpx.AsyncClient, uow_factory: UowFactory
) -> None:
    token = await new_key(uow_factory, "csr")
    key_id = token.split(".")[0]
    assert (await anonymous.get("/webhooks/unmatched", headers=bearer(token))).status_code == 200
    wrong_secret = await anonymous.get("/webhooks/unmatched", headers=bearer(f"{key_id}.wrong"))
    assert wrong_secret.status_code == 401
    async with uow_factory() as uow:
        record = await uow.api_keys.get(key_id)
        assert record is not None
        assert record.last_used_at is not None
        await uow.api_keys.revoke(key_id)
        await uow.commit()
    revoked = await anonymous.get("/webhooks/unmatched", headers=bearer(token))
    assert revoked.status_code == 401
    assert revoked.headers["www-authenticate"] == "Bearer"
    async with uow_factory() as uow:
        assert key_id not in {k.key_id for k in await uow.api_keys.all() if k.revoked_at is None}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/orders", b"{not json"),
        ("POST", "/inventory/import", b"node_id,sku,on_hand\n" * 200_000),
        ("POST", "/orders/ANY/cancel", b'{"reason_code": 1}'),
        ("GET", "/no/such/route", b""),
    ],
    ids=["bad-json", "large-upload", "bad-override", "unknown-route"],
)
async def test_without_a_key_nothing_is_read_or_validated(
    anonymous: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    """401 comes first: an anonymous caller's upload is not buffered or parsed, and no 422 (or 404) tells it
    what a valid request would look like."""
    response = await anonymous.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


async def test_public_routes_and_the_description_need_no_key(anonymous: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/openapi.json", "/docs"):
        assert (await anonymous.get(path)).status_code == 200, path
