"""Sweeps and the link from a sweep's trials to their jobs.

A sweep only moves forward under its row lock (`lock_sweep`), and its trial counter only by a
conditional UPDATE (`claim_next_trial`); the (sweep, trial) primary key of the link table is
the last word: a trial can become a job once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.tables import Job, Model, Sweep, SweepStatus, SweepTrial, utcnow
from app.errors import NotFound
from app.ids import new_id
from app.job_status import ACTIVE_STATES
from app.store import history


def create_sweep(
    session: Session,
    *,
    tenant_id: str,
    name: str,
    dataset_id: str,
    metric: str,
    goal: str,
    max_parallel: int,
    search: dict[str, Any],
    trials: list[dict[str, Any]],
    promote: str | None,
) -> Sweep:
    sweep = Sweep(
        id=new_id(),
        tenant_id=tenant_id,
        name=name,
        dataset_id=dataset_id,
        status=SweepStatus.RUNNING,
        metric=metric,
        goal=goal,
        max_parallel=max_parallel,
        search=search,
        trials=trials,
        n_trials=len(trials),
        next_trial=0,
        promote=promote,
    )
    session.add(sweep)
    session.flush()
    return sweep


def get_sweep(session: Session, tenant_id: str, sweep_id: str) -> Sweep:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None or sweep.tenant_id != tenant_id:
        raise NotFound(f"sweep {sweep_id!r} does not exist")
    return sweep


def list_sweeps(session: Session, tenant_id: str, *, limit: int, offset: int) -> Sequence[Sweep]:
    query = (
        select(Sweep)
        .where(Sweep.tenant_id == tenant_id)
        .order_by(Sweep.created_at.desc(), Sweep.id)
        .limit(limit)
        .offset(offset)
    )
    return session.scalars(query).all()


def lock_sweep(session: Session, sweep_id: str) -> Sweep | None:
    """The sweep, its row locked until the transaction ends (PostgreSQL; SQLite's write
    transactions are serialized already), read fresh rather than from the session's cache."""
    query = (
        select(Sweep)
        .where(Sweep.id == sweep_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalars(query).first()


def claim_next_trial(session: Session, sweep_id: str, expected: int) -> bool:
    """Move the trial counter from `expected` to the next; False if anyone moved it first."""
    claimed = session.execute(
        update(Sweep)
        .where(
            Sweep.id == sweep_id,
            Sweep.next_trial == expected,
            Sweep.status == SweepStatus.RUNNING,
        )
        .values(next_trial=expected + 1)
        .returning(Sweep.id)
    )
    return claimed.first() is not None


def link_trial(session: Session, sweep_id: str, trial: int, job_id: str) -> None:
    session.add(SweepTrial(sweep_id=sweep_id, trial=trial, job_id=job_id))
    session.flush()


def unfinished_job_ids(session: Session, sweep_id: str) -> list[str]:
    query = (
        select(Job.id)
        .join(SweepTrial, SweepTrial.job_id == Job.id)
        .where(SweepTrial.sweep_id == sweep_id, Job.status.in_(ACTIVE_STATES))
    )
    return list(session.scalars(query))


def sweep_of_job(session: Session, job_id: str) -> str | None:
    return session.scalar(select(SweepTrial.sweep_id).where(SweepTrial.job_id == job_id))


def dataset_in_use(session: Session, dataset_id: str) -> bool:
    """A running sweep needs its dataset for the trials it has yet to start, even at a moment
    when none of its trials is queued or running (between one's end and the next's start)."""
    query = select(Sweep.id).where(
        Sweep.dataset_id == dataset_id, Sweep.status == SweepStatus.RUNNING
    )
    return session.scalar(query.limit(1)) is not None


def finish_sweep(
    session: Session, sweep_id: str, status: SweepStatus, error: str | None = None
) -> bool:
    """Close a running sweep; False when it was closed already."""
    closed = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status == SweepStatus.RUNNING)
        .values(status=status, finished_at=utcnow(), error=error)
        .returning(Sweep.id)
    )
    return closed.first() is not None


def stalled_sweep_ids(session: Session) -> list[str]:
    """Running sweeps that could start a trial or close now: fewer unfinished trials than they
    may run, and trials left to start or none unfinished."""
    unfinished = (
        select(func.count())
        .select_from(SweepTrial)
        .join(Job, SweepTrial.job_id == Job.id)
        .where(SweepTrial.sweep_id == Sweep.id, Job.status.in_(ACTIVE_STATES))
        .scalar_subquery()
    )
    query = select(Sweep.id).where(
        Sweep.status == SweepStatus.RUNNING,
        unfinished < Sweep.max_parallel,
        (Sweep.next_trial < Sweep.n_trials) | (unfinished == 0),
    )
    return list(session.scalars(query))


def trial_jobs(session: Session, sweep_id: str) -> list[tuple[int, Job]]:
    query = (
        select(SweepTrial.trial, Job)
        .join(Job, SweepTrial.job_id == Job.id)
        .where(SweepTrial.sweep_id == sweep_id)
        .order_by(SweepTrial.trial)
    )
    return [(trial, job) for trial, job in session.execute(query).all()]


def final_metrics(session: Session, jobs: Sequence[Job]) -> dict[str, dict[str, Any]]:
    """Each job's final metrics: its model's, else the last point of its curve (a failed or
    cancelled trial keeps its curve)."""
    model_ids = [job.model_id for job in jobs if job.model_id]
    found: dict[str, dict[str, Any]] = {}
    if model_ids:
        rows = session.execute(select(Model.job_id, Model.metrics).where(Model.id.in_(model_ids)))
        found = {job_id: dict(metrics) for job_id, metrics in rows if job_id}
    for job in jobs:
        if job.id not in found:
            # The curve's last point; a two-point view reads only the curve's ends.
            points = history.read_curve(session, job.id, max_points=2).points
            if points:
                found[job.id] = points[-1]
    return found
