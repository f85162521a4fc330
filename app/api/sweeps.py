"""/sweeps: create a hyperparameter search, read its leaderboard, cancel it."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from app.api.deps import (
    ExecutorDep,
    IdempotencyKeyDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    TenantDep,
)
from app.jobs import sweeps
from app.jobs.sweep_board import describe, summary
from app.schemas.common import Limit, Offset, error_responses
from app.schemas.sweeps import SweepAccepted, SweepList, SweepOut, SweepRequest, SweepSummary
from app.store import idempotency
from app.store import sweeps as store

router = APIRouter(tags=["sweeps"], responses=error_responses(400, 401, 404, 409, 422, 429, 503))


@router.post(
    "/sweeps",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepAccepted,
    summary="Start a grid or random hyperparameter search; its trials are ordinary jobs",
)
def create_sweep(
    body: SweepRequest,
    session: SessionDep,
    settings: SettingsDep,
    executor: ExecutorDep,
    tenant: TenantDep,
    key: IdempotencyKeyDep,
) -> JSONResponse:
    digest = idempotency.request_digest(body.model_dump_json().encode())
    outcome = sweeps.create_sweep(
        session, executor, tenant, body, settings, idempotency_key=key, digest=digest
    )
    # `id`, as the 202 of POST /train and GET /sweeps/{id} name it; sweep_id stays for older
    # clients (and answers stored under an Idempotency-Key before `id` was added get it too).
    answer = {"id": outcome.response["sweep_id"], **outcome.response}
    return JSONResponse(
        answer,
        status_code=outcome.status_code,
        headers={"Location": str(outcome.response["location"])},
    )


@router.get("/sweeps", response_model=SweepList)
def list_sweeps(
    session: ReadSessionDep, tenant: TenantDep, limit: Limit = 50, offset: Offset = 0
) -> SweepList:
    items = store.list_sweeps(session, tenant, limit=limit, offset=offset)
    return SweepList(items=[summary(sweep) for sweep in items], limit=limit, offset=offset)


@router.get("/sweeps/{sweep_id}", response_model=SweepOut)
def get_sweep(sweep_id: str, session: ReadSessionDep, tenant: TenantDep) -> SweepOut:
    return describe(session, store.get_sweep(session, tenant, sweep_id))


@router.post(
    "/sweeps/{sweep_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SweepSummary,
    summary="Cancel queued trials, ask running ones to stop, start no more",
)
def cancel_sweep(sweep_id: str, session: SessionDep, tenant: TenantDep) -> SweepSummary:
    return summary(sweeps.cancel_sweep(session, tenant, sweep_id))
