"""run_training_job: the one function every executor (local pool, Celery task) calls."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.db.tables import Job
from app.errors import InvalidInput
from app.job_status import JobStatus
from app.jobs.checkpoints import Checkpointer
from app.jobs.heartbeat import Heartbeat
from app.jobs.progress import ProgressReporter
from app.jobs.spec import build, decide_task, describe_architecture
from app.schemas.jobs import Hyperparameters
from app.settings import Settings
from app.store import checkpoints, curve_codec, datasets, history, jobs, models
from core import DivergenceError, TrainResult, TrainState, train

log = logging.getLogger(__name__)

# Waits between tries at recording how an attempt ended, while the database refuses it.
HAND_BACK_FIRST_WAIT_SECONDS = 1.0
HAND_BACK_MAX_WAIT_SECONDS = 30.0
# SQLite's primary result codes for a database that cannot take more writes.
SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL = 8, 10, 13
# PostgreSQL's SQLSTATEs for the same: disk_full, and read_only_sql_transaction (a hot
# standby, default_transaction_read_only). Not the rest of class 53 (too many connections, out
# of memory): those pass, and the job is queued again as for a dropped connection.
PG_STORAGE_REFUSALS = {"53100", "25006"}


def worker_id_for(pid: int) -> str:
    """host:pid, so the process that started a worker can tell which jobs died with it."""
    return f"{socket.gethostname()}:{pid}"


def make_worker_id() -> str:
    return worker_id_for(os.getpid())


class _LeaseLost(Exception):
    pass


@dataclass(frozen=True)
class _Attempt:
    """What one attempt at a job needs from its row, read when it is claimed."""

    job_id: str
    worker_id: str
    tenant_id: str
    model_name: str
    dataset_id: str | None
    stored: dict[str, Any]
    end_iteration: int
    start_iteration: int
    parent_model_id: str | None
    checkpoint: checkpoints.Checkpoint | None


def run_training_job(
    factory: sessionmaker[Session], job_id: str, worker_id: str, settings: Settings
) -> JobStatus | None:
    """Claim the job, train it, store its model; returns the final status, or None if not ours.

    A job delivered twice runs once: only the worker whose claim moves it out of `queued` trains.
    A job queued again after its worker died resumes from its last checkpoint (or, continuing a
    model or a stopped job, from the state it was given); the points recorded after that
    checkpoint are deleted first, so they are recorded once.
    """
    with transaction(factory) as session:
        if not jobs.claim_job(session, job_id, worker_id):
            return None
        job = session.get_one(Job, job_id)
        checkpoint = checkpoints.load_checkpoint(session, job_id)
        resume_at = checkpoint.iteration if checkpoint is not None else 0
        history.truncate_points_after(session, job_id, resume_at)
        jobs.record_progress(session, job_id, worker_id, resume_at)
        attempt = _Attempt(
            job_id=job_id,
            worker_id=worker_id,
            tenant_id=job.tenant_id,
            model_name=job.model_name,
            dataset_id=job.dataset_id,
            stored=dict(job.hyperparameters),
            end_iteration=job.start_iteration + job.n_iterations,
            start_iteration=job.start_iteration,
            parent_model_id=job.parent_model_id,
            checkpoint=checkpoint,
        )
        dataset_id, tenant_id = job.dataset_id, job.tenant_id
        dataset = datasets.get_dataset(session, tenant_id, dataset_id) if dataset_id else None
        label_kind, classes = (dataset.task, dataset.classes) if dataset else (None, None)
        arrays = datasets.load_arrays(session, dataset_id) if dataset_id else None
    if arrays is None or label_kind is None:
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, "the dataset was deleted")
    if attempt.start_iteration and checkpoint is None:
        return _finish(
            factory, job_id, worker_id, JobStatus.FAILED, "the state to continue from is missing"
        )
    try:
        hyperparameters = Hyperparameters.model_validate(attempt.stored)
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
            return _train_and_store(factory, attempt, heartbeat, settings, hyperparameters, arrays)
    except DBAPIError as exc:
        refusal = storage_refusal(exc)
        if refusal is not None:
            # A full disk or a read-only database: another attempt would train again only to be
            # refused again. Fail the job saying why; its last checkpoint is kept.
            log.exception("the database refused to store job %s: %s", job_id, refusal)
            message = (
                f"the database refused to store this job's progress or model ({refusal}); the "
                "curve and the last checkpoint stored are kept: once the database takes writes "
                "again, continue it with resume_from_job"
            )
            _hand_back(
                lambda: _finish(factory, job_id, worker_id, JobStatus.FAILED, message), job_id
            )
            return JobStatus.FAILED
        if not isinstance(exc, OperationalError | InterfaceError):
            log.exception("job %s failed unexpectedly", job_id)
            return _finish(
                factory, job_id, worker_id, JobStatus.FAILED, "internal error in the worker"
            )
        # The database went away mid-attempt (a restart, a failover, a dropped connection): not
        # the job's fault. The attempt ends as if its worker had died; the next one resumes from
        # the last checkpoint (within DNN_MAX_ATTEMPTS).
        log.exception("job %s lost its database connection; ending this attempt", job_id)
        _hand_back(lambda: _interrupt(factory, job_id, worker_id, settings), job_id)
        return None
    except Exception:
        log.exception("job %s failed unexpectedly", job_id)
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, "internal error in the worker")


def _train_and_store(
    factory: sessionmaker[Session],
    attempt: _Attempt,
    heartbeat: Heartbeat,
    settings: Settings,
    hyperparameters: Hyperparameters,
    arrays: datasets.DatasetArrays,
) -> JobStatus | None:
    job_id, worker_id = attempt.job_id, attempt.worker_id
    reporter = ProgressReporter(
        factory,
        job_id,
        worker_id,
        heartbeat,
        flush_seconds=settings.progress_flush_seconds,
        time_limit_seconds=settings.job_time_limit_seconds,
    )
    checkpointer = Checkpointer(
        reporter,
        job_id,
        every_seconds=settings.checkpoint_seconds,
        end_iteration=attempt.end_iteration,
    )
    try:
        state = None
        if attempt.checkpoint is not None:
            state = TrainState.from_bytes(attempt.checkpoint.state)
        remaining = attempt.end_iteration - (state.iteration if state is not None else 0)
        if remaining < 1:
            raise ValueError("the checkpoint is already at the job's last iteration")
        net, config = build(hyperparameters, arrays.X, arrays.y)
        result = train(
            net,
            arrays.X,
            arrays.y,
            replace(config, n_iterations=remaining),
            on_progress=reporter,
            state=state,
            on_checkpoint=checkpointer,
        )
    except DivergenceError as exc:
        reporter.flush()
        return _finish(factory, job_id, worker_id, JobStatus.FAILED, f"training diverged: {exc}")
    except ValueError as exc:
        reporter.flush()
        return _finish(
            factory, job_id, worker_id, JobStatus.FAILED, f"invalid training setup: {exc}"
        )
    if result.state is not None and (reporter.cancelled or reporter.timed_out):
        # A stopped job keeps its last state, so POST /train with resume_from_job continues it.
        checkpointer.save(result.state)
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
    return _store_model(factory, attempt, result)


def _store_model(
    factory: sessionmaker[Session], attempt: _Attempt, result: TrainResult
) -> JobStatus | None:
    net = result.network
    assert result.state is not None  # train() always returns one
    # The model holds the best point's weights when early stopping put them back: its metrics
    # are that point's, named by their iteration (issue 11), and its training state is the
    # state of those weights, so continuing the model continues from them.
    held_state = result.state.restored_best() if result.restored_best else result.state
    metrics = {
        **as_stored(result.held_point or {}),
        "n_iterations_run": result.state.iteration - attempt.start_iteration,
        "stopped_early": result.stopped_early,
        "best_iteration": result.best_iteration,
    }
    weights = net.to_bytes()
    try:
        with transaction(factory) as session:
            model = models.create_model(
                session,
                tenant_id=attempt.tenant_id,
                name=attempt.model_name,
                job_id=attempt.job_id,
                dataset_id=attempt.dataset_id,
                architecture=describe_architecture(net),
                metrics=metrics,
                weights=weights,
                train_state=held_state.to_bytes(),
                parent_model_id=attempt.parent_model_id,
            )
            if not jobs.finish_job(
                session, attempt.job_id, attempt.worker_id, JobStatus.SUCCEEDED, model_id=model.id
            ):
                # The job was reconciled away (lease lost) while training; the model is not kept.
                raise _LeaseLost
            # The model carries the state now; the job's checkpoint has served its purpose.
            checkpoints.delete_checkpoint(session, attempt.job_id)
    except _LeaseLost:
        return None
    return JobStatus.SUCCEEDED


def as_stored(point: dict[str, float]) -> dict[str, float]:
    """A history point as the curve store keeps and serves it (metrics packed as float32), so a
    model's metrics equal the point of its iteration exactly."""
    return {
        key: float(np.float32(value)) if key in curve_codec.METRICS else value
        for key, value in point.items()
    }


