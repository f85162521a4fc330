"""Jobs and their state machine: queued -> running -> succeeded | failed | cancelled (+ cancelling);
a running job whose worker died goes back to queued while it has attempts left.

Every transition is a conditional UPDATE on the current status, so two processes racing on the
same job (a duplicate delivery, a cancel arriving as training ends) cannot both win.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, or_, select, update
from sqlalchemy.orm import Session

from app.db.tables import Job, utcnow
from app.errors import Conflict, NotFound
from app.ids import new_id
from app.job_status import ACTIVE_STATES, JobStatus


def create_job(
    session: Session,
    *,
    tenant_id: str,
    dataset_id: str,
    hyperparameters: dict[str, Any],
    model_name: str,
    n_iterations: int,
    start_iteration: int = 0,
    parent_model_id: str | None = None,
    parent_job_id: str | None = None,
) -> Job:
    job = Job(
        id=new_id(),
        tenant_id=tenant_id,
        dataset_id=dataset_id,
        status=JobStatus.QUEUED,
        hyperparameters=hyperparameters,
        model_name=model_name,
        n_iterations=n_iterations,
        start_iteration=start_iteration,
        last_iteration=start_iteration,
        parent_model_id=parent_model_id,
        parent_job_id=parent_job_id,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, tenant_id: str, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or job.tenant_id != tenant_id:
        raise NotFound(f"job {job_id!r} does not exist")
    return job


def list_jobs(
    session: Session, tenant_id: str, *, status: JobStatus | None, limit: int, offset: int
) -> Sequence[Job]:
    query = select(Job).where(Job.tenant_id == tenant_id)
    if status is not None:
        query = query.where(Job.status == status)
    query = query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
    return session.scalars(query).all()


def lock_tenant_jobs(session: Session, tenant_id: str) -> None:
    """Hold this tenant's job-submission lock until the transaction ends.

    Counting a tenant's active jobs and inserting a new one must not interleave with another
    submission of the same tenant, or both see "4 of 5" and both insert; nor may a dataset's
    deletion look for the jobs using it while a submission on it is yet to commit, or both
    succeed and the job fails. PostgreSQL takes a transaction-scoped advisory lock keyed by the
    tenant (released at commit or rollback); SQLite needs nothing more, since its write
    transactions (BEGIN IMMEDIATE) are serialized.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_tenant_lock_key(tenant_id))))


def _tenant_lock_key(tenant_id: str) -> int:
    # A signed 64-bit key from the tenant's name; a collision only serializes two tenants.
    digest = hashlib.sha256(f"dnn-service:jobs:{tenant_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def count_active_jobs(session: Session, tenant_id: str) -> int:
    query = select(func.count()).where(Job.tenant_id == tenant_id, Job.status.in_(ACTIVE_STATES))
    return int(session.scalar(query) or 0)


def dataset_in_use(session: Session, dataset_id: str) -> bool:
    query = select(Job.id).where(Job.dataset_id == dataset_id, Job.status.in_(ACTIVE_STATES))
    return session.scalar(query.limit(1)) is not None


def request_cancel(session: Session, tenant_id: str, job_id: str) -> Job:
    """Queued jobs are cancelled at once; running ones are asked to stop at their next check."""
    job = get_job(session, tenant_id, job_id)
    now = utcnow()
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = now
    elif job.status == JobStatus.RUNNING:
        job.status = JobStatus.CANCELLING
    elif job.status != JobStatus.CANCELLING:
        raise Conflict(
            f"job {job_id!r} has already finished ({job.status}) and cannot be cancelled"
        )
    session.flush()
    return job


def claim_job(session: Session, job_id: str, worker_id: str) -> bool:
    """Move a queued job to running for this worker; False if anyone else got there first.

    This conditional update is what keeps a job from ever running on two workers: a job
    queued again after its worker died is claimed by exactly one of the deliveries.
    """
    now = utcnow()
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            started_at=func.coalesce(Job.started_at, now),
            heartbeat_at=now,
            worker_id=worker_id,
            attempts=Job.attempts + 1,
        )
        .returning(Job.id)
    )
    return claimed.first() is not None


def next_queued_job_id(session: Session) -> str | None:
    query = select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.created_at, Job.id)
    return session.scalar(query.limit(1))


def mark_dispatched(session: Session, job_id: str) -> None:
    session.execute(update(Job).where(Job.id == job_id).values(dispatched_at=utcnow()))


def undispatched_job_ids(session: Session, *, older_than: timedelta) -> list[str]:
    """Queued jobs never handed to the executor (their API process died first), oldest first."""
    query = (
        select(Job.id)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.dispatched_at.is_(None),
            Job.created_at < utcnow() - older_than,
        )
        .order_by(Job.created_at)
    )
    return list(session.scalars(query))


def lost_dispatch_job_ids(session: Session, *, older_than: timedelta) -> list[str]:
    """Queued jobs published longer ago than `older_than` and still not claimed, oldest first."""
    query = (
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.dispatched_at < utcnow() - older_than)
        .order_by(Job.created_at)
    )
    return list(session.scalars(query))


