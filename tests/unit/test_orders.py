"""Order validation, the API request's fingerprint and mapping, identity helpers, and settings names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from api.schemas import OrderCreate
from domain.orders import MAX_LINE_QUANTITY, MAX_LINES, Order
from infra.settings import Settings, setting_env_names
from workflows import order_workflow_id
from workflows.keys import release_key, reservation_key

PLACED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RECEIVED_AT = datetime(2024, 5, 1, 12, 5, tzinfo=UTC)


def ship_to(**overrides) -> dict[str, Any]:
    return {
        "name": "Ada Lovelace",
        "line1": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
        **overrides,
    }


def line(line_id: str = "1", sku: str = "SKU-1", quantity: int = 1, **overrides) -> dict[str, Any]:
    return {"line_id": line_id, "sku": sku, "quantity": quantity, "unit_price_minor": 1250, **overrides}


def payload(**overrides) -> dict[str, Any]:
    """A valid order as a commerce platform sends it; ``placed_at`` left out unless given."""
    return {
        "order_id": "A-1001",
        "customer_id": "C-1",
        "ship_to": ship_to(),
        "lines": [line("1", "SKU-1", 2), line("2", "SKU-2", 1)],
        **overrides,
    }


def domain_order(**overrides) -> Order:
    return Order.model_validate({"placed_at": PLACED_AT, **payload(**overrides)})


def error_locs(err: pytest.ExceptionInfo[ValidationError]) -> set[tuple[Any, ...]]:
    return {tuple(e["loc"]) for e in err.value.errors()}


# --- validation ---------------------------------------------------------------------------------------------------


def test_valid_order_builds():
    o = domain_order()
    assert (o.order_id, o.currency, o.channel, o.service_level) == ("A-1001", "USD", "api", "standard")
    assert o.total_minor == 3 * 1250
    assert o.quantities_by_sku() == {"SKU-1": 2, "SKU-2": 1}


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(Order.model_validate, id="Order"),
        pytest.param(lambda data: OrderCreate.model_validate(data).to_domain(RECEIVED_AT), id="OrderCreate.to_domain"),
    ],
)
def test_duplicate_line_ids_are_refused_naming_the_line(build):
    data = {"placed_at": PLACED_AT, **payload(lines=[line("L-7"), line("L-8"), line("L-7", "OTHER")])}
    with pytest.raises(ValidationError, match="duplicate line_id 'L-7'"):
        build(data)


def test_order_create_itself_refuses_duplicate_line_ids():
    with pytest.raises(ValidationError, match="duplicate line_id '1'"):
        OrderCreate.model_validate(payload(lines=[line("1"), line("1", "SKU-2")]))


@pytest.mark.parametrize("model", [Order, OrderCreate], ids=["Order", "OrderCreate"])
@pytest.mark.parametrize(
    ("quantity", "ok"),
    [
        pytest.param(0, False, id="zero"),
        pytest.param(-1, False, id="negative"),
        pytest.param(1, True, id="one"),
        pytest.param(MAX_LINE_QUANTITY, True, id="max"),
        pytest.param(MAX_LINE_QUANTITY + 1, False, id="max-plus-one"),
    ],
)
def test_line_quantity_bounds(model, quantity, ok):
    data = {"placed_at": PLACED_AT, **payload(lines=[line(quantity=quantity)])}
    if ok:
        assert model.model_validate(data).lines[0].quantity == quantity
    else:
        with pytest.raises(ValidationError) as err:
            model.model_validate(data)
        assert error_locs(err) == {("lines", 0, "quantity")}


@pytest.mark.parametrize("model", [Order, OrderCreate], ids=["Order", "OrderCreate"])
@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        pytest.param({"ship_to": ship_to(country="us")}, ("ship_to", "country"), id="country-lowercase"),
        pytest.param({"ship_to": ship_to(country="USA")}, ("ship_to", "country"), id="country-alpha3"),
        pytest.param({"ship_to": ship_to(country="U1")}, ("ship_to", "country"), id="country-digit"),
        pytest.param({"ship_to": ship_to(country="")}, ("ship_to", "country"), id="country-empty"),
        pytest.param({"currency": "usd"}, ("currency",), id="currency-lowercase"),
        pytest.param({"currency": "US"}, ("currency",), id="currency-too-short"),
        pytest.param({"currency": "USDT"}, ("currency",), id="currency-too-long"),
        pytest.param({"lines": []}, ("lines",), id="no-lines"),
        pytest.param({"lines": [line(str(i)) for i in range(MAX_LINES + 1)]}, ("lines",), id="too-many-lines"),
        pytest.param({"lines": [line(line_id="a b")]}, ("lines", 0, "line_id"), id="line-id-space"),
        pytest.param({"lines": [line(sku="/SKU")]}, ("lines", 0, "sku"), id="sku-leading-slash"),
        pytest.param({"lines": [line(unit_price_minor=-1)]}, ("lines", 0, "unit_price_minor"), id="negative-price"),
        pytest.param({"customer_id": ""}, ("customer_id",), id="empty-customer"),
        pytest.param({"channel": "fax"}, ("channel",), id="unknown-channel"),
        pytest.param({"ship_to": ship_to(city="   ")}, ("ship_to", "city"), id="blank-city"),
    ],
)
def test_field_validation(model, overrides, loc):
    with pytest.raises(ValidationError) as err:
        model.model_validate({"placed_at": PLACED_AT, **payload(**overrides)})
    assert error_locs(err) == {loc}


@pytest.mark.parametrize("model", [Order, OrderCreate], ids=["Order", "OrderCreate"])
def test_naive_placed_at_is_refused(model):
    with pytest.raises(ValidationError) as err:
        model.model_validate({**payload(), "placed_at": datetime(2024, 5, 1, 12, 0)})
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("timezone_aware", ("placed_at",))]


def test_order_requires_placed_at():
    with pytest.raises(ValidationError) as err:
        Order.model_validate(payload())
    assert error_locs(err) == {("placed_at",)}


@pytest.mark.parametrize(
    ("order_id", "ok"),
    [
        pytest.param("A-1001", True, id="plain"),
        pytest.param("a", True, id="one-char"),
        pytest.param("shop.eu_42-x", True, id="dot-underscore-dash"),
        pytest.param("A" * 64, True, id="64-chars"),
        pytest.param("A" * 65, False, id="65-chars"),
        pytest.param("", False, id="empty"),
        pytest.param("-A1", False, id="leading-dash"),
        pytest.param(".A1", False, id="leading-dot"),
        pytest.param("A 1", False, id="space"),
        pytest.param("A:1", False, id="colon"),
        pytest.param("A/1", False, id="slash"),
        pytest.param("A-1\n", False, id="trailing-newline"),
        pytest.param("Ä-1", False, id="non-ascii"),
    ],
)
def test_order_id_pattern(order_id, ok):
    for model in (Order, OrderCreate):
        data = {"placed_at": PLACED_AT, **payload(order_id=order_id)}
        if ok:
            assert model.model_validate(data).order_id == order_id
        else:
            with pytest.raises(ValidationError) as err:
                model.model_validate(data)
            assert error_locs(err) == {("order_id",)}


def test_order_create_refuses_unknown_fields():
    with pytest.raises(ValidationError) as err:
        OrderCreate.model_validate(payload(coupon="FREE"))
    assert [(e["type"], e["loc"]) for e in err.value.errors()] == [("extra_forbidden", ("coupon",))]


# --- fingerprint and mapping --------------------------------------------------------------------------------------


def fingerprint(**overrides) -> str:
    return OrderCreate.model_validate(payload(**overrides)).fingerprint()


def test_fingerprint_is_a_sha256_hex():
    fp = fingerprint()
    assert len(fp) == 64
    assert int(fp, 16) >= 0


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"placed_at": PLACED_AT}, id="placed_at-given"),
        pytest.param({"placed_at": PLACED_AT + timedelta(days=3)}, id="placed_at-other-day"),
        pytest.param({"placed_at": "2024-05-01T14:00:00+02:00"}, id="placed_at-other-offset"),
        pytest.param({"channel": "api", "currency": "USD"}, id="defaults-spelled-out"),
        pytest.param({"ship_to": ship_to(city="  Springfield  ")}, id="whitespace-stripped"),
    ],
)
def test_fingerprint_same_for_same_content(overrides):
    assert fingerprint(**overrides) == fingerprint()


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"lines": [line("1", "SKU-1", 3), line("2", "SKU-2", 1)]}, id="quantity"),
        pytest.param({"lines": [line("1", "SKU-9", 2), line("2", "SKU-2", 1)]}, id="sku"),
        pytest.param({"lines": [line("9", "SKU-1", 2), line("2", "SKU-2", 1)]}, id="line-id"),
        pytest.param({"lines": [line("1", "SKU-1", 2)]}, id="line-removed"),
        pytest.param({"lines": [line("1", "SKU-1", 2, unit_price_minor=1), line("2", "SKU-2", 1)]}, id="price"),
        pytest.param({"ship_to": ship_to(postal_code="62702")}, id="address"),
        pytest.param({"service_level": "expedited"}, id="service-level"),
        pytest.param({"order_id": "A-1002"}, id="order-id"),
    ],
)
def test_fingerprint_differs_when_content_changes(overrides):
    assert fingerprint(**overrides) != fingerprint()


@pytest.mark.parametrize(
    ("placed_at", "expected"),
    [
        pytest.param(PLACED_AT, PLACED_AT, id="placed_at-given"),
        pytest.param(None, RECEIVED_AT, id="placed_at-missing"),
        pytest.param(
            datetime(2024, 5, 1, 8, 0, tzinfo=timezone(timedelta(hours=-4))),
            datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            id="placed_at-other-offset",
        ),
    ],
)
def test_to_domain_placed_at(placed_at, expected):
    body = OrderCreate.model_validate(payload(placed_at=placed_at))
    order = body.to_domain(RECEIVED_AT)
    assert isinstance(order, Order)
    assert order.placed_at == expected
    assert order.order_id == "A-1001"
    assert [(ln.line_id, ln.sku, ln.quantity) for ln in order.lines] == [("1", "SKU-1", 2), ("2", "SKU-2", 1)]
    assert order.ship_to.country == "US"


# --- identity helpers ---------------------------------------------------------------------------------------------


def test_order_workflow_id():
    assert order_workflow_id("A-1001") == "order:A-1001"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(reservation_key("A-1001", 1), "A-1001:reserve:plan-1", id="reserve-first"),
        pytest.param(reservation_key("A-1001", 3), "A-1001:reserve:plan-3", id="reserve-replan"),
        pytest.param(release_key("A-1001", 1, "DC-EAST"), "A-1001:release:p1:DC-EAST", id="release-first"),
        pytest.param(release_key("A-1001", 2, "ST-9"), "A-1001:release:p2:ST-9", id="release-replan"),
    ],
)
def test_idempotency_key_formats(key, expected):
    assert key == expected


def test_idempotency_keys_depend_only_on_business_identity():
    assert reservation_key("A-1001", 1) == reservation_key("A-1001", 1)
    assert len({reservation_key("A-1001", 1), reservation_key("A-1001", 2), reservation_key("A-1002", 1)}) == 3
    assert len({release_key("A-1001", 1, "N1"), release_key("A-1001", 1, "N2"), release_key("A-1001", 2, "N1")}) == 3


# --- settings -----------------------------------------------------------------------------------------------------


def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in setting_env_names() | {"DATA_DIR", "TASK_QUEUE", "WEBHOOK_SECRET", "API_PORT"}:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, None, id="unset"),
        pytest.param({"ORCH_DATABASE_URL": "postgresql://orch/db"}, "postgresql://orch/db", id="prefixed"),
        pytest.param({"DATABASE_URL": "postgresql://bare/db"}, "postgresql://bare/db", id="bare"),
        pytest.param(
            {"ORCH_DATABASE_URL": "postgresql://orch/db", "DATABASE_URL": "postgresql://bare/db"},
            "postgresql://orch/db",
            id="prefixed-wins",
        ),
    ],
)
def test_settings_database_url(monkeypatch, env, expected):
    clean_env(monkeypatch)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url == expected
    assert settings.embedded_postgres is (expected is None)


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        pytest.param("TEMPORAL_ADDRESS", "temporal:7233", "temporal_address", "temporal:7233", id="temporal-bare"),
        pytest.param("ORCH_TASK_QUEUE", "orders-eu", "task_queue", "orders-eu", id="task-queue-prefixed"),
        pytest.param("LOG_FORMAT", "json", "log_format", "json", id="log-format-bare"),
        pytest.param("ORCH_WEBHOOK_TOLERANCE_S", "60", "webhook_tolerance_s", 60, id="int-parsed"),
    ],
)
def test_settings_read_documented_names(monkeypatch, name, value, field, expected):
    clean_env(monkeypatch)
    monkeypatch.setenv(name, value)
    assert getattr(Settings(), field) == expected


def test_setting_env_names_lists_both_spellings():
    names = setting_env_names()
    assert {"ORCH_DATABASE_URL", "DATABASE_URL", "ORCH_TEMPORAL_ADDRESS", "TEMPORAL_ADDRESS"} <= names
    assert {"ORCH_TASK_QUEUE", "ORCH_WEBHOOK_SECRET", "ORCH_DATA_DIR"} <= names
    # Only conventional names are accepted bare.
    assert not {"TASK_QUEUE", "WEBHOOK_SECRET", "DATA_DIR", "API_PORT"} & names


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        pytest.param("TASK_QUEUE", "someone-elses-queue", "task_queue", id="task-queue"),
        pytest.param("API_PORT", "9999", "api_port", id="api-port"),
        pytest.param("DATA_DIR", "/elsewhere", "data_dir", id="data-dir"),
    ],
)
def test_settings_ignore_bare_names_that_are_not_conventional(monkeypatch, name, value, field):
    clean_env(monkeypatch)
    monkeypatch.setenv(name, value)
    assert getattr(Settings(), field) == Settings.model_fields[field].default
