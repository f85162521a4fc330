"""`serve --api-workers 2`: two API processes behind one port, counters summed across both."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow


def samples(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_two_api_processes_serve_train_and_sum_their_counters(tmp_path: Path) -> None:
    with LiveServer.in_folder(tmp_path, workers=1, serve_args=("--api-workers", "2")) as server:
        # A new connection per request, so the kernel may hand it to either process.
        for _ in range(30):
            assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        with server.client() as client:
            # Training: the API process stores the job; the supervisor's worker runs it.
            rng = np.random.default_rng(0)
            X = rng.normal(size=(40, 2))
            body = {
                "dataset": {"features": X.tolist(), "labels": (X[:, 0] > 0).astype(int).tolist()},
                "hyperparameters": {"hidden_layers": [3], "n_iterations": 20},
            }
            job_id = client.post("/train", json=body).json()["job_id"]
            deadline = time.monotonic() + 60
            while (job := client.get(f"/jobs/{job_id}").json())["status"] != "succeeded":
                assert job["status"] in {"queued", "running"}, job
                assert time.monotonic() < deadline, "the supervisor's worker never ran the job"
                time.sleep(0.1)
            predicted = client.post(
                "/predict", json={"model_id": job["model_id"], "instances": X[:3].tolist()}
            )
            assert predicted.status_code == 200

            found = samples(client)
        # Both processes counted their start: the scrape sums the counters of both.
        assert found[("dnn_api_process_starts_total", ())] == 2
        healthz = (("method", "GET"), ("route", "/healthz"), ("status", "200"))
        assert found[("dnn_http_requests_total", healthz)] == 30
        assert found[("dnn_prediction_rows_total", ())] == 3
        assert found[("dnn_jobs_finished_total", (("status", "succeeded"),))] == 1
