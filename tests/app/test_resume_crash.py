"""Crash-transparent jobs on the local executor: SIGKILL the worker, or the whole server, mid-job;
the job is queued again, resumes from its last checkpoint and ends as if nothing happened."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import TERMINAL, all_points, blobs, submit, wait_for
from live_server import LiveServer

from core import Network

pytestmark = pytest.mark.slow

N_ITERATIONS = 3000
# Mini-batches with a validation split: the shuffling generator, the split and Adam's moments
# must all come back exactly for the weights to match.
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
# Workers at normal priority: on a busy test machine SCHED_IDLE workers could starve.
SETTINGS = {"DNN_CHECKPOINT_SECONDS": "1", "DNN_WORKER_NICE": "0"}
# Generous: the machine running the tests may be loaded; nothing here asserts a duration.
TIMEOUT = 900


def job_row(db_path: str, job_id: str) -> tuple[str, str | None, int, int]:
    """status, worker_id, attempts, checkpoint iteration (0 if none)."""
    with sqlite3.connect(db_path) as db:
        status, worker_id, attempts = db.execute(
            "SELECT status, worker_id, attempts FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        row = db.execute(
            "SELECT iteration FROM job_checkpoints WHERE job_id = ?", (job_id,)
        ).fetchone()
    return status, worker_id, attempts, int(row[0]) if row else 0


def wait_for_checkpoint(db_path: str, job_id: str, attempt: int, after: int) -> tuple[str, int]:
    """Wait until the job's `attempt` runs and has stored a checkpoint past `after`."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status, worker_id, attempts, checkpoint = job_row(db_path, job_id)
        assert status in {"queued", "running"}, f"the job ended ({status}) before the kills"
        if status == "running" and attempts == attempt and checkpoint > after and worker_id:
            return worker_id, checkpoint
        time.sleep(0.05)
    raise AssertionError(f"attempt {attempt} of job {job_id} stored no checkpoint")


def weights(client: httpx.Client, model_id: str) -> Network:
    response = client.get(f"/models/{model_id}/weights")
    assert response.status_code == 200
    return Network.from_bytes(response.content)


def assert_same_run(client: httpx.Client, job: dict[str, Any], reference: dict[str, Any]) -> None:
    # Every point, at full resolution (GET /jobs/{id} thins long curves).
    points, straight_points = all_points(client, job["id"]), all_points(client, reference["id"])
    assert [p["iteration"] for p in points] == list(range(1, N_ITERATIONS + 1))
    for p, q in zip(points, straight_points, strict=True):
        assert p == pytest.approx(q, rel=1e-6, abs=1e-9)
    resumed, straight = weights(client, job["model_id"]), weights(client, reference["model_id"])
    for p, q in zip(resumed.parameters(), straight.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)


def test_a_job_whose_worker_is_killed_twice_ends_as_an_uninterrupted_run(tmp_path: Path) -> None:
    db_path = str(tmp_path / "service.db")
    with LiveServer.in_folder(tmp_path, workers=2, **SETTINGS) as server, server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        victim = submit(client, dataset, **HYPERPARAMETERS)
        reference = submit(client, dataset, **HYPERPARAMETERS)
        checkpoint = 0
        for attempt in (1, 2):
            worker_id, checkpoint = wait_for_checkpoint(db_path, victim, attempt, checkpoint)
            os.kill(int(worker_id.rsplit(":", 1)[1]), signal.SIGKILL)

        job = wait_for(client, victim, TERMINAL, timeout=TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 3
        straight = wait_for(client, reference, TERMINAL, timeout=TIMEOUT)
        assert straight["status"] == "succeeded" and straight["attempts"] == 1
        assert_same_run(client, job, straight)
        assert "queued again" in server.log_path.read_text()


def test_a_job_survives_a_server_crash_and_restart(tmp_path: Path) -> None:
    db_path = str(tmp_path / "service.db")
    server = LiveServer.in_folder(tmp_path, workers=1, **SETTINGS).start()
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        job_id = submit(client, dataset, **HYPERPARAMETERS)
        _, checkpoint = wait_for_checkpoint(db_path, job_id, 1, 0)
    server.kill()

    restarted = LiveServer.in_folder(tmp_path, workers=1, **SETTINGS)
    assert_succeeds_on_the_second_attempt(restarted, job_id)
    assert checkpoint > 0


@pytest.mark.parametrize(
    "previous_worker",
    [
        # The dead worker's pid now belongs to another live process (here: this test's).
        f"{socket.gethostname()}:{os.getpid()}",
        # The server came back on another host name (a container created anew on its volume).
        "a-previous-container:41",
    ],
)
def test_a_job_whose_dead_worker_is_not_recognised_resumes_once_its_lease_runs_out(
    tmp_path: Path, previous_worker: str
) -> None:
    db_path = str(tmp_path / "service.db")
    settings = {**SETTINGS, "DNN_JOB_LEASE_SECONDS": "3"}
    server = LiveServer.in_folder(tmp_path, workers=1, **settings).start()
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        job_id = submit(client, dataset, **HYPERPARAMETERS)
        wait_for_checkpoint(db_path, job_id, 1, 0)
    server.kill()
    # As the crashed server left it, but with a worker id the restart cannot tell is dead, and
    # a lease still running when the restart looks.
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(db_path) as db:
        db.execute(
            "UPDATE jobs SET worker_id = ?, heartbeat_at = ? WHERE id = ?",
            (previous_worker, now, job_id),
        )

    restarted = LiveServer.in_folder(tmp_path, workers=1, **settings)
    assert_succeeds_on_the_second_attempt(restarted, job_id)
    assert "lease ran out" in restarted.log_path.read_text()


def assert_succeeds_on_the_second_attempt(server: LiveServer, job_id: str) -> None:
    """Started, ``server`` finishes the job on its second attempt with every iteration once."""
    with server, server.client() as client:
        job = wait_for(client, job_id, TERMINAL, timeout=TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        iterations = [p["iteration"] for p in all_points(client, job_id)]
        assert iterations == list(range(1, N_ITERATIONS + 1))
