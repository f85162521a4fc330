"""Liveness and readiness.

/healthz is liveness, "the event loop answers": an async handler with no dependency, so it
needs neither the threadpool nor the database and answers while both are busy. /readyz checks
the database with a short timeout and caches the answer briefly, so a burst of probes (or a
slow database) costs one query, not one per probe.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.api.deps import ExecutorDep

router = APIRouter(tags=["health"])

READY_TTL_SECONDS = 2.0
READY_TIMEOUT_SECONDS = 1.0
FAILURE_TTL_SECONDS = 0.5


def _ping(factory: sessionmaker[Session]) -> bool:
    try:
        with factory() as session:
            session.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


class ReadinessCache:
    """The database check's last answer, reused for READY_TTL_SECONDS; one check in flight."""

    def __init__(
        self, ttl: float = READY_TTL_SECONDS, timeout: float = READY_TIMEOUT_SECONDS
    ) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._checked_at = float("-inf")
        self._ok = False
        self._inflight: asyncio.Future[bool] | None = None

    async def database_ok(self, factory: sessionmaker[Session]) -> bool:
        # A failure is kept briefly only, so a recovered database shows ready again at once.
        ttl = self.ttl if self._ok else min(self.ttl, FAILURE_TTL_SECONDS)
        if time.monotonic() - self._checked_at < ttl:
            return self._ok
        if self._inflight is None or self._inflight.done():
            # The loop's default executor, not the AnyIO threadpool the sync routes share:
            # a saturated threadpool must not make the service look unready.
            self._inflight = asyncio.get_running_loop().run_in_executor(None, _ping, factory)
        try:
            ok = await asyncio.wait_for(asyncio.shield(self._inflight), self.timeout)
        except TimeoutError:
            ok = False  # the query goes on in its thread; the next probe after the TTL retries
        self._ok, self._checked_at = ok, time.monotonic()
        return ok


# Probes and load balancers may ask with HEAD (a server must take HEAD wherever it takes GET,
# RFC 9110 9.1); the document lists the GET only.
@router.get("/healthz", response_model=dict[str, str])
@router.head("/healthz", include_in_schema=False)
async def healthz() -> JSONResponse:
    return JSONResponse({"status": "ok"})


@router.get("/readyz", responses={503: {"description": "database or workers unavailable"}})
@router.head("/readyz", include_in_schema=False)
async def readyz(request: Request, executor: ExecutorDep) -> JSONResponse:
    cache: ReadinessCache = request.app.state.readiness
    checks: dict[str, Any] = {}
    ok = await cache.database_ok(request.app.state.read_session_factory)
    checks["database"] = "ok" if ok else "unreachable"
    checks["workers"] = "ok" if executor.ready() else "unavailable"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )
