"""A node's fulfilment provider and endpoint through ``/network``: declared, read back, derived from the kind when
left out, and refused when not a provider kind or not an http(s) URL. ``api_client`` comes from
tests/api/conftest.py (an admin key)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.api.test_network import fields, node_body

pytestmark = pytest.mark.db


def node_id() -> str:
    return f"T{uuid.uuid4().hex[:8].upper()}"


async def test_provider_and_endpoint_round_trip(api_client: httpx.AsyncClient) -> None:
    node = node_id()
    body = node_body("3pl", provider="3pl", endpoint="https://3pl.example.com/api/")
    created = await api_client.put(f"/network/nodes/{node}", json=body)
    assert created.status_code == 201, created.text
    assert (created.json()["provider"], created.json()["endpoint"]) == ("3pl", "https://3pl.example.com/api/")

    read = (await api_client.get(f"/network/nodes/{node}")).json()
    assert (read["provider"], read["endpoint"]) == ("3pl", "https://3pl.example.com/api/")
    listed = (await api_client.get("/network/nodes", params={"kind": "3pl", "limit": 500})).json()["items"]
    assert [(n["provider"], n["endpoint"]) for n in listed if n["node_id"] == node] == [
        ("3pl", "https://3pl.example.com/api/")
    ]

    # PUT replaces every field: leaving the endpoint out returns the node to the default endpoint.
    replaced = await api_client.put(f"/network/nodes/{node}", json=node_body("3pl", provider="wms"))
    assert replaced.status_code == 200, replaced.text
    read = (await api_client.get(f"/network/nodes/{node}")).json()
    assert (read["provider"], read["endpoint"]) == ("wms", None)


@pytest.mark.parametrize(
    ("kind", "provider"), [("dc", "wms"), ("3pl", "3pl"), ("store", "store"), ("dropship", "dropship")]
)
async def test_provider_defaults_from_the_kind(api_client: httpx.AsyncClient, kind: str, provider: str) -> None:
    node = node_id()
    created = await api_client.put(f"/network/nodes/{node}", json=node_body(kind))
    assert created.status_code == 201, created.text
    read = (await api_client.get(f"/network/nodes/{node}")).json()
    assert (read["provider"], read["endpoint"]) == (provider, None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "erp"}, "provider"),
        ({"endpoint": "not a url"}, "endpoint"),
        ({"endpoint": "ftp://wms.example.com/"}, "endpoint"),
    ],
)
async def test_bad_provider_or_endpoint_is_refused_naming_the_field(
    api_client: httpx.AsyncClient, changes: dict[str, str], field: str
) -> None:
    node = node_id()
    response = await api_client.put(f"/network/nodes/{node}", json=node_body("dc", **changes))
    assert any(f.endswith(field) for f in fields(response)), response.text
    assert (await api_client.get(f"/network/nodes/{node}")).status_code == 404
