"""The job figures `/metrics` reports: counts by state, timings and progress, read in one session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db.tables import Job
from app.job_status import JobStatus


@dataclass(frozen=True)
class JobFigures:
    by_state: dict[str, int]
    # Sum over every job of the last iteration it recorded.
    iterations: int
    # (created, started, finished) of every job a worker has started.
    timings: list[tuple[datetime, datetime, datetime | None]]
    # (last iteration, started) of every running job.
    running: list[tuple[int, datetime]]


def job_figures(session: Session) -> JobFigures:
    by_state = {
        str(status): int(count)
        for status, count in session.execute(
            select(Job.status, func.count()).group_by(Job.status)
        ).all()
    }
    iterations = int(session.scalar(select(func.sum(Job.last_iteration))) or 0)
    timings = session.execute(
        select(Job.created_at, Job.started_at, Job.finished_at).where(Job.started_at.is_not(None))
    ).all()
    running = session.execute(
        select(Job.last_iteration, Job.started_at).where(
            Job.status == JobStatus.RUNNING, Job.started_at.is_not(None)
        )
    ).all()
    return JobFigures(
        by_state=by_state,
        iterations=iterations,
        # The queries keep only rows with a start time.
        timings=[(c, s, f) for c, s, f in timings if s is not None],
        running=[(int(last), started) for last, started in running if started is not None],
    )