def storage_refusal(exc: DBAPIError) -> str | None:
    """Why the database refuses to store more (full, read-only, a failing disk), or None for
    any other error (a dropped connection, a lock held too long: those pass)."""
    driver_error = exc.orig
    sqlstate = getattr(driver_error, "sqlstate", None)  # psycopg
    if sqlstate in PG_STORAGE_REFUSALS:
        return str(driver_error).strip().splitlines()[0]
    code = getattr(driver_error, "sqlite_errorcode", None)  # sqlite3 (Python 3.11+)
    # The low byte is the primary code: SQLITE_IOERR_WRITE is SQLITE_IOERR | (3 << 8).
    if isinstance(code, int) and code & 0xFF in {SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL}:
        return str(driver_error)
    return None


def _hand_back(record: Callable[[], object], job_id: str) -> None:
    """Run `record`, the write that says how this attempt ended, until the database takes it.

    A local worker is seen alive by its pool, which never takes a live worker's job by its
    lease: until this worker records the end of its attempt, the job would stay running for
    good. A write made late is harmless: each is conditional on the job still being ours.
    """
    wait = HAND_BACK_FIRST_WAIT_SECONDS
    while True:
        try:
            record()
            return
        except SQLAlchemyError:
            log.exception("could not record how job %s ended; trying again in %g s", job_id, wait)
        time.sleep(wait)
        wait = min(2 * wait, HAND_BACK_MAX_WAIT_SECONDS)


def _interrupt(
    factory: sessionmaker[Session], job_id: str, worker_id: str, settings: Settings
) -> None:
    """Queue the job again (or close it, on its last attempt) as a reconciler would."""
    with transaction(factory) as session:
        jobs.reconcile_abandoned(
            session, lease=None, max_attempts=settings.max_attempts, dead_workers=[worker_id]
        )


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
