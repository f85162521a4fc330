"""POST /train and /jobs: submit, list, show, poll the history, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter

from app.api.deps import (
    ExecutorDep,
    IdempotencyKeyDep,
    ReadSessionDep,
    SessionDep,
    SettingsDep,
    TenantDep,
)
from app.db.tables import Job
from app.job_status import JobStatus
from app.jobs.submit import submit_and_dispatch
from app.schemas.common import PLAIN_INT, Limit, Offset, Since, error_responses
from app.schemas.jobs import (
    DEFAULT_CURVE_POINTS,
    MAX_CURVE_POINTS,
    HistoryOut,
    JobAccepted,
    JobList,
    JobOut,
    JobSummary,
    TrainRequest,
)
from app.store import history, idempotency, job_metrics, jobs

router = APIRouter(tags=["jobs"], responses=error_responses(400, 401, 404, 409, 413, 422, 429, 503))
THINNING = (
    "at most this many points: a longer curve is thinned to real recorded points (its first "
    "and last, and per bucket its first, lowest-cost, highest-cost and last)"
)
MaxPoints = Annotated[int, Query(ge=2, le=MAX_CURVE_POINTS, description=THINNING), PLAIN_INT]
ThinTo = Annotated[int | None, Query(ge=2, le=MAX_CURVE_POINTS, description=THINNING), PLAIN_INT]
HistoryLimit = Annotated[
    int,
    Query(ge=1, le=MAX_CURVE_POINTS, description="at most this many points per page"),
    PLAIN_INT,
]
DEFAULT_HISTORY_PAGE = 10_000


def progress(job: Job) -> float:
    """0..1 over this job's own iterations (a continued run starts at start_iteration)."""
    if job.status == JobStatus.SUCCEEDED:
        return 1.0
    if not job.n_iterations:
        return 0.0
    return min(1.0, max(0.0, (job.last_iteration - job.start_iteration) / job.n_iterations))


# A curve read returns up to 10^4-10^5 points: validating each into HistoryPointOut and
# serializing it back costs ~2.5 ms per 1,000 points, so the read routes serialize the store's
# plain dicts (the same shape: missing validation metrics omitted) in one call. The declared
# response_model still documents the body.
CURVE_BODY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])


def curve_response(body: dict[str, Any]) -> Response:
    return Response(CURVE_BODY.dump_json(body), media_type="application/json")


def summary(job: Job, metrics: dict[str, Any] | None = None) -> JobSummary:
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
        hyperparameters=job.hyperparameters,
        metrics=metrics,
    )


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
    key: IdempotencyKeyDep,
) -> Response:
    digest = idempotency.request_digest(body.model_dump_json().encode())
    outcome = submit_and_dispatch(
        session, executor, tenant, body, settings, idempotency_key=key, digest=digest
    )
    return accepted_response(outcome.response, outcome.status_code)


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
    metrics = job_metrics.final_metrics(session, items)
    return JobList(
        items=[summary(job, metrics.get(job.id)) for job in items], limit=limit, offset=offset
    )


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(
    job_id: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    max_points: MaxPoints = DEFAULT_CURVE_POINTS,
) -> Response:
    job = jobs.get_job(session, tenant, job_id)
    curve = history.read_curve(session, job_id, max_points=max_points)
    metrics = job_metrics.final_metrics(session, [job]).get(job.id)
    body = summary(job, metrics).model_dump(mode="json")
    return curve_response(
        {
            **body,
            "history": curve.points,
            "thinned": curve.thinned,
            "points_total": curve.total,
            "full_history": f"/jobs/{job_id}/history",
        }
    )


@router.get("/jobs/{job_id}/history", response_model=HistoryOut)
def get_history(
    job_id: str,
    session: ReadSessionDep,
    tenant: TenantDep,
    since: Since = 0,
    limit: HistoryLimit = DEFAULT_HISTORY_PAGE,
    max_points: ThinTo = None,
) -> Response:
    """Every point after `since`, oldest first, a page of `limit` at a time (follow
    `next_since`); with `max_points`, one thinned view of them instead."""
    job = jobs.get_job(session, tenant, job_id)
    if max_points is not None:
        curve = history.read_curve(session, job_id, max_points=max_points, since=since)
        points, next_since, thinned = curve.points, None, curve.thinned
    else:
        page = history.read_page(session, job_id, since=since, limit=limit)
        points, next_since, thinned = page.points, page.next_since, False
    return curve_response(
        {
            "job_id": job_id,
            "status": JobStatus(job.status).value,
            "since": since,
            "limit": limit,
            "points": points,
            "next_since": next_since,
            "thinned": thinned,
        }
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
