"""Redis down at submission: 503 with Retry-After, and no queued job left that would never run;
Redis losing a queued job's message: the job is published again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from job_helpers import blobs, submit, wait_for
from live_server import LiveServer, free_port

pytestmark = pytest.mark.integration

FINAL = {"succeeded", "failed", "cancelled"}


@pytest.fixture
def client_without_broker(sqlite_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    # Nothing listens on a port just found free: every publish is refused.
    broker = f"redis://127.0.0.1:{free_port()}/14"
    server = LiveServer(
        sqlite_url, tmp_path / "server.log", workers=0, DNN_EXECUTOR="celery", DNN_BROKER_URL=broker
    ).start()
    with server.client() as client:
        yield client
    server.stop()


def test_submit_with_the_broker_down_is_503_and_leaves_no_queued_job(
    client_without_broker: httpx.Client,
) -> None:
    client = client_without_broker
    rows = {"features": [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]], "labels": [0, 1, 0, 1]}
    response = client.post("/train", json={"dataset": rows, "hyperparameters": {"n_iterations": 5}})

    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["code"] == "service_unavailable"
    assert "queue" in error["message"]

    assert client.get("/jobs", params={"status": "queued"}).json()["items"] == []
    [job] = client.get("/jobs").json()["items"]
    assert job["status"] == "failed"
    assert "not started" in job["error"]


def test_reads_still_work_and_the_replica_stays_ready_with_the_broker_down(
    client_without_broker: httpx.Client,
) -> None:
    # Readiness is about this replica; only submissions depend on the broker.
    assert client_without_broker.get("/readyz").status_code == 200
    assert client_without_broker.get("/jobs").status_code == 200


def test_a_queued_job_whose_message_the_broker_lost_is_published_again(
    start_cluster: Callable[..., Any], redis_url: str, celery_queue: str
) -> None:
    # No worker yet: the job waits as a message in Redis.
    cluster = start_cluster(n_workers=0, DNN_JOB_LEASE_SECONDS="2")
    with cluster.server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=100)).json()["id"]
        job_id = submit(client, dataset, n_iterations=50)
        broker = redis.Redis.from_url(redis_url)
        assert broker.llen(celery_queue) == 1
        # What a Redis restarted without persistence (or failed over, or flushed) leaves.
        broker.delete(celery_queue)
        broker.close()
        cluster.add_worker()

        job = wait_for(client, job_id, FINAL, timeout=120)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1
    assert "still queued long after it was published" in cluster.server.log_path.read_text()
