"""GET /metrics on a live server, parsed with prometheus_client's own parser."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.slow


def scrape(client: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_after_traffic(client: httpx.Client) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    labels = (X[:, 0] > 0).astype(int).tolist()
    body = {
        "dataset": {"features": X.tolist(), "labels": labels},
        "hyperparameters": {"hidden_layers": [4], "n_iterations": 100},
    }
    job_id = client.post("/train", json=body).json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.05)
    model_id = client.get(f"/jobs/{job_id}").json()["model_id"]
    assert client.post(
        "/predict", json={"model_id": model_id, "instances": X[:5].tolist()}
    ).is_success
    for _ in range(3):
        assert client.get("/jobs/does-not-exist").status_code == 404
    assert client.get("/no/such/path/123").status_code == 404

    samples = scrape(client)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("dnn_http_requests_total", method="GET", route="/jobs/{job_id}", status="404") >= 3
    assert value("dnn_http_requests_total", method="POST", route="/train", status="202") == 1
    assert value("dnn_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    # Raw paths never become labels.
    assert not any(("route", "/jobs/does-not-exist") in key[1] for key in samples)
    histogram_count = value(
        "dnn_http_request_duration_seconds_count", method="POST", route="/predict", status="200"
    )
    assert histogram_count == 1
    assert (
        value(
            "dnn_http_request_duration_seconds_bucket",
            method="POST",
            route="/predict",
            status="200",
            le="+Inf",
        )
        == 1
    )
    assert value("dnn_prediction_rows_total") == 5
    assert value("dnn_jobs", state="succeeded") == 1
    assert value("dnn_jobs", state="queued") == 0
    assert value("dnn_training_iterations_total") == 100
    assert ("dnn_training_iterations_per_second", ()) in samples

    # The scrape itself is counted on the next one, under its route.
    again = scrape(client)
    assert (
        again[
            (
                "dnn_http_requests_total",
                (("method", "GET"), ("route", "/metrics"), ("status", "200")),
            )
        ]
        >= 1
    )
