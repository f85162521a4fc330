"""Open Inference Protocol v2 server routes: server metadata, liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.api.deps import ExecutorDep, ReadSessionDep
from app.v2.codec import PROTOCOL_PREFIX, ProtocolError

EXTENSIONS = ["binary_tensor_data", "model_configuration", "statistics"]

router = APIRouter(prefix=PROTOCOL_PREFIX)


# HEAD is taken wherever a probe may send it (as app/api/health.py says); not in the document.
@router.get("", summary="Server metadata")
@router.head("", include_in_schema=False)
def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": "dnn-service", "version": request.app.version, "extensions": EXTENSIONS}


@router.get(
    "/health/live", summary="200 while the server answers requests", response_class=Response
)
@router.head("/health/live", include_in_schema=False)
def live() -> Response:
    return Response(status_code=200)


@router.get(
    "/health/ready",
    summary="200 when the database and the workers are available",
    response_class=Response,
)
@router.head("/health/ready", include_in_schema=False)
def ready(session: ReadSessionDep, executor: ExecutorDep) -> Response:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise ProtocolError("not ready: the database is unreachable") from exc
    if not executor.ready():
        raise ProtocolError("not ready: no training workers are available")
    return Response(status_code=200)
