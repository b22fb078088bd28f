"""Who may call what: API keys, roles, and the one table saying which role may call which route.

Every route is listed in ``ROUTE_ROLES`` by method and path (as the OpenAPI description spells it). A route
that is missing there is refused to everyone (and fails ``tests/api/test_authorization.py``), so a new route
cannot be published by accident. ``authorize`` is the single dependency enforcing the table; ``create_app``
applies it to every router.

- missing ``Authorization: Bearer <key_id>.<secret>`` → 401 with ``WWW-Authenticate: Bearer``;
- unknown, malformed or revoked key → 401;
- a role the route does not allow → 403, naming the roles that may;
- a tenant-scoped key (integration, channel) asking about another tenant's order → 404, as if it did not exist.

The actor recorded in journals is the key's name; an ``X-Actor`` header, when sent, is kept as detail after it
(``<key name>:<X-Actor>``), e.g. the agent working through a shared CSR tool's key. With ``ORCH_AUTH=off`` every
caller is an admin named by ``X-Actor`` (or ``api``), as before keys existed: for local experiments only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from temporalio.service import RPCError, RPCStatusCode

from api.deps import DEFAULT_ACTOR, AppState, _state
from api.errors import ApiError, validation_error
from workflows import order_workflow_id

log = structlog.get_logger(__name__)

# Where the principal of a request is kept in its ASGI scope (read back by the journal middleware).
SCOPE_KEY = "orchestrator.auth"
# Where the authenticating middleware leaves the key's principal, so the route's gate does not look it up again.
PRINCIPAL_KEY = "orchestrator.principal"
# The workflow memo entry naming the tenant whose key placed the order (absent for staff-placed orders).
MEMO_TENANT = "tenant"


class Role(StrEnum):
    INTEGRATION = "integration"  # a system placing orders for itself: create, read its own
    CHANNEL = "channel"  # a customer-facing channel: options, orders, the customer's own changes
    CSR = "csr"  # customer service: every override, any order, stock levels
    ADMIN = "admin"  # everything: rules, network, inventory feeds, subscriptions

    @property
    def tenant_scoped(self) -> bool:
        return self in (Role.INTEGRATION, Role.CHANNEL)


PUBLIC: frozenset[Role] = frozenset()  # no key needed (health; the webhook is authenticated by its HMAC)
_I, _CH, _CSR, _A = Role.INTEGRATION, Role.CHANNEL, Role.CSR, Role.ADMIN
ADMIN_ONLY = frozenset({_A})
STAFF = frozenset({_CSR, _A})
CUSTOMER_CHANGE = frozenset({_CH, _CSR, _A})

# (method, path) → the roles allowed; PUBLIC for none needed. The only place this is decided.
ROUTE_ROLES: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("POST", "/webhooks/wms"): PUBLIC,
    ("GET", "/webhooks/unmatched"): STAFF,
    ("POST", "/fulfillment-options"): frozenset({_CH, _CSR, _A}),
    ("POST", "/orders"): frozenset({_I, _CH, _CSR, _A}),
    ("GET", "/orders/{order_id}"): frozenset({_I, _CH, _CSR, _A}),
    ("GET", "/orders/{order_id}/events"): STAFF,
    ("POST", "/orders/{order_id}/cancel"): CUSTOMER_CHANGE,
    ("POST", "/orders/{order_id}/service-level"): CUSTOMER_CHANGE,
    ("POST", "/orders/{order_id}/address"): CUSTOMER_CHANGE,
    ("POST", "/orders/{order_id}/pickup"): CUSTOMER_CHANGE,
    ("POST", "/orders/{order_id}/notes"): CUSTOMER_CHANGE,
    ("POST", "/orders/{order_id}/hold"): STAFF,
    ("POST", "/orders/{order_id}/release-hold"): STAFF,
    ("POST", "/orders/{order_id}/approve"): STAFF,
    ("POST", "/orders/{order_id}/reject"): STAFF,
    ("POST", "/orders/{order_id}/reroute"): STAFF,
    ("GET", "/inventory"): STAFF,
    ("POST", "/inventory/snapshots"): ADMIN_ONLY,
    ("POST", "/inventory/adjustments"): ADMIN_ONLY,
    ("POST", "/inventory/import"): ADMIN_ONLY,
    ("GET", "/subscriptions"): ADMIN_ONLY,
    ("POST", "/subscriptions"): ADMIN_ONLY,
    ("DELETE", "/subscriptions/{subscription_id}"): ADMIN_ONLY,
    ("GET", "/subscriptions/{subscription_id}/dead-letters"): ADMIN_ONLY,
    ("POST", "/subscriptions/{subscription_id}/dead-letters/{event_id}/replay"): ADMIN_ONLY,
}
# The rules and the network model are the admin's, every route of them.
ADMIN_PREFIXES = ("/rules", "/network")

_CONVERTOR = re.compile(r"\{(\w+):\w+\}")


def route_key(method: str, path: str) -> tuple[str, str]:
    """``("GET", "/network/skus/{sku}")`` for a route declared as ``/network/skus/{sku:path}``."""
    return method.upper(), _CONVERTOR.sub(r"{\1}", path)


def allowed_roles(method: str, path: str) -> frozenset[Role] | None:
    """The roles that may call this route; PUBLIC (empty) for none needed; None for a route with no rule."""
    key = route_key(method, path)
    if key in ROUTE_ROLES:
        return ROUTE_ROLES[key]
    if key[1].startswith(ADMIN_PREFIXES):
        return ADMIN_ONLY
    return None


@dataclass(frozen=True)
class Principal:
    key_id: str | None
    name: str
    role: Role
    tenant: str | None

    @property
    def staff(self) -> bool:
        return not self.role.tenant_scoped


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": "Bearer"})


def public_path(method: str, path: str) -> bool:
    """No key needed: a public route (health, the HMAC-signed webhook), or the API's own description."""
    return path in _DOC_PATHS or allowed_roles(method, path) == PUBLIC


