"""The Temporal client, configured once: the same data converter for the API, the worker and the tests."""

from __future__ import annotations

import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from infra.settings import Settings
from workflows.contracts import SEARCH_ATTRIBUTES

log = structlog.get_logger(__name__)

DATA_CONVERTER: DataConverter = pydantic_data_converter


async def connect(settings: Settings) -> Client:
    tls: TLSConfig | bool = settings.temporal_tls
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_target(),
        namespace=settings.temporal_namespace,
        api_key=api_key,
        tls=tls or bool(api_key),
        data_converter=DATA_CONVERTER,
    )


def search_attribute_flags() -> list[str]:
    """``--search-attribute`` arguments for the dev server, from the same list the workflow uses."""
    kinds = {
        SearchAttributeIndexedValueType.KEYWORD: "Keyword",
        SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
    }
    flags: list[str] = []
    for key in SEARCH_ATTRIBUTES:
        flags += ["--search-attribute", f"{key.name}={kinds[key.indexed_value_type]}"]
    return flags


async def prepare_namespace(client: Client) -> None:
    """Best effort at start-up, from the API and the worker alike: whichever starts first registers the search
    attributes that starting an order needs. Where the credentials may not (Temporal Cloud), register them in
    the namespace settings instead; the failure is logged, not fatal."""
    try:
        added = await ensure_search_attributes(client)
        if added:
            log.info("registered search attributes", names=added)
    except RPCError as err:
        log.warning("could not check search attributes; register them by hand if missing", error=str(err))


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register the project's search attributes where they are missing; returns the names added."""
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as err:
        # The time-skipping test server can add search attributes but not list them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in SEARCH_ATTRIBUTES
        if key.name not in known
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
