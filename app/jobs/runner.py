"""run_training_job: the one function every executor (local pool, Celery task) calls."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import Job, JobStatus
from app.errors import InvalidInput
from app.jobs.heartbeat import Heartbeat
from app.jobs.spec import build, decide_task, describe_architecture
from app.schemas.jobs import Hyperparameters
from app.settings import Settings
from app.store import datasets, history, jobs, models
from core import DivergenceError, train

log = logging.getLogger(__name__)


def worker_id_for(pid: int) -> str:
    """host:pid, so the process that started a worker can tell which jobs died with it."""
    return f"{socket.gethostname()}:{pid}"


def make_worker_id() -> str:
    return worker_id_for(os.getpid())


class ProgressReporter:
    """The core's on_progress callback: buffers points, flushes them in short transactions.

    A flush also renews the job's heartbeat and reads its status; with what the heartbeat thread
    sees, a cancel request or an exhausted time limit stops training at the next recorded point.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        job_id: str,
        worker_id: str,
        heartbeat: Heartbeat,
        *,
        flush_seconds: float,
        time_limit_seconds: float,
    ) -> None:
        self._factory = factory
        self._heartbeat = heartbeat
        self._job_id = job_id
        self._worker_id = worker_id
        self._flush_seconds = flush_seconds
        self._deadline = time.monotonic() + time_limit_seconds
        self._pending: list[dict[str, Any]] = []
        self._curve = history.CurveWriter(job_id)
        self._last_flush = 0.0
        self.cancelled = False
        self.timed_out = False
        self.lost = False

    def __call__(self, iteration: int, metrics: dict[str, float]) -> bool:
        self._pending.append(dict(metrics))
        now = time.monotonic()
        if now - self._last_flush >= self._flush_seconds:
            self.flush()
            self._last_flush = now
        if now > self._deadline:
            self.timed_out = True
        self.cancelled = self.cancelled or self._heartbeat.cancel_requested.is_set()
        return self.cancelled or self.timed_out or self.lost

    def flush(self) -> None:
        if not self._pending:
            return
        last_iteration = int(self._pending[-1]["iteration"])
        with transaction(self._factory) as session:
            self._curve.append(session, self._pending)
            status = jobs.record_progress(session, self._job_id, self._worker_id, last_iteration)
        self._pending = []
        self.cancelled = self.cancelled or status == JobStatus.CANCELLING
        # The job was closed under this worker (its lease ran out): nothing it does counts now.
        self.lost = self.lost or status is None


class _LeaseLost(Exception):
    pass


def run_training_job(
    factory: sessionmaker[Session], job_id: str, worker_id: str, settings: Settings
) -> JobStatus | None:
    """Claim the job, train it, store its model; returns the final status, or None if not ours.

    A job delivered twice runs once: only the worker whose claim moves it out of `queued` trains.
    """
    with transaction(factory) as session:
        if not jobs.claim_job(session, job_id, worker_id):
            return None
        job = session.get_one(Job, job_id)
        stored = job.hyperparameters
        dataset_id, model_name, tenant_id = job.dataset_id, job.model_name, job.tenant_id
        dataset = datasets.get_dataset(session, tenant_id, dataset_id) if dataset_id else None
        label_kind, classes = (dataset.task, dataset.classes) if dataset else (None, None)
        arrays = datasets.load_arrays(session, dataset_id) if dataset_id else None
    if arrays is None or label_kind is None:
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, "the dataset was deleted")
    try:
        hyperparameters = Hyperparameters.model_validate(stored)
        if hyperparameters.task == "auto":
            # Queued before submission stored the decided task: decide it the same way now.
            task = decide_task("auto", label_kind, classes)
            hyperparameters = hyperparameters.model_copy(update={"task": task})
    except (ValueError, InvalidInput) as exc:
        return _finish(
            factory, job_id, worker_id, JobStatus.FAILED, f"invalid training setup: {exc}"
        )
    try:
        with Heartbeat(factory, job_id, worker_id, settings.job_lease_seconds) as heartbeat:
            return _train_and_store(
                factory,
                job_id,
                worker_id,
                heartbeat,
                settings,
                hyperparameters,
                arrays,
                tenant_id=tenant_id,
                model_name=model_name,
                dataset_id=dataset_id,
            )
    except Exception:
        log.exception("job %s failed unexpectedly", job_id)
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, "internal error in the worker")


def _train_and_store(
    factory: sessionmaker[Session],
    job_id: str,
    worker_id: str,
    heartbeat: Heartbeat,
    settings: Settings,
    hyperparameters: Hyperparameters,
    arrays: datasets.DatasetArrays,
    *,
    tenant_id: str,
    model_name: str,
    dataset_id: str | None,
) -> JobStatus | None:
    reporter = ProgressReporter(
        factory,
        job_id,
        worker_id,
        heartbeat,
        flush_seconds=settings.progress_flush_seconds,
        time_limit_seconds=settings.job_time_limit_seconds,
    )
    try:
        net, config = build(hyperparameters, arrays.X, arrays.y)
        result = train(net, arrays.X, arrays.y, config, on_progress=reporter)
    except DivergenceError as exc:
        reporter.flush()
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, f"training diverged: {exc}")
    except ValueError as exc:
        reporter.flush()
        return _finish(
            factory, job_id, worker_id, JobStatus.FAILED, f"invalid training setup: {exc}"
        )
    reporter.flush()
    if reporter.lost:
        return None
    if reporter.cancelled:
        return _finish(factory, job_id, worker_id, JobStatus.CANCELLED, None)
    if reporter.timed_out:
        limit = settings.job_time_limit_seconds
        return _finish(
            factory,
            job_id,
            worker_id,
            JobStatus.FAILED,
            f"the job time limit of {limit:g} s was reached",
        )

    final = result.history[-1] if result.history else {}
    metrics = {
        **final,
        "n_iterations_run": result.n_iterations_run,
        "stopped_early": result.stopped_early,
        "best_iteration": result.best_iteration,
    }
    weights = net.to_bytes()
    try:
        with transaction(factory) as session:
            model = models.create_model(
                session,
                tenant_id=tenant_id,
                name=model_name,
                job_id=job_id,
                dataset_id=dataset_id,
                architecture=describe_architecture(net),
                metrics=metrics,
                weights=weights,
            )
            if not jobs.finish_job(
                session, job_id, worker_id, JobStatus.SUCCEEDED, model_id=model.id
            ):
                # The job was reconciled away (lease lost) while training; the model is not kept.
                raise _LeaseLost
    except _LeaseLost:
        return None
    return JobStatus.SUCCEEDED


def _finish(
    factory: sessionmaker[Session],
    job_id: str,
    worker_id: str,
    status: JobStatus,
    error: str | None,
) -> JobStatus:
    with transaction(factory) as session:
        jobs.finish_job(session, job_id, worker_id, status, error=error)
    return status
