"""Request-scoped dependencies: settings, a database session, the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.jobs.dispatch import Executor
from app.serving import ModelCache
from app.settings import Settings

OPEN_MODE_TENANT = "public"


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


def get_tenant() -> str:
    return OPEN_MODE_TENANT


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
TenantDep = Annotated[str, Depends(get_tenant)]
