"""A job's final metrics for listings: its model's metrics, or its last recorded point.

Kept apart from app/store/jobs.py (the job lifecycle) because it reads two other tables: the
model a succeeded job produced, and the curve of a job that produced none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db.tables import Job, Model
from app.store import history


def final_metrics(session: Session, job_list: Sequence[Job]) -> dict[str, dict[str, Any]]:
    """Per job id: the model's metrics (final point plus ``best_iteration``, ``stopped_early``)
    for a job with a model, else the last recorded point; jobs with neither are left out.

    One query for all the models, then one bounded read (the newest chunk) per job without a
    model, so a page of 100 jobs costs at most 101 small reads.
    """
    model_ids = [job.model_id for job in job_list if job.model_id]
    by_model: dict[str, dict[str, Any]] = {}
    if model_ids:
        rows = session.execute(select(Model.id, Model.metrics).where(Model.id.in_(model_ids)))
        by_model = {model_id: dict(metrics) for model_id, metrics in rows}
    found: dict[str, dict[str, Any]] = {}
    for job in job_list:
        if job.model_id and job.model_id in by_model:
            found[job.id] = by_model[job.model_id]
            continue
        last = history.last_point(session, job.id)
        if last is not None:
            found[job.id] = last
    return found
