"""A sweep's leaderboard: its trials ranked by the sweep's metric, and the best one."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy.orm import Session

from app.db.tables import Job, Sweep, SweepStatus
from app.job_status import JobStatus
from app.schemas.sweeps import BestTrial, SweepOut, SweepSummary, TrialOut
from app.store import sweeps as store

PENDING = "pending"


def summary(sweep: Sweep) -> SweepSummary:
    return SweepSummary(
        id=sweep.id,
        name=sweep.name,
        status=SweepStatus(sweep.status),
        dataset_id=sweep.dataset_id,
        metric=sweep.metric,
        goal=sweep.goal,
        max_parallel=sweep.max_parallel,
        n_trials=sweep.n_trials,
        n_started=sweep.next_trial,
        promote=sweep.promote,
        created_at=sweep.created_at,
        finished_at=sweep.finished_at,
        error=sweep.error,
    )


def _searched(sweep: Sweep) -> list[str]:
    if "grid" in sweep.search:
        return list(sweep.search["grid"])
    return list(sweep.search.get("random", {}).get("space", {}))


def _score(sweep: Sweep, job: Job | None, metrics: dict[str, Any] | None) -> float | None:
    """The trial's value of the sweep's metric, when it finished with one."""
    if job is None or job.status != JobStatus.SUCCEEDED or not metrics:
        return None
    value = metrics.get(sweep.metric)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def describe(session: Session, sweep: Sweep) -> SweepOut:
    """The sweep with every planned trial, best first; trials without a score follow in plan
    order (started ones, then those not started yet)."""
    started = dict(store.trial_jobs(session, sweep.id))
    metrics = store.final_metrics(session, list(started.values()))
    searched = _searched(sweep)
    sign = -1.0 if sweep.goal == "max" else 1.0
    rows: list[tuple[tuple[float, ...], TrialOut]] = []
    for index, hyperparameters in enumerate(sweep.trials):
        job = started.get(index)
        trial_metrics = metrics.get(job.id) if job else None
        score = _score(sweep, job, trial_metrics)
        key = (0.0, sign * score, index) if score is not None else (1.0, job is None, index)
        trial = TrialOut(
            trial=index,
            job_id=job.id if job else None,
            status=job.status if job else PENDING,
            rank=None,
            params={name: hyperparameters.get(name) for name in searched},
            hyperparameters=hyperparameters,
            metrics=trial_metrics,
            model_id=job.model_id if job else None,
            started_at=job.started_at if job else None,
            finished_at=job.finished_at if job else None,
        )
        rows.append((key, trial))
    rows.sort(key=lambda row: row[0])
    trials = [row[1] for row in rows]
    ranked = [trial for key, trial in rows if key[0] == 0.0]
    for rank, trial in enumerate(ranked, start=1):
        trial.rank = rank
    best = None
    if ranked:
        top = ranked[0]
        assert top.job_id is not None and top.metrics is not None
        best = BestTrial(
            job_id=top.job_id,
            model_id=top.model_id,
            hyperparameters=top.hyperparameters,
            metrics=top.metrics,
        )
    return SweepOut(**summary(sweep).model_dump(), search=sweep.search, trials=trials, best=best)
