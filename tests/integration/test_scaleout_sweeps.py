"""Sweeps scaled out: PostgreSQL, Redis and Celery workers, and advancers racing on one sweep."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from job_helpers import TERMINAL, blobs, wait_for
from sqlalchemy import func, select
from sweep_helpers import best_by_metric, most_at_once, run_intervals, wait_for_sweep

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.tables import Job, SweepTrial
from app.job_status import ACTIVE_STATES
from app.jobs.sweeps import SweepAdvancer
from app.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_grid_sweep_with_celery_workers_runs_two_at_a_time(
    start_cluster: Callable[..., Any],
) -> None:
    # Three workers: were the sweep to start a third trial early, one would be free to run it.
    cluster = start_cluster(n_workers=3)
    with cluster.server.client() as client:
        dataset = client.post("/datasets", json=blobs(120)).json()["id"]
        body = {
            "dataset_id": dataset,
            "name": "celery-search",
            "hyperparameters": {"n_iterations": 200, "validation_fraction": 0.25},
            "grid": {"learning_rate": [0.0003, 0.001, 0.003, 0.01]},
            "max_parallel": 2,
            "promote": "production",
        }
        response = client.post("/sweeps", json=body)
        assert response.status_code == 202, response.text
        sweep = wait_for_sweep(client, response.json()["sweep_id"], {"succeeded"})
        trials = sweep["trials"]
        assert [trial["status"] for trial in trials] == ["succeeded"] * 4
        assert most_at_once(run_intervals(client, [t["job_id"] for t in trials])) <= 2
        assert sweep["best"]["job_id"] == best_by_metric(client, sweep) == trials[0]["job_id"]
        assert [trial["rank"] for trial in trials] == [1, 2, 3, 4]
        best = client.get(f"/models/{sweep['best']['model_id']}").json()
        named = client.get("/models/names/celery-search").json()
        assert named["aliases"] == {"production": best["version"]}
    # The workers started trials 2 and 3 as trials 0 and 1 ended, and published them: neither
    # the API's reconciler nor its pass over undispatched jobs had to.
    sweep_id = sweep["id"]
    worker_logs = "".join(worker.log_path.read_text() for worker in cluster.workers)
    for trial in (2, 3):
        assert f"sweep {sweep_id} started trial {trial} as job" in worker_logs
    assert "had not handed over" not in cluster.server.log_path.read_text()


def test_concurrent_advances_start_each_trial_once(start_cluster: Callable[..., Any]) -> None:
    """Many processes seeing trials end at the same moment start exactly the trials that fit."""
    cluster = start_cluster(n_workers=0)  # no worker: trials stay queued until cancelled
    with cluster.server.client() as client:
        dataset = client.post("/datasets", json=blobs(60)).json()["id"]
        body = {"dataset_id": dataset, "grid": {"seed": list(range(8))}, "max_parallel": 3}
        response = client.post("/sweeps", json=body)
        assert response.status_code == 202, response.text
        sweep_id = response.json()["sweep_id"]
        started = client.get(f"/sweeps/{sweep_id}").json()
        first = [trial["job_id"] for trial in started["trials"] if trial["job_id"]]
        assert len(first) == 3
        # Two places free up at once.
        for job_id in first[:2]:
            assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
            wait_for(client, job_id, TERMINAL)

    settings = Settings(database_url=cluster.database_url)
    engine = make_engine(cluster.database_url)
    factory = make_session_factory(engine)
    n_threads = 10
    barrier = threading.Barrier(n_threads)
    created: list[str] = []
    lock = threading.Lock()

    def advance() -> None:
        barrier.wait()
        ids = SweepAdvancer(settings, dispatch=None).advance(factory, sweep_id)
        with lock:
            created.extend(ids)

    threads = [threading.Thread(target=advance) for _ in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    with transaction(factory) as session:
        trials = session.scalars(
            select(SweepTrial.trial).where(SweepTrial.sweep_id == sweep_id)
        ).all()
        unfinished = session.scalar(
            select(func.count())
            .select_from(SweepTrial)
            .join(Job, Job.id == SweepTrial.job_id)
            .where(SweepTrial.sweep_id == sweep_id, Job.status.in_(ACTIVE_STATES))
        )
    engine.dispose()
    # The API's own reconciler may have advanced it first; together they started two trials.
    assert sorted(trials) == [0, 1, 2, 3, 4]
    assert unfinished == 3
    assert len(created) == len(set(created)) <= 2
