"""Job lifecycles against a real server: cancel, divergence, restart recovery, many jobs at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest
from job_helpers import TERMINAL, blobs, stored_points, submit, wait_for, wait_for_history
from live_server import LiveServer

pytestmark = pytest.mark.slow

# Enough iterations that a job is still running when the test acts on it.
ENDLESS = 1_000_000


@pytest.fixture
def dataset_id(client: httpx.Client) -> str:
    response = client.post("/datasets", json=blobs())
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_cancel_stops_a_running_job_and_keeps_its_curve(
    client: httpx.Client, dataset_id: str
) -> None:
    job_id = submit(client, dataset_id, n_iterations=ENDLESS, hidden_layers=[32, 32])
    wait_for(client, job_id, {"running"})
    wait_for_history(client, job_id, 5)

    cancel = client.post(f"/jobs/{job_id}/cancel")
    assert cancel.status_code == 202, cancel.text
    assert cancel.json()["status"] in {"cancelling", "cancelled"}

    job = wait_for(client, job_id, TERMINAL, timeout=10)
    assert job["status"] == "cancelled"
    assert job["model_id"] is None
    kept = job["points_total"]
    assert kept >= 5
    page = client.get(f"/jobs/{job_id}/history", params={"limit": 100_000}).json()
    iterations = [p["iteration"] for p in page["points"]]
    assert iterations == list(range(1, kept + 1))
    assert 0 < job["progress"] < 1

    again = client.post(f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"
    assert client.get(f"/jobs/{job_id}").json()["points_total"] == kept


def test_cancel_a_queued_job(
    live_server: LiveServer, client: httpx.Client, dataset_id: str
) -> None:
    running = [submit(client, dataset_id, n_iterations=ENDLESS) for _ in range(live_server.workers)]
    for job_id in running:
        wait_for(client, job_id, {"running"})
    queued = submit(client, dataset_id, n_iterations=10)
    assert client.get(f"/jobs/{queued}").json()["status"] == "queued"
    assert client.post(f"/jobs/{queued}/cancel").status_code == 202
    assert client.get(f"/jobs/{queued}").json()["status"] == "cancelled"
    for job_id in running:
        client.post(f"/jobs/{job_id}/cancel")
        wait_for(client, job_id, TERMINAL)
    job = client.get(f"/jobs/{queued}").json()
    assert job["status"] == "cancelled" and job["history"] == []


def test_a_diverging_job_fails_clearly_and_stores_no_model(
    client: httpx.Client, dataset_id: str
) -> None:
    job_id = submit(
        client,
        dataset_id,
        optimizer="gd",
        learning_rate=100.0,
        n_iterations=2000,
        standardize=False,
        hidden_layers=[64, 64],
        activation="leaky_relu",
    )
    job = wait_for(client, job_id, TERMINAL)
    assert job["status"] == "failed", job
    assert "diverged" in job["error"]
    assert job["model_id"] is None
    models = client.get("/models").json()["items"]
    assert all(model["job_id"] != job_id for model in models)


def test_twenty_concurrent_jobs_on_two_workers_all_complete(
    client: httpx.Client, dataset_id: str
) -> None:
    job_ids = [submit(client, dataset_id, n_iterations=200, seed=seed) for seed in range(20)]
    jobs = [wait_for(client, job_id, TERMINAL, timeout=120) for job_id in job_ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 20
    assert all(len(job["history"]) == 200 for job in jobs)
    assert len({job["model_id"] for job in jobs}) == 20
    versions = sorted(
        m["version"] for m in client.get("/models", params={"limit": 100}).json()["items"]
    )
    assert versions == list(range(1, 21))


def test_restart_after_a_crash_ends_every_job_and_loses_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    # One attempt: the interrupted job fails (re-queueing is covered by test_resume_crash.py).
    server = LiveServer(
        sqlite_url, tmp_path / "server.log", workers=1, DNN_MAX_ATTEMPTS="1"
    ).start()
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs()).json()["id"]
        interrupted = submit(client, dataset, n_iterations=ENDLESS)
        wait_for(client, interrupted, {"running"})
        waiting = submit(client, dataset, n_iterations=50)
        before_kill = wait_for_history(client, interrupted, 10)
    server.kill()

    # The worker died with the server (no orphan keeps writing), so the curve is frozen.
    db_path = sqlite_url.removeprefix("sqlite:///")
    frozen = stored_points(sqlite_url, interrupted)
    assert frozen >= before_kill

    restarted = LiveServer(
        sqlite_url, tmp_path / "server.log", workers=1, DNN_MAX_ATTEMPTS="1"
    ).start()
    try:
        with restarted.client() as client:
            job = wait_for(client, interrupted, TERMINAL, timeout=10)
            assert job["status"] == "failed"
            assert "interrupted" in job["error"]
            assert job["points_total"] == frozen
            assert wait_for(client, waiting, TERMINAL)["status"] == "succeeded"
    finally:
        restarted.stop()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
