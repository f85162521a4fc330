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
    # A gauge now: a job resumed from a checkpoint lowers the sum, which a counter must not do.
    assert value("dnn_job_iterations_recorded") == 100
    assert ("dnn_training_iterations_total", ()) not in samples
    assert ("dnn_training_iterations_per_second", ()) in samples

    # The model just used has its own series, labelled by name, version and route.
    model = client.get(f"/models/{model_id}").json()
    per_model = {"model": model["name"], "version": str(model["version"]), "route": "/predict"}
    assert value("dnn_model_inferences_total", **per_model, outcome="ok") == 1
    assert value("dnn_model_inference_duration_seconds_count", **per_model) == 1
    assert value("dnn_model_inference_duration_seconds_bucket", **per_model, le="+Inf") == 1

    # Jobs: finished by status, and how long they waited and ran.
    assert value("dnn_jobs_finished_total", status="succeeded") == 1
    assert value("dnn_jobs_finished_total", status="failed") == 0
    assert value("dnn_job_duration_seconds_count") == 1
    assert value("dnn_job_queue_wait_seconds_count") == 1
    assert value("dnn_job_duration_seconds_bucket", le="+Inf") == 1

    # The default collectors, and no _created series.
    assert any(name == "process_resident_memory_bytes" for name, _ in samples)
    assert any(name == "python_gc_collections_total" for name, _ in samples)
    assert not any(name.endswith("_created") for name, _ in samples)

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


def test_event_streams_are_counted_not_timed(client: httpx.Client) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    body = {
        "dataset": {"features": X.tolist(), "labels": [0, 1, 0, 1]},
        "hyperparameters": {"hidden_layers": [2], "n_iterations": 5},
    }
    job_id = client.post("/train", json=body).json()["job_id"]
    # The stream of a job ends with the job, so reading it to the end waits for the job.
    with client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    assert "event: end" in text

    samples = scrape(client)
    route = "/jobs/{job_id}/events"
    counted = [key for key in samples if key[0] == "dnn_http_requests_total"]
    assert any(("route", route) in labels for _, labels in counted)
    timed = [key for key in samples if key[0].startswith("dnn_http_request_duration_seconds")]
    assert timed, "ordinary requests are still timed"
    assert not any(("route", route) in labels for _, labels in timed)


def test_route_labels_are_the_served_templates_and_methods_are_bounded(
    client: httpx.Client,
) -> None:
    X = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    body = {
        "name": "routes",
        "dataset": {"features": X.tolist(), "labels": [0, 1, 0, 1]},
        "hyperparameters": {"hidden_layers": [2], "n_iterations": 5},
    }
    job_id = client.post("/train", json=body).json()["job_id"]
    deadline = time.monotonic() + 60
    while client.get(f"/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline, "training did not finish"
        time.sleep(0.05)
    tensor = {"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0.0, 1.0]}
    assert client.post("/v2/models/routes/infer", json={"inputs": [tensor]}).is_success
    assert client.get("/v2/health/live").is_success
    assert client.get("/v2/models/no-such-model").status_code == 404
    for method in ("FOO1", "FOO2", "FOO3"):
        assert client.request(method, "/predict").status_code == 405

    samples = scrape(client)
    # Every route label names a path the service serves (the v2 routes with their /v2 prefix),
    # so a dashboard can join the label to the API, and unknown paths share one label.
    served = set(client.get("/openapi.json").json()["paths"])
    routes = {dict(labels)["route"] for _, labels in samples if "route" in dict(labels)}
    assert {"/v2/models/{name}/infer", "/v2/health/live", "/v2/models/{name}"} <= routes
    assert routes <= served | {"<unmatched>"}
    per_model = {"model": "routes", "version": "1", "route": "/v2/models/{name}/infer"}
    assert (
        samples[
            ("dnn_model_inferences_total", tuple(sorted({**per_model, "outcome": "ok"}.items())))
        ]
        == 1
    )

    # Invented methods share one label: a client cannot add series without bound.
    methods = {
        dict(labels)["method"] for name, labels in samples if name == "dnn_http_requests_total"
    }
    assert not any(method.startswith("FOO") for method in methods)
    other = (("method", "<other>"), ("route", "/predict"), ("status", "405"))
    assert samples[("dnn_http_requests_total", other)] == 3


def test_hostile_paths_add_no_series(client: httpx.Client) -> None:
    """Random paths, methods and route parameters, v2 errors and redirects: after one round
    has created the series each (method, route, status) needs, a second round of new random
    values adds none."""
    rng = np.random.default_rng(4)

    def token() -> str:
        return "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz0123456789"), 10))

    def burst() -> None:
        for _ in range(15):
            word = token()
            paths = [
                f"/{word}",
                f"/v2/{word}",
                f"/v2/models/{word}/{word}",
                f"/v2/models/{word}/versions/{word}/infer",
                f"/static/{word}",
                f"/jobs/{word}/",
                f"/%2e%2e/{word}",
            ]
            for path in paths:
                for method in ("GET", "POST", "OPTIONS", word.upper()):
                    client.request(method, path)
            client.get(f"/jobs/{word}/events")
            client.get(f"/v2/models/{word}/ready")
            client.post(f"/v2/models/{word}/infer", content=b"{")

    scrape(client)  # the scrape's own series, counted from the next one on
    burst()
    first = set(scrape(client))
    burst()
    second = set(scrape(client))
    assert second == first
    routes = {dict(labels).get("route") for _, labels in second} - {None}
    assert routes <= set(client.get("/openapi.json").json()["paths"]) | {"<unmatched>"}
