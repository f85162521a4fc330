"""Request-scoped dependencies: settings, a database session, the caller's tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app.auth import AuthGate
from app.errors import Forbidden
from app.jobs.dispatch import Executor
from app.serving import InferenceService
from app.settings import Settings
from app.store import idempotency
from app.store.keys import Caller

# The dependencies without I/O are `async def`, so FastAPI calls them on the event loop instead
# of sending each one through the threadpool.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session_factory(request: Request) -> sessionmaker[Session]:
    """For routes that open their own short sessions (in a thread, or per poll)."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    return factory


async def get_read_session_factory(request: Request) -> sessionmaker[Session]:
    """Read-only sessions: on SQLite they never take the write lock from the workers."""
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    return factory


SessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_session_factory)]
ReadSessionFactoryDep = Annotated[sessionmaker[Session], Depends(get_read_session_factory)]


def get_session(factory: SessionFactoryDep) -> Iterator[Session]:
    with factory() as session:
        yield session


def get_read_session(factory: ReadSessionFactoryDep) -> Iterator[Session]:
    """A session for routes that only read: on SQLite it never holds the write lock."""
    with factory() as session:
        yield session


async def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


async def get_inference(request: Request) -> InferenceService:
    service: InferenceService = request.app.state.inference
    return service


async def get_auth_gate(request: Request) -> AuthGate:
    gate: AuthGate = request.app.state.auth
    return gate


def _resolve_caller(
    gate: AuthGate, factory: sessionmaker[Session], authorization: str | None
) -> Caller:
    # Its own short session: the route's session must start with no transaction open.
    with factory() as session:
        return gate.caller(session, authorization)


async def get_caller(
    gate: Annotated[AuthGate, Depends(get_auth_gate)],
    factory: ReadSessionFactoryDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    cached = gate.cached_caller(authorization, factory)
    if cached is not None:
        return cached
    return await run_in_threadpool(_resolve_caller, gate, factory, authorization)


def _metrics_allowed(
    gate: AuthGate, factory: sessionmaker[Session], authorization: str | None
) -> None:
    with factory() as session:
        if not gate.keys_required(session):
            return
        if not gate.caller(session, authorization).is_admin:
            raise Forbidden("GET /metrics needs an admin API key or DNN_METRICS_TOKEN")


async def require_metrics_access(
    request: Request,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> None:
    """Open when auth is none; otherwise an admin key or the metrics token (DNN_METRICS_TOKEN).

    The figures are summed over all tenants, so a tenant's own key is not enough.
    """
    gate: AuthGate = request.app.state.auth
    if gate.is_metrics_token(authorization):
        return
    factory: sessionmaker[Session] = request.app.state.read_session_factory
    await run_in_threadpool(_metrics_allowed, gate, factory, authorization)


async def get_tenant(caller: Annotated[Caller, Depends(get_caller)]) -> str:
    return caller.tenant_id


async def require_admin(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
    if not caller.is_admin:
        raise Forbidden("this route needs an admin API key")
    return caller


async def get_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(description="retrying with the same key returns the first response"),
    ] = None,
) -> str | None:
    return idempotency.check_key(idempotency_key) if idempotency_key is not None else None


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]
ReadSessionDep = Annotated[Session, Depends(get_read_session)]
ExecutorDep = Annotated[Executor, Depends(get_executor)]
InferenceDep = Annotated[InferenceService, Depends(get_inference)]
AuthGateDep = Annotated[AuthGate, Depends(get_auth_gate)]
TenantDep = Annotated[str, Depends(get_tenant)]
AdminDep = Annotated[Caller, Depends(require_admin)]
MetricsAccessDep = Annotated[None, Depends(require_metrics_access)]
IdempotencyKeyDep = Annotated[str | None, Depends(get_idempotency_key)]