_DOC_PATHS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})


async def principal_of(state: AppState, authorization: str | None) -> Principal:
    """The key behind an ``Authorization`` header; 401 when there is none, or it is unknown or revoked."""
    if state.settings.auth == "off":
        return Principal(key_id=None, name=DEFAULT_ACTOR, role=Role.ADMIN, tenant=None)
    if not authorization:
        raise _unauthorized("an API key is required: Authorization: Bearer <key_id>.<secret>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("the Authorization header must be: Bearer <key_id>.<secret>")
    async with state.uow() as uow:
        record = await uow.api_keys.authenticate(token.strip())
        if record is not None:
            await uow.commit()
    if record is None:
        raise _unauthorized("unknown or revoked API key")
    try:
        role = Role(record.role)
    except ValueError:
        log.error("api key with an unknown role", key_id=record.key_id, role=record.role)
        raise ApiError(403, f"the key's role {record.role!r} is not a known role") from None
    return Principal(key_id=record.key_id, name=record.name, role=role, tenant=record.tenant)


async def _check_tenant(state: AppState, principal: Principal, order_id: str) -> None:
    """A tenant's key sees only its tenant's orders: another's (or a staff-placed one) is answered 404."""
    handle = state.temporal.get_workflow_handle(order_workflow_id(order_id))
    try:
        memo = await (await handle.describe()).memo()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return  # the route answers 404 itself
        raise
    if memo.get(MEMO_TENANT) != principal.tenant:
        raise ApiError(404, f"order {order_id} not found")


async def authorize(
    request: Request,
    state: Annotated[AppState, Depends(_state)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Principal | None:
    """The gate on every route: authenticate the key, check its role against ``ROUTE_ROLES``, scope tenants."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    roles = allowed_roles(request.method, path)
    if roles is None:
        log.error("route without an authorization rule", method=request.method, path=path)
        raise ApiError(403, "this route has no authorization rule: refused to everyone")
    if roles == PUBLIC:
        return None
    known = request.scope.get(PRINCIPAL_KEY)
    principal = known if isinstance(known, Principal) else await principal_of(state, authorization)
    holder = request.scope.get(SCOPE_KEY)
    if isinstance(holder, dict):
        holder["principal"] = principal
    if principal.role not in roles:
        needed = ", ".join(sorted(r.value for r in roles))
        raise ApiError(
            403,
            f"role {principal.role.value} may not call {request.method} {path}: needs {needed}",
            roles=sorted(roles),
        )
    order_id = request.path_params.get("order_id")
    if isinstance(order_id, str) and principal.role.tenant_scoped:
        await _check_tenant(state, principal, order_id)
    return principal


PrincipalDep = Annotated[Principal | None, Depends(authorize)]


async def _actor(
    principal: PrincipalDep,
    x_actor: Annotated[
        str | None,
        Header(
            alias="X-Actor",
            min_length=1,
            max_length=100,
            description="who, behind the API key, made the change (kept after the key's name in journals)",
        ),
    ] = None,
) -> str:
    if x_actor is not None and not x_actor.strip():
        raise validation_error([{"loc": ("header", "X-Actor"), "msg": "must not be blank", "type": "string_blank"}])
    detail = None if x_actor is None else x_actor.strip()
    if principal is None or principal.key_id is None:
        return detail or DEFAULT_ACTOR
    return principal.name if detail is None else f"{principal.name}:{detail}"


# Who made a change, for the journals: the key's name (and X-Actor as detail).
ActorDep = Annotated[str, Depends(_actor)]
