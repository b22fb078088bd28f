"""Dependencies resolved per request from what the lifespan built once per process."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from temporalio.client import Client

from infra.db.uow import UnitOfWork, UowFactory
from infra.settings import Settings


@dataclass
class AppState:
    settings: Settings
    temporal: Client
    uow: UowFactory


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.orchestrator
    return state


def _settings(state: Annotated[AppState, Depends(_state)]) -> Settings:
    return state.settings


def _temporal(state: Annotated[AppState, Depends(_state)]) -> Client:
    return state.temporal


def _uow(state: Annotated[AppState, Depends(_state)]) -> UnitOfWork:
    return state.uow()


SettingsDep = Annotated[Settings, Depends(_settings)]
TemporalDep = Annotated[Client, Depends(_temporal)]
UowDep = Annotated[UnitOfWork, Depends(_uow)]
