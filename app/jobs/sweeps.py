"""Sweeps as a service: create one, start its trials a few at a time, close or cancel it.

A trial is an ordinary job (POST /train's :func:`submit_training`), created lazily: at most
`max_parallel` of a sweep's trials are unfinished at once, so the per-tenant job limit counts
only those. Whoever sees a trial finish starts the next: the runner's caller (a local worker
or the Celery task) through :meth:`SweepAdvancer.after_trial`, and, as a safety net for trials
that ended elsewhere (a cancel, a reconciled lease, a worker killed before its hook ran), the
reconciler through :meth:`SweepAdvancer.advance_stalled`. Both advance under the sweep's row
lock with a conditional update of its trial counter, so each trial starts exactly once however
many API replicas and workers look at the same moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app import names
from app.db.engine import make_read_session_factory, transaction
from app.db.tables import Job, Model, Sweep, SweepStatus
from app.errors import Conflict, InvalidInput, ServiceError, ServiceUnavailable, TooManyRequests
from app.job_status import JobStatus
from app.jobs.submit import NOT_DISPATCHED, submit_training
from app.jobs.sweep_board import describe
from app.jobs.sweep_plan import decide_metric, plan_trials
from app.schemas.jobs import Hyperparameters, TrainRequest
from app.schemas.sweeps import SweepRequest
from app.settings import Settings
from app.store import aliases, datasets, idempotency, jobs
from app.store import sweeps as store

if TYPE_CHECKING:
    from app.jobs.dispatch import Executor

log = logging.getLogger(__name__)

SWEEP_SCOPE = "POST /sweeps"
# How often the local pool's monitor looks for sweeps to advance (its own tick is faster).
STALLED_CHECK_SECONDS = 1.0

Dispatch = Callable[[str], None]


def advance_locked(session: Session, sweep: Sweep, settings: Settings) -> list[str]:
    """Start trials while the sweep has room; close it once every trial has finished.

    Call with the sweep's row locked (:func:`store.lock_sweep`) or just created, inside the
    caller's transaction. Returns the ids of the jobs created, for the caller to dispatch
    after the commit.
    """
    if sweep.status != SweepStatus.RUNNING:
        return []
    unfinished = len(store.unfinished_job_ids(session, sweep.id))
    next_trial = sweep.next_trial
    created: list[str] = []
    while unfinished < sweep.max_parallel and next_trial < sweep.n_trials:
        # The tenant's job limit counts a sweep's started trials only; at the limit, the next
        # finish (or the reconciler) tries again.
        jobs.lock_tenant_jobs(session, sweep.tenant_id)
        if jobs.count_active_jobs(session, sweep.tenant_id) >= settings.max_active_jobs_per_tenant:
            break
        if not store.claim_next_trial(session, sweep.id, next_trial):
            break
        try:
            with session.begin_nested():
                job = _create_trial_job(session, sweep, next_trial, settings)
        except (ServiceError, ValidationError) as exc:
            # Checked at creation, so only a change since (the dataset deleted, lower limits)
            # lands here: the sweep cannot go on.
            store.finish_sweep(
                session, sweep.id, SweepStatus.FAILED, f"trial {next_trial} could not start: {exc}"
            )
            return created
        log.info("sweep %s started trial %d as job %s", sweep.id, next_trial, job.id)
        created.append(job.id)
        unfinished += 1
        next_trial += 1
    if next_trial >= sweep.n_trials and unfinished == 0:
        statuses = {JobStatus(job.status) for _, job in store.trial_jobs(session, sweep.id)}
        done = SweepStatus.SUCCEEDED if JobStatus.SUCCEEDED in statuses else SweepStatus.FAILED
        error = None if done == SweepStatus.SUCCEEDED else "no trial succeeded"
        if done == SweepStatus.SUCCEEDED and sweep.promote:
            error = _promote_best(session, sweep, sweep.promote)
        store.finish_sweep(session, sweep.id, done, error)
    return created


def _promote_best(session: Session, sweep: Sweep, alias: str) -> str | None:
    """Point `alias` of the sweep's model name at the best trial's model, recorded in the alias
    history like any move (by "sweep:ID"); a reason when it could not be done, else None."""
    best = describe(session, sweep).best
    model = session.get(Model, best.model_id) if best and best.model_id else None
    if model is None:
        return f"promote: the best trial's model no longer exists; {alias!r} was not moved"
    try:
        with session.begin_nested():
            aliases.set_alias(
                session, sweep.tenant_id, model.name, alias, model.version, f"sweep:{sweep.id}"
            )
    except ServiceError as exc:
        return f"promote: {alias!r} was not moved: {exc}"
    log.info("sweep %s promoted %s version %d to %r", sweep.id, model.name, model.version, alias)
    return None


def _create_trial_job(session: Session, sweep: Sweep, trial: int, settings: Settings) -> Job:
    request = TrainRequest(
        dataset_id=sweep.dataset_id,
        name=sweep.name,
        hyperparameters=Hyperparameters.model_validate(sweep.trials[trial]),
    )
    job = submit_training(session, sweep.tenant_id, request, settings)
    store.link_trial(session, sweep.id, trial, job.id)
    return job


def hand_over(
    factory: sessionmaker[Session], job_ids: list[str], dispatch: Dispatch | None
) -> None:
    """Give new trial jobs to the executor; None when its workers poll the database (local).

    A job that cannot be handed over stays queued and undispatched, which the reconciler's
    pass over undispatched jobs hands over later.
    """
    for job_id in job_ids:
        if dispatch is not None:
            try:
                dispatch(job_id)
            except Exception:
                log.exception("could not dispatch sweep trial job %s; the reconciler will", job_id)
                continue
        with transaction(factory) as session:
            jobs.mark_dispatched(session, job_id)


class SweepAdvancer:
    """Starts the next trials of sweeps; held by each place that sees trials finish."""

    def __init__(
        self,
        settings: Settings,
        dispatch: Dispatch | None,
        *,
        min_interval_seconds: float = 0.0,
    ) -> None:
        self._settings = settings
        self._dispatch = dispatch
        self._min_interval = min_interval_seconds
        self._last_check = float("-inf")
        self._reads: tuple[sessionmaker[Session], sessionmaker[Session]] | None = None

    def _read_factory(self, factory: sessionmaker[Session]) -> sessionmaker[Session]:
        # The check runs every round with nothing to do most of the time: on SQLite it must not
        # take the write lock the training workers need.
        if self._reads is None or self._reads[0] is not factory:
            with factory() as session:
                bind = session.get_bind()
            engine = bind if isinstance(bind, Engine) else bind.engine
            self._reads = (factory, make_read_session_factory(engine))
        return self._reads[1]

    def advance(self, factory: sessionmaker[Session], sweep_id: str) -> list[str]:
        with transaction(factory) as session:
            sweep = store.lock_sweep(session, sweep_id)
            created = advance_locked(session, sweep, self._settings) if sweep else []
        hand_over(factory, created, self._dispatch)
        return created

    def after_trial(self, factory: sessionmaker[Session], job_id: str) -> list[str]:
        """Called once a job's run ended: if it was a sweep's trial, start what may start now.

        Never raises: the run's outcome is recorded already, and the reconciler retries.
        """
        try:
            with transaction(factory) as session:
                sweep_id = store.sweep_of_job(session, job_id)
            return self.advance(factory, sweep_id) if sweep_id else []
        except (SQLAlchemyError, ServiceError):
            log.exception("could not advance the sweep of job %s; the reconciler will", job_id)
            return []

    def advance_stalled(self, factory: sessionmaker[Session]) -> list[str]:
        """The safety net: advance every running sweep that has room or has finished.

        Never raises, so the thread that calls it (reconciler, pool monitor) keeps running.
        """
        now = time.monotonic()
        if now - self._last_check < self._min_interval:
            return []
        self._last_check = now
        created: list[str] = []
        try:
            with self._read_factory(factory)() as session:
                sweep_ids = store.stalled_sweep_ids(session)
            for sweep_id in sweep_ids:
                created += self.advance(factory, sweep_id)
        except (SQLAlchemyError, ServiceError):
            # The database may be restarting; the next round tries again.
            log.exception("could not advance stalled sweeps; retrying next round")
        return created


def create_sweep(
    session: Session,
    executor: Executor,
    tenant_id: str,
    request: SweepRequest,
    settings: Settings,
    *,
    idempotency_key: str | None,
    digest: str,
) -> idempotency.Outcome:
    """POST /sweeps: plan and check every trial, store the sweep, start its first trials.

    Like :func:`app.jobs.submit.submit_and_dispatch`: one transaction (with the idempotency
    record), committed before the executor hears of the jobs; an unreachable executor closes
    the sweep and its jobs, releases the key and answers 503.
    """
    if request.promote is not None and not aliases.ALIAS_PATTERN.fullmatch(request.promote):
        raise InvalidInput(
            f"promote: alias {request.promote!r} is not allowed; use {aliases.ALIAS_RULE}",
            [{"loc": ["body", "promote"], "msg": aliases.ALIAS_RULE}],
        )
    created: list[str] = []

    def accept() -> tuple[int, dict[str, Any]]:
        # Before the dataset is read, as in a submission: a racing DELETE of the dataset either
        # sees this sweep or has deleted it before the read (404, not a sweep with no trial).
        jobs.lock_tenant_jobs(session, tenant_id)
        dataset = datasets.get_dataset(session, tenant_id, request.dataset_id)
        trials = plan_trials(request, dataset, settings)
        metric, goal = decide_metric(request, trials)
        search = request.model_dump(mode="json", include={"grid", "random"}, exclude_none=True)
        sweep = store.create_sweep(
            session,
            tenant_id=tenant_id,
            name=request.name or names.to_model_name(dataset.name),
            dataset_id=dataset.id,
            metric=metric,
            goal=goal,
            max_parallel=request.max_parallel,
            search=search,
            trials=trials,
            promote=request.promote,
        )
        created.extend(advance_locked(session, sweep, settings))
        if not created:
            raise TooManyRequests(
                f"this tenant already has {settings.max_active_jobs_per_tenant} jobs queued or "
                "running; no trial could start"
            )
        body = {"sweep_id": sweep.id, "status": SweepStatus.RUNNING.value}
        return 202, {**body, "location": f"/sweeps/{sweep.id}"}

    with session.begin():
        outcome = idempotency.run_once(
            session,
            tenant_id=tenant_id,
            scope=SWEEP_SCOPE,
            key=idempotency_key,
            digest=digest,
            act=accept,
        )
    if outcome.replayed:
        return outcome
    try:
        for job_id in created:
            executor.submit(job_id)
    except ServiceUnavailable:
        with session.begin():
            for job_id in created:
                jobs.fail_unstarted_job(session, job_id, NOT_DISPATCHED)
            store.finish_sweep(
                session, str(outcome.response["sweep_id"]), SweepStatus.FAILED, NOT_DISPATCHED
            )
            if idempotency_key:
                idempotency.forget(session, tenant_id, SWEEP_SCOPE, idempotency_key)
        raise
    with session.begin():
        for job_id in created:
            jobs.mark_dispatched(session, job_id)
    return outcome


def cancel_sweep(session: Session, tenant_id: str, sweep_id: str) -> Sweep:
    """Stop starting trials; cancel the queued ones and ask the running ones to stop."""
    with session.begin():
        store.get_sweep(session, tenant_id, sweep_id)
        sweep = store.lock_sweep(session, sweep_id)
        assert sweep is not None
        if sweep.status != SweepStatus.RUNNING:
            raise Conflict(f"sweep {sweep_id!r} has already finished ({sweep.status})")
        for job_id in store.unfinished_job_ids(session, sweep_id):
            jobs.request_cancel(session, tenant_id, job_id)
        store.finish_sweep(session, sweep_id, SweepStatus.CANCELLED)
        session.refresh(sweep)
        return sweep