def running_worker_ids(session: Session) -> list[str]:
    running = [JobStatus.RUNNING, JobStatus.CANCELLING]
    query = select(Job.worker_id).where(Job.status.in_(running), Job.worker_id.is_not(None))
    return [worker_id for worker_id in session.scalars(query.distinct()) if worker_id]


def renew_lease(session: Session, job_id: str, worker_id: str) -> str | None:
    """Renew the heartbeat of a job this worker runs; its status, or None if no longer ours."""
    return _touch_running(session, job_id, worker_id, heartbeat_at=utcnow())


def record_progress(
    session: Session, job_id: str, worker_id: str, last_iteration: int
) -> str | None:
    """Heartbeat plus progress; the status (a cancel request shows here), or None if not ours."""
    return _touch_running(
        session, job_id, worker_id, heartbeat_at=utcnow(), last_iteration=last_iteration
    )


def _touch_running(session: Session, job_id: str, worker_id: str, **values: Any) -> str | None:
    touched = session.execute(
        update(Job)
        .where(
            Job.id == job_id,
            Job.worker_id == worker_id,
            Job.status.in_([JobStatus.RUNNING, JobStatus.CANCELLING]),
        )
        .values(**values)
        .returning(Job.status)
    )
    return touched.scalar_one_or_none()


def finish_job(
    session: Session,
    job_id: str,
    worker_id: str,
    status: JobStatus,
    *,
    error: str | None = None,
    model_id: str | None = None,
) -> bool:
    """Close a job this worker holds; False when it was already closed (e.g. reconciled)."""
    closed = _touch_running(
        session,
        job_id,
        worker_id,
        status=status,
        finished_at=utcnow(),
        error=error,
        model_id=model_id,
    )
    return closed is not None


def fail_unstarted_job(session: Session, job_id: str, error: str) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.FAILED, finished_at=utcnow(), error=error)
    )


@dataclass
class Reconciled:
    """Jobs whose worker stopped: queued again (attempts left) or closed."""

    requeued: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)


def reconcile_abandoned(
    session: Session,
    *,
    lease: timedelta | None,
    max_attempts: int,
    dead_workers: Sequence[str] = (),
    alive_workers: Sequence[str] = (),
    shutdown: bool = False,
    now: datetime | None = None,
) -> Reconciled:
    """Handle running jobs whose worker is known dead or whose heartbeat lease ran out.

    A running job with attempts left goes back to `queued` (its next worker resumes it from its
    last checkpoint); one without fails with the reason; one being cancelled is cancelled. Each
    change is a conditional update on the status, worker and lease it was decided on, so two
    reconcilers never both act and a job re-claimed meanwhile is left alone. History rows and
    checkpoints stay. With ``lease`` None, only the dead workers' jobs. A job of one of ``alive_workers`` (processes the caller can see running) is
    left to it however late its heartbeat: a worker starved of CPU is slow, not dead. With
    ``shutdown`` (this server stopped its own workers), the interrupted
    attempt does not count: the job is queued again whatever its attempts.
    """
    now = now or utcnow()
    running = [JobStatus.RUNNING, JobStatus.CANCELLING]
    abandoned: ColumnElement[bool] = false()
    if lease is not None:
        abandoned = Job.heartbeat_at < now - lease
    if alive_workers:
        abandoned = and_(abandoned, Job.worker_id.not_in(alive_workers))
    if dead_workers:
        abandoned = or_(abandoned, Job.worker_id.in_(dead_workers))
    candidates = session.execute(
        select(Job.id, Job.status, Job.worker_id, Job.attempts, Job.last_iteration).where(
            Job.status.in_(running), abandoned
        )
    ).all()
    outcome = Reconciled()
    for job_id, status, worker_id, attempts, last_iteration in candidates:
        values: dict[str, Any]
        if status == JobStatus.CANCELLING:
            values = {
                "status": JobStatus.CANCELLED,
                "error": "the worker stopped while the job was being cancelled",
                "finished_at": now,
            }
        elif attempts < max_attempts or shutdown:
            values = {
                "status": JobStatus.QUEUED,
                "worker_id": None,
                "heartbeat_at": None,
                "dispatched_at": None,
            }
            if shutdown:
                values["attempts"] = Job.attempts - 1
        else:
            values = {
                "status": JobStatus.FAILED,
                "error": (
                    f"interrupted: the worker running this job stopped at iteration "
                    f"{last_iteration}, on attempt {attempts} of {max_attempts}; the curve and "
                    f"the last checkpoint are kept (continue it with resume_from_job)"
                ),
                "finished_at": now,
            }
        changed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == status, Job.worker_id == worker_id, abandoned)
            .values(**values)
            .returning(Job.id)
        ).first()
        if changed is not None:
            queued = values["status"] == JobStatus.QUEUED
            (outcome.requeued if queued else outcome.closed).append(job_id)
    return outcome
