"""POST /train and /jobs: submit, list, show, poll the history, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from app.api.deps import ExecutorDep, ReadSessionDep, SessionDep, SettingsDep, TenantDep
from app.db.tables import Job, JobStatus
from app.jobs.submit import SubmitHooks, submit_and_dispatch
from app.schemas.common import Limit, Offset, Since, error_responses
from app.schemas.jobs import HistoryOut, JobAccepted, JobList, JobOut, JobSummary, TrainRequest
from app.store import history, idempotency, jobs

router = APIRouter(tags=["jobs"], responses=error_responses(400, 401, 404, 409, 413, 422, 429, 503))
TRAIN_SCOPE = "POST /train"
MaxPoints = Annotated[
    int | None, Query(ge=2, le=1_000_000, description="thin the curve to this many points")
]


def progress(job: Job) -> float:
    """0..1 over this job's own iterations (a continued run starts at start_iteration)."""
    if job.status == JobStatus.SUCCEEDED:
        return 1.0
    if not job.n_iterations:
        return 0.0
    return min(1.0, max(0.0, (job.last_iteration - job.start_iteration) / job.n_iterations))


# Learning curves reach 10^4-10^5 points: validating each into HistoryPointOut and serializing it
# back costs ~2.5 ms per 1,000 points, so the read routes serialize the store's plain dicts (the
# same shape: missing validation metrics omitted) in one call. The declared response_model still
# documents the body.
CURVE_BODY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def curve_response(body: dict[str, Any]) -> Response:
    return Response(CURVE_BODY.dump_json(body), media_type="application/json")


def summary(job: Job) -> JobSummary:
    return JobSummary(
        id=job.id,
        status=JobStatus(job.status),
        progress=progress(job),
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        dataset_id=job.dataset_id,
        model_name=job.model_name,
        model_id=job.model_id,
        error=job.error,
        attempts=job.attempts,
        start_iteration=job.start_iteration,
        parent_model_id=job.parent_model_id,
        parent_job_id=job.parent_job_id,
    )


class _IdempotentTrain(SubmitHooks[JSONResponse]):
    """POST /train's idempotency, run inside submit_and_dispatch's transactions."""

    def __init__(self, tenant: str, key: str | None, digest: str) -> None:
        self.tenant, self.key, self.digest = tenant, key, digest

    def replay(self, session: Session) -> JSONResponse | None:
        if not self.key:
            return None
        replay = idempotency.find_replay(session, self.tenant, TRAIN_SCOPE, self.key, self.digest)
        return accepted_response(replay.response, replay.status_code) if replay else None

    def accepted(self, session: Session, job: Job) -> None:
        if self.key:
            body = accepted_body(job)
            idempotency.remember(
                session, self.tenant, TRAIN_SCOPE, self.key, self.digest, 202, body
            )

    def not_dispatched(self, session: Session) -> None:
        if self.key:
            idempotency.forget(session, self.tenant, TRAIN_SCOPE, self.key)


@router.post(
    "/train",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobAccepted,
    summary="Queue a training job; poll Location for its learning curve",
)
def train(
    body: TrainRequest,
    session: SessionDep,
    settings: SettingsDep,
    executor: ExecutorDep,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(description="retrying with the same key returns the first response"),
    ] = None,
) -> Response:
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    digest = idempotency.request_digest(body.model_dump_json().encode())
    hooks = _IdempotentTrain(tenant, key, digest)
    submitted = submit_and_dispatch(session, executor, tenant, body, settings, hooks)
    if isinstance(submitted, JSONResponse):
        return submitted
    return accepted_response(accepted_body(submitted), status.HTTP_202_ACCEPTED)


def accepted_body(job: Job) -> dict[str, Any]:
    return JobAccepted(
        job_id=job.id,
        status=JobStatus.QUEUED,
        dataset_id=str(job.dataset_id),
        location=f"/jobs/{job.id}",
    ).model_dump(mode="json")


def accepted_response(accepted: dict[str, Any], status_code: int) -> JSONResponse:
    return JSONResponse(
        accepted, status_code=status_code, headers={"Location": accepted["location"]}
    )


@router.get("/jobs", response_model=JobList)
def list_jobs(
    session: ReadSessionDep,
    tenant: TenantDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> JobList:
    items = jobs.list_jobs(session, tenant, status=status_filter, limit=limit, offset=offset)
    return JobList(items=[summary(job) for job in items], limit=limit, offset=offset)


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(
    job_id: str, session: ReadSessionDep, tenant: TenantDep, max_points: MaxPoints = None
) -> Response:
    job = jobs.get_job(session, tenant, job_id)
    points = history.read_points(session, job_id, max_points=max_points)
    body = summary(job).model_dump(mode="json")
    return curve_response({**body, "hyperparameters": job.hyperparameters, "history": points})


@router.get("/jobs/{job_id}/history", response_model=HistoryOut)
def get_history(
    job_id: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    since: Since = 0,
    max_points: MaxPoints = None,
) -> Response:
    job = jobs.get_job(session, tenant, job_id)
    points = history.read_points(session, job_id, since=since, max_points=max_points)
    status_value = JobStatus(job.status).value
    return curve_response(
        {"job_id": job_id, "status": status_value, "since": since, "points": points}
    )


@router.post(
    "/jobs/{job_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobSummary,
)
def cancel_job(job_id: str, session: SessionDep, tenant: TenantDep) -> JobSummary:
    with session.begin():
        job = jobs.request_cancel(session, tenant, job_id)
        return summary(job)
