"""Crash-transparent jobs scaled out: Celery workers over Redis, PostgreSQL under them. The
process training a job is SIGKILLed twice; the lease reconciler queues the job again and
publishes it, and the job ends as if it had never been interrupted."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import all_points, blobs, submit, wait_for
from sqlalchemy import create_engine, make_url, text

from core import Network

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_ITERATIONS = 3000
HYPERPARAMETERS = {
    "hidden_layers": [32, 32],
    "optimizer": "adam",
    "learning_rate": 0.001,
    "batch_size": 16,
    "validation_fraction": 0.2,
    "record_every": 1,
    "n_iterations": N_ITERATIONS,
    "seed": 5,
}
TIMEOUT = 900  # generous for a loaded machine; nothing here asserts a duration
FINAL = {"succeeded", "failed", "cancelled"}


def wait_for_checkpoint(
    database_url: str, job_id: str, attempt: int, after: int
) -> tuple[int, int]:
    """Wait until the job's `attempt` runs and has a checkpoint past `after`: (pid, iteration)."""
    engine = create_engine(database_url)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                status, worker_id, attempts, checkpoint = connection.execute(
                    text(
                        "SELECT status, worker_id, attempts, "
                        "(SELECT iteration FROM job_checkpoints WHERE job_id = jobs.id) "
                        "FROM jobs WHERE id = :id"
                    ),
                    {"id": job_id},
                ).one()
            assert status in {"queued", "running"}, f"the job ended ({status}) before the kills"
            if status == "running" and attempts == attempt and (checkpoint or 0) > after:
                return int(str(worker_id).rsplit(":", 1)[1]), int(checkpoint)
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise AssertionError(f"attempt {attempt} of job {job_id} stored no checkpoint")


def weights(client: httpx.Client, model_id: str) -> Network:
    response = client.get(f"/models/{model_id}/weights")
    assert response.status_code == 200
    return Network.from_bytes(response.content)


def test_a_celery_job_whose_training_process_is_killed_twice_ends_as_an_uninterrupted_run(
    start_cluster: Callable[..., Any],
) -> None:
    cluster = start_cluster(
        n_workers=2, DNN_JOB_LEASE_SECONDS="2", DNN_CHECKPOINT_SECONDS="1", DNN_MAX_ATTEMPTS="3"
    )
    with cluster.server.client() as client:
        response = client.post("/datasets", json=blobs(n=400))
        assert response.status_code == 201, response.text
        dataset = response.json()["id"]
        victim = submit(client, dataset, **HYPERPARAMETERS)
        reference = submit(client, dataset, **HYPERPARAMETERS)
        checkpoint = 0
        for attempt in (1, 2):
            pid, checkpoint = wait_for_checkpoint(cluster.database_url, victim, attempt, checkpoint)
            # The pool child that trains; its worker starts another child, and Celery hands the
            # message back, which finds the job still running and is dropped: the reconciler
            # queues the job again once its lease runs out, and publishes it.
            assert any(pid in worker.pids() for worker in cluster.workers)
            os.kill(pid, signal.SIGKILL)

        job = wait_for(client, victim, FINAL, timeout=TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 3
        straight = wait_for(client, reference, FINAL, timeout=TIMEOUT)
        assert straight["status"] == "succeeded" and straight["attempts"] == 1
        assert_same_run(client, job, straight)


def test_a_celery_job_whose_database_connections_are_cut_resumes_as_the_same_run(
    start_cluster: Callable[..., Any],
) -> None:
    cluster = start_cluster(n_workers=1, DNN_CHECKPOINT_SECONDS="1", DNN_MAX_ATTEMPTS="20")
    database = make_url(cluster.database_url).database
    admin = create_engine(cluster.database_url, isolation_level="AUTOCOMMIT")
    with cluster.server.client() as client:
        response = client.post("/datasets", json=blobs(n=400))
        assert response.status_code == 201, response.text
        dataset = response.json()["id"]
        victim = submit(client, dataset, **HYPERPARAMETERS)
        wait_for_checkpoint(cluster.database_url, victim, 1, 0)
        # Hold the checkpoints table so that the worker's next checkpoint write waits on it,
        # then terminate that waiting backend: the cut lands in the middle of the worker's
        # write (a failover, a restart, a proxy dropping it), every time.
        waiting = text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :db "
            "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
        )
        locker = create_engine(cluster.database_url)
        with locker.connect() as holder, admin.connect() as connection:
            holder.execute(text("LOCK TABLE job_checkpoints IN ACCESS EXCLUSIVE MODE"))
            deadline = time.monotonic() + TIMEOUT
            while time.monotonic() < deadline:
                pids = connection.execute(waiting, {"db": database}).scalars().all()
                if pids:
                    for pid in pids:
                        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    break
                time.sleep(0.01)
            holder.rollback()
        locker.dispose()
        admin.dispose()

        job = wait_for(client, victim, FINAL, timeout=TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] > 1
        reference = submit(client, dataset, **HYPERPARAMETERS)
        straight = wait_for(client, reference, FINAL, timeout=TIMEOUT)
        assert straight["status"] == "succeeded", straight
        assert_same_run(client, job, straight)


def test_a_celery_job_whose_claim_loses_its_database_connection_is_delivered_again(
    start_cluster: Callable[..., Any],
) -> None:
    # A lease long enough that the reconciler's re-publish (5 leases) cannot be what runs it.
    cluster = start_cluster(n_workers=0, DNN_JOB_LEASE_SECONDS="600")
    database = make_url(cluster.database_url).database
    admin = create_engine(cluster.database_url, isolation_level="AUTOCOMMIT")
    locker = create_engine(cluster.database_url)
    with cluster.server.client() as client:
        response = client.post("/datasets", json=blobs(n=100))
        assert response.status_code == 201, response.text
        job_id = submit(client, response.json()["id"], hidden_layers=[4], n_iterations=20)
        with locker.connect() as holder, admin.connect() as connection:
            # The job's row is held, so the worker's claim waits on it; that waiting backend is
            # terminated, as a failover or a restart would cut it.
            holder.execute(text("SELECT id FROM jobs WHERE id = :id FOR UPDATE"), {"id": job_id})
            cluster.add_worker()
            waiting = text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            deadline = time.monotonic() + TIMEOUT
            pids: list[int] = []
            while not pids and time.monotonic() < deadline:
                pids = list(connection.execute(waiting, {"db": database}).scalars())
                time.sleep(0.01)
            assert pids, "the worker's claim never waited on the held row"
            for pid in pids:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            holder.rollback()
        locker.dispose()
        admin.dispose()
        # Delivered again by the task's own retry (1-2 s later), not 50 minutes later.
        job = wait_for(client, job_id, FINAL, timeout=120)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1


def assert_same_run(
    client: httpx.Client, resumed: dict[str, Any], straight: dict[str, Any]
) -> None:
    """The resumed job's curve holds every iteration once, and its points and final weights
    are the uninterrupted job's."""
    # Every point, at full resolution (GET /jobs/{id} thins long curves).
    points = all_points(client, resumed["id"])
    assert [p["iteration"] for p in points] == list(range(1, N_ITERATIONS + 1))
    for p, q in zip(points, all_points(client, straight["id"]), strict=True):
        assert p == pytest.approx(q, rel=1e-6, abs=1e-9)
    ours, theirs = weights(client, resumed["model_id"]), weights(client, straight["model_id"])
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)
