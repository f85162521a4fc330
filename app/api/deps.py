"""Request-scoped dependencies: settings, a database session, the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session, sessionmaker

from app.auth import AuthGate
from app.errors import Forbidden
from app.jobs.dispatch import Executor
from app.serving import ModelCache
from app.settings import Settings
from app.store.keys import Caller


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_session(request: Request) -> Iterator[Session]:
    factory: sessionmaker[Session] = request.app.state.session_factory
    with factory() as session:
        yield session


def get_read_session(request: Request) -> Iterator[Session]:
    """A session for routes that only read: on SQLite it never holds the write lock."""
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    with factory() as session:
        yield session


def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


def get_model_cache(request: Request) -> ModelCache:
    cache: ModelCache = request.app.state.model_cache
    return cache


def get_caller(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    gate: AuthGate = request.app.state.auth
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    # Its own short session: the route's session must start with no transaction open.
    with factory() as session:
        return gate.caller(session, authorization)


def get_tenant(caller: Annotated[Caller, Depends(get_caller)]) -> str:
    return caller.tenant_id


def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this route needs an admin API key")
    return caller


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]
TenantDep = Annotated[str, Depends(get_tenant)]
AdminDep = Annotated[Caller, Depends(require_admin)]
