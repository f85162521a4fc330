"""The job state machine in the store, on a real (migrated) SQLite database; no server.

queued -> running -> succeeded | failed | cancelled, plus cancelling; every transition is a
conditional update, so the loser of a race is told so instead of overwriting the winner.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Job, JobStatus, utcnow
from app.errors import Conflict, NotFound
from app.store import datasets, jobs

TENANT = "t1"


@pytest.fixture
def factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def new_job(factory: sessionmaker[Session], tenant: str = TENANT) -> str:
    with transaction(factory) as session:
        dataset = datasets.create_dataset(
            session,
            tenant_id=tenant,
            name="d",
            X=np.zeros((4, 2), dtype=np.float32),
            y=np.array([0, 1, 0, 1]),
            task="binary",
            classes=[0, 1],
        )
        job = jobs.create_job(
            session,
            tenant_id=tenant,
            dataset_id=dataset.id,
            hyperparameters={"task": "binary"},
            model_name="m",
            n_iterations=10,
        )
        return job.id


def status_of(factory: sessionmaker[Session], job_id: str) -> JobStatus:
    with transaction(factory) as session:
        return JobStatus(session.get_one(Job, job_id).status)


def test_a_job_is_claimed_once(factory: sessionmaker[Session]) -> None:
    job_id = new_job(factory)
    assert status_of(factory, job_id) == JobStatus.QUEUED
    with transaction(factory) as session:
        assert jobs.next_queued_job_id(session) == job_id
        assert jobs.claim_job(session, job_id, "host:1")
    with transaction(factory) as session:
        # A second delivery of the same job: the claim is conditional on `queued`.
        assert not jobs.claim_job(session, job_id, "host:2")
        assert jobs.next_queued_job_id(session) is None
        job = session.get_one(Job, job_id)
        assert (job.status, job.worker_id) == (JobStatus.RUNNING, "host:1")
        assert job.started_at is not None and job.heartbeat_at is not None


def test_only_the_holder_reports_progress_and_finishes(factory: sessionmaker[Session]) -> None:
    job_id = new_job(factory)
    with transaction(factory) as session:
        jobs.claim_job(session, job_id, "host:1")
    with transaction(factory) as session:
        assert jobs.record_progress(session, job_id, "host:2", 5) is None
        assert jobs.record_progress(session, job_id, "host:1", 5) == JobStatus.RUNNING
        assert jobs.renew_lease(session, job_id, "host:1") == JobStatus.RUNNING
        assert not jobs.finish_job(session, job_id, "host:2", JobStatus.SUCCEEDED)
        assert jobs.finish_job(session, job_id, "host:1", JobStatus.SUCCEEDED, model_id="m1")
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        assert (job.status, job.last_iteration, job.model_id) == (JobStatus.SUCCEEDED, 5, "m1")
        assert job.finished_at is not None
        # Closed: nothing more counts, not even from the worker that held it.
        assert not jobs.finish_job(session, job_id, "host:1", JobStatus.FAILED, error="late")
        assert jobs.record_progress(session, job_id, "host:1", 6) is None
    assert status_of(factory, job_id) == JobStatus.SUCCEEDED


def test_cancel_a_queued_job_at_once_and_a_running_one_at_its_next_check(
    factory: sessionmaker[Session],
) -> None:
    queued, running = new_job(factory), new_job(factory)
    with transaction(factory) as session:
        jobs.claim_job(session, running, "host:1")
    with transaction(factory) as session:
        assert jobs.request_cancel(session, TENANT, queued).status == JobStatus.CANCELLED
        assert jobs.request_cancel(session, TENANT, running).status == JobStatus.CANCELLING
        # Asking twice is harmless.
        assert jobs.request_cancel(session, TENANT, running).status == JobStatus.CANCELLING
    with transaction(factory) as session:
        # The worker sees the request when it next reports, and closes the job.
        assert jobs.record_progress(session, running, "host:1", 3) == JobStatus.CANCELLING
        assert jobs.finish_job(session, running, "host:1", JobStatus.CANCELLED)
    with transaction(factory) as session, pytest.raises(Conflict):
        jobs.request_cancel(session, TENANT, running)
    with transaction(factory) as session:
        # A cancelled queued job is never claimed.
        assert not jobs.claim_job(session, queued, "host:1")


def test_other_tenants_do_not_see_the_job(factory: sessionmaker[Session]) -> None:
    job_id = new_job(factory)
    with transaction(factory) as session:
        with pytest.raises(NotFound):
            jobs.get_job(session, "t2", job_id)
        with pytest.raises(NotFound):
            jobs.request_cancel(session, "t2", job_id)
        assert jobs.count_active_jobs(session, "t2") == 0
        assert jobs.count_active_jobs(session, TENANT) == 1
        assert [
            job.id for job in jobs.list_jobs(session, "t2", status=None, limit=5, offset=0)
        ] == []


def test_active_jobs_and_datasets_in_use(factory: sessionmaker[Session]) -> None:
    job_id = new_job(factory)
    with transaction(factory) as session:
        dataset_id = session.get_one(Job, job_id).dataset_id
        assert dataset_id is not None and jobs.dataset_in_use(session, dataset_id)
        jobs.claim_job(session, job_id, "host:1")
        jobs.finish_job(session, job_id, "host:1", JobStatus.FAILED, error="x")
    with transaction(factory) as session:
        assert jobs.count_active_jobs(session, TENANT) == 0
        assert not jobs.dataset_in_use(session, dataset_id)


def test_an_undispatched_job_is_found_until_marked(factory: sessionmaker[Session]) -> None:
    job_id = new_job(factory)
    with transaction(factory) as session:
        assert jobs.undispatched_job_ids(session, older_than=timedelta(hours=1)) == []
        assert jobs.undispatched_job_ids(session, older_than=timedelta(0)) == [job_id]
        jobs.mark_dispatched(session, job_id)
    with transaction(factory) as session:
        assert jobs.undispatched_job_ids(session, older_than=timedelta(0)) == []


def test_fail_unstarted_only_closes_a_queued_job(factory: sessionmaker[Session]) -> None:
    queued, running = new_job(factory), new_job(factory)
    with transaction(factory) as session:
        jobs.claim_job(session, running, "host:1")
    with transaction(factory) as session:
        jobs.fail_unstarted_job(session, queued, "queue down")
        jobs.fail_unstarted_job(session, running, "queue down")
    with transaction(factory) as session:
        closed = session.get_one(Job, queued)
        assert (closed.status, closed.error) == (JobStatus.FAILED, "queue down")
        assert session.get_one(Job, running).status == JobStatus.RUNNING


def test_reconcile_closes_abandoned_jobs_and_their_worker_loses_them(
    factory: sessionmaker[Session],
) -> None:
    stale, cancelling, dead, healthy = (new_job(factory) for _ in range(4))
    with transaction(factory) as session:
        for job_id, worker in [
            (stale, "host:1"),
            (cancelling, "host:1"),
            (dead, "host:9"),
            (healthy, "host:2"),
        ]:
            jobs.claim_job(session, job_id, worker)
        jobs.record_progress(session, stale, "host:1", 7)
        jobs.request_cancel(session, TENANT, cancelling)
    with transaction(factory) as session:
        assert sorted(jobs.running_worker_ids(session)) == ["host:1", "host:2", "host:9"]
    lease = timedelta(seconds=60)
    with transaction(factory) as session:
        # host:1's heartbeats are older than the lease (seen from two minutes on); host:9 is dead.
        session.get_one(Job, healthy).heartbeat_at = utcnow() + timedelta(minutes=5)
        session.get_one(Job, dead).heartbeat_at = utcnow() + timedelta(minutes=5)
        later = utcnow() + timedelta(minutes=2)
        # Each is on its last attempt, so it is closed rather than queued again (see
        # test_job_reattempts.py for the retries).
        outcome = jobs.reconcile_abandoned(
            session, lease=lease, max_attempts=1, dead_workers=["host:9"], now=later
        )
    assert sorted(outcome.closed) == sorted([stale, cancelling, dead])
    assert outcome.requeued == []
    with transaction(factory) as session:
        job = session.get_one(Job, stale)
        assert job.status == JobStatus.FAILED and "iteration 7" in (job.error or "")
        assert session.get_one(Job, cancelling).status == JobStatus.CANCELLED
        assert session.get_one(Job, dead).status == JobStatus.FAILED
        assert session.get_one(Job, healthy).status == JobStatus.RUNNING
        # The worker that lost its lease cannot store a result any more.
        assert not jobs.finish_job(session, stale, "host:1", JobStatus.SUCCEEDED)
        assert jobs.record_progress(session, stale, "host:1", 8) is None
