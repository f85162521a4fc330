"""Scaled out for real: an API with the celery executor, two `dnn-service worker` processes,
Redis between them and PostgreSQL under all of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from celery import Celery
from job_helpers import wait_for
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from app.auth import OPEN_MODE_TENANT
from app.db.tables import Job, Model, utcnow
from app.jobs.celery_app import TASK_NAME as TRAINING_TASK
from app.schemas.jobs import Hyperparameters
from app.store import jobs as job_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def blobs_csv(n: int = 200, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 3)) + np.where(y[:, None] == 1, 1.5, -1.5)
    labels = np.where(y == 1, "spam", "ham")
    rows = [f"{a:.5f},{b:.5f},{c:.5f},{k}" for (a, b, c), k in zip(X, labels, strict=True)]
    return ("\n".join(["f1,f2,f3,kind", *rows]) + "\n").encode(), X, labels


def upload(client: httpx.Client, data: bytes) -> str:
    response = client.post(
        "/datasets", files={"file": ("blobs.csv", data, "text/csv")}, data={"label_column": "kind"}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def submit(client: httpx.Client, dataset_id: str, n_iterations: int) -> str:
    hyperparameters = {"hidden_layers": [8, 4], "n_iterations": n_iterations, "optimizer": "adam"}
    response = client.post(
        "/train", json={"dataset_id": dataset_id, "hyperparameters": hyperparameters}
    )
    assert response.status_code == 202, response.text
    return str(response.json()["job_id"])


def job_rows(database_url: str, job_ids: list[str]) -> dict[str, Job]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(Job).where(Job.id.in_(job_ids))).all()
            return {row.id: row for row in rows}
    finally:
        engine.dispose()


def test_train_poll_predict_across_two_workers(start_cluster: Callable[..., Any]) -> None:
    cluster = start_cluster(n_workers=2)
    with cluster.server.client() as client:
        data, X, labels = blobs_csv()
        dataset_id = upload(client, data)
        # Each worker holds one job at a time (prefetch 1, late acks), so two long jobs submitted
        # together run on different workers.
        job_ids = [submit(client, dataset_id, 3000) for _ in range(2)]
        jobs = [
            wait_for(client, job_id, {"succeeded", "failed"}, timeout=120) for job_id in job_ids
        ]
        assert [job["status"] for job in jobs] == ["succeeded", "succeeded"], jobs

        rows = job_rows(cluster.database_url, job_ids)
        assert len({rows[job_id].worker_id for job_id in job_ids}) == 2, "both workers trained"

        job = client.get(f"/jobs/{job_ids[0]}").json()
        # 3,000 points: GET /jobs/{id} thins them to 2,000 at most; /history has them all.
        assert job["thinned"] and job["points_total"] == 3000
        page = client.get(f"/jobs/{job_ids[0]}/history").json()
        iterations = [point["iteration"] for point in page["points"]]
        assert iterations == list(range(1, 3001)), "every point once, in order"
        final = job["history"][-1]

        predicted = client.post(
            "/predict", json={"model_id": job["model_id"], "instances": X.tolist()}
        )
        assert predicted.status_code == 200, predicted.text
        accuracy = float(np.mean(np.asarray(predicted.json()["predictions"]) == labels))
        assert accuracy > 0.9
        assert abs(accuracy - final["accuracy"]) <= 0.02


def test_a_job_delivered_twice_runs_once(start_cluster: Callable[..., Any]) -> None:
    cluster = start_cluster(n_workers=2)
    with cluster.server.client() as client:
        dataset_id = upload(client, blobs_csv()[0])
        job_id = submit(client, dataset_id, 2000)
        # A second delivery of the same id, as Redis makes after a lost ack.
        sender = Celery(broker=cluster.server.env["DNN_BROKER_URL"], set_as_current=False)
        queue = cluster.server.env["DNN_CELERY_QUEUE"]
        sender.send_task(TRAINING_TASK, args=[job_id], queue=queue, serializer="json")
        sender.close()
        job = wait_for(client, job_id, {"succeeded", "failed"}, timeout=120)
        assert job["status"] == "succeeded", job
        assert [point["iteration"] for point in job["history"]] == list(range(1, 2001))

    engine = create_engine(cluster.database_url)
    with engine.connect() as connection:
        models = connection.execute(select(Model.id).where(Model.job_id == job_id)).all()
    engine.dispose()
    assert len(models) == 1


def test_sigkill_of_a_worker_mid_job_never_leaves_it_running(
    start_cluster: Callable[..., Any],
) -> None:
    # A short lease so the API's reconciler notices the dead worker within the test; one attempt,
    # so the job fails with its reason (re-queueing is covered by test_scaleout_resume.py).
    cluster = start_cluster(n_workers=2, DNN_JOB_LEASE_SECONDS="3", DNN_MAX_ATTEMPTS="1")
    with cluster.server.client() as client:
        dataset_id = upload(client, blobs_csv()[0])
        long_job = submit(client, dataset_id, 1_000_000)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = client.get(f"/jobs/{long_job}").json()
            if job["status"] == "running" and job["progress"] > 0:
                break
            time.sleep(0.1)
        assert job["status"] == "running", job

        pid = int(
            str(job_rows(cluster.database_url, [long_job])[long_job].worker_id).split(":")[-1]
        )
        [victim] = [worker for worker in cluster.workers if pid in worker.pids()]
        [survivor] = [worker for worker in cluster.workers if worker is not victim]
        victim.kill()
        deadline = time.monotonic() + 30
        while victim.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert victim.pids() == set(), "the pool child died with its worker"

        closed = wait_for(client, long_job, {"succeeded", "failed", "cancelled"}, timeout=60)
        assert closed["status"] == "failed", closed
        assert "interrupted" in closed["error"]
        assert closed["history"], "the curve up to the interruption is kept"

        # The surviving worker still takes new work.
        after = wait_for(
            client, submit(client, dataset_id, 200), {"succeeded", "failed"}, timeout=120
        )
        assert after["status"] == "succeeded", after
        survivor_pids = survivor.pids()
        worker_id = job_rows(cluster.database_url, [after["id"]])[after["id"]].worker_id
        assert int(str(worker_id).split(":")[-1]) in survivor_pids


def test_a_job_its_api_never_published_is_dispatched_by_the_reconciler(
    start_cluster: Callable[..., Any],
) -> None:
    cluster = start_cluster(n_workers=1, DNN_JOB_LEASE_SECONDS="4")
    with cluster.server.client() as client:
        dataset_id = upload(client, blobs_csv()[0])
        # What an API process leaves behind when it dies between committing the row and
        # publishing its id: a queued job that no message names.
        engine = create_engine(cluster.database_url)
        with Session(engine) as session, session.begin():
            stranded = job_store.create_job(
                session,
                tenant_id=OPEN_MODE_TENANT,
                dataset_id=dataset_id,
                hyperparameters=Hyperparameters(n_iterations=50).model_dump(),
                model_name="stranded",
                n_iterations=50,
            )
            stranded.created_at = utcnow() - timedelta(minutes=5)
            job_id = stranded.id
        job = wait_for(client, job_id, {"succeeded", "failed"}, timeout=60)
        assert job["status"] == "succeeded", job
        assert job_rows(cluster.database_url, [job_id])[job_id].dispatched_at is not None
        engine.dispose()
