"""The fulfilment network as decisions see it: nodes, what they can do, and what they can promise."""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.orders import GeoPoint


class NodeKind(StrEnum):
    DC = "dc"
    STORE = "store"
    THREE_PL = "3pl"
    DROPSHIP = "dropship"


class Capability(StrEnum):
    SHIP = "ship"
    PICKUP = "pickup"
    SHIP_FROM_STORE = "ship_from_store"
    TRANSFER_ORIGIN = "transfer_origin"
    TRANSFER_DESTINATION = "transfer_destination"


class NodeStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class NodeView(BaseModel):
    """A node as seen by the sourcing engine at one moment."""

    model_config = ConfigDict(frozen=True)

    node_id: str
    name: str
    kind: NodeKind
    status: NodeStatus
    capabilities: frozenset[Capability]
    location: GeoPoint
    priority: int = 100


class NetworkSnapshot(BaseModel):
    """Nodes and available-to-promise for the SKUs of one order, read in one transaction."""

    model_config = ConfigDict(frozen=True)

    nodes: list[NodeView]
    # atp[node_id][sku] = units available to promise at that node
    atp: dict[str, dict[str, int]] = Field(default_factory=dict)

    def atp_of(self, node_id: str, sku: str) -> int:
        return self.atp.get(node_id, {}).get(sku, 0)


EARTH_RADIUS_KM = 6371.0088


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance; good enough to rank nodes, not to rate a parcel."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))
