"""Dependencies resolved per request from what the lifespan built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from infra.checkout import CheckoutService
from infra.db.uow import UnitOfWork, UowFactory
from infra.geo import CityGeocoder
from infra.settings import Settings

DEFAULT_ACTOR = "api"


@dataclass
class AppState:
    settings: Settings
    temporal: Client
    uow: UowFactory
    # Builds its index of places on first use, then keeps it: one per process.
    geocoder: CityGeocoder = field(default_factory=CityGeocoder)
    checkout: CheckoutService = field(init=False)

    def __post_init__(self) -> None:
        ttl = timedelta(seconds=self.settings.quote_ttl_s)
        window = timedelta(seconds=self.settings.order_change_window_s)
        self.checkout = CheckoutService(self.uow, self.geocoder, self.settings.quote_secrets, ttl, release_delay=window)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.orchestrator
    return state


def _settings(state: Annotated[AppState, Depends(_state)]) -> Settings:
    return state.settings


def _temporal(state: Annotated[AppState, Depends(_state)]) -> Client:
    return state.temporal


def _uow(state: Annotated[AppState, Depends(_state)]) -> UnitOfWork:
    return state.uow()


def _geocoder(state: Annotated[AppState, Depends(_state)]) -> CityGeocoder:
    return state.geocoder


def _checkout(state: Annotated[AppState, Depends(_state)]) -> CheckoutService:
    return state.checkout


SettingsDep = Annotated[Settings, Depends(_settings)]
TemporalDep = Annotated[Client, Depends(_temporal)]
UowDep = Annotated[UnitOfWork, Depends(_uow)]
GeocoderDep = Annotated[CityGeocoder, Depends(_geocoder)]
CheckoutDep = Annotated[CheckoutService, Depends(_checkout)]
