"""The store's re-queue of abandoned jobs: attempts, the last attempt, and no double runs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Job, utcnow
from app.job_status import JobStatus
from app.store import checkpoints, datasets, jobs

LEASE = timedelta(seconds=10)


@pytest.fixture
def factory(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_to_head(sqlite_url)
    engine: Engine = make_engine(sqlite_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def job_id(factory: sessionmaker[Session]) -> str:
    with transaction(factory) as session:
        dataset = datasets.create_dataset(
            session,
            tenant_id="t",
            name="d",
            X=np.zeros((4, 2)),
            y=np.array([0, 1, 0, 1]),
            task="binary",
            classes=[0, 1],
        )
        job = jobs.create_job(
            session,
            tenant_id="t",
            dataset_id=dataset.id,
            hyperparameters={},
            model_name="m",
            n_iterations=10,
        )
        return job.id


def _expire_lease(factory: sessionmaker[Session], job_id: str) -> None:
    with transaction(factory) as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - 2 * LEASE)
        )


def _reconcile(factory: sessionmaker[Session], **kwargs: object) -> jobs.Reconciled:
    with transaction(factory) as session:
        return jobs.reconcile_abandoned(session, lease=LEASE, max_attempts=3, **kwargs)  # type: ignore[arg-type]


def _job(factory: sessionmaker[Session], job_id: str) -> Job:
    with factory() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
        return job


def test_an_abandoned_job_is_queued_again_until_its_last_attempt(
    factory: sessionmaker[Session], job_id: str
) -> None:
    for attempt in (1, 2):
        with transaction(factory) as session:
            assert jobs.claim_job(session, job_id, f"host:{attempt}")
        assert _job(factory, job_id).attempts == attempt
        _expire_lease(factory, job_id)
        assert _reconcile(factory).requeued == [job_id]
        job = _job(factory, job_id)
        assert (job.status, job.worker_id, job.dispatched_at) == (JobStatus.QUEUED, None, None)
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:3")
    # A dead worker known by its id is acted on at once, lease or not.
    outcome = _reconcile(factory, dead_workers=["host:3"])
    assert outcome.closed == [job_id] and outcome.requeued == []
    job = _job(factory, job_id)
    assert job.status == JobStatus.FAILED and job.attempts == 3
    assert job.error is not None and "attempt 3 of 3" in job.error
    assert "resume_from_job" in job.error


def test_a_job_claimed_again_is_never_requeued_by_a_stale_decision(
    factory: sessionmaker[Session], job_id: str
) -> None:
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:1")
    _expire_lease(factory, job_id)
    assert _reconcile(factory).requeued == [job_id]
    # A second reconciler that decided on the same expired lease finds nothing left to do.
    assert _reconcile(factory, dead_workers=["host:1"]) == jobs.Reconciled()
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:2")
        # Only one claim of a queued job succeeds: a redelivered message is a no-op.
        assert not jobs.claim_job(session, job_id, "host:3")
    assert _reconcile(factory, dead_workers=["host:1"]) == jobs.Reconciled()
    job = _job(factory, job_id)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.RUNNING, "host:2", 2)
    # The old worker's writes no longer count.
    with transaction(factory) as session:
        assert jobs.record_progress(session, job_id, "host:1", 5) is None


def test_a_job_being_cancelled_is_cancelled_and_keeps_its_checkpoint(
    factory: sessionmaker[Session], job_id: str
) -> None:
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:1")
        checkpoints.save_checkpoint(session, job_id, 4, b"state-4")
        checkpoints.save_checkpoint(session, job_id, 7, b"state-7")
        jobs.request_cancel(session, "t", job_id)
    assert _reconcile(factory, dead_workers=["host:1"]).closed == [job_id]
    assert _job(factory, job_id).status == JobStatus.CANCELLED
    with factory() as session:
        assert checkpoints.load_checkpoint(session, job_id) == checkpoints.Checkpoint(7, b"state-7")


def test_a_server_stopping_its_own_workers_does_not_use_up_an_attempt(
    factory: sessionmaker[Session], job_id: str
) -> None:
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:1")
        # As if on its last attempt.
        session.execute(update(Job).where(Job.id == job_id).values(attempts=3))
    outcome = _reconcile(factory, dead_workers=["host:1"], shutdown=True)
    assert outcome.requeued == [job_id]
    job = _job(factory, job_id)
    assert (job.status, job.attempts) == (JobStatus.QUEUED, 2)


def test_a_job_of_a_worker_seen_alive_is_left_to_it_however_late_its_heartbeat(
    factory: sessionmaker[Session], job_id: str
) -> None:
    with transaction(factory) as session:
        assert jobs.claim_job(session, job_id, "host:1")
    _expire_lease(factory, job_id)
    # The local pool sees its worker running: starved of CPU, not dead.
    assert _reconcile(factory, alive_workers=["host:1"]) == jobs.Reconciled()
    assert _job(factory, job_id).status == JobStatus.RUNNING
    # Without that evidence (another host's worker, a reused pid) the lease decides.
    assert _reconcile(factory, alive_workers=["host:2"]).requeued == [job_id]


def test_a_job_still_queued_long_after_it_was_published_is_found_to_publish_again(
    factory: sessionmaker[Session], job_id: str
) -> None:
    with transaction(factory) as session:
        jobs.mark_dispatched(session, job_id)
        assert jobs.lost_dispatch_job_ids(session, older_than=LEASE) == []
        session.execute(
            update(Job).where(Job.id == job_id).values(dispatched_at=utcnow() - 2 * LEASE)
        )
        assert jobs.lost_dispatch_job_ids(session, older_than=LEASE) == [job_id]
        # A claimed job's message was delivered.
        assert jobs.claim_job(session, job_id, "host:1")
        assert jobs.lost_dispatch_job_ids(session, older_than=LEASE) == []
