"""HEAD on every GET route (app/http/head.py): the GET's status and headers, no body. It was
a 405 everywhere but the health probes."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for

# Headers that differ between two answers to the same request.
VARYING = {"date", "x-request-id", "server", "server-timing"}


@pytest.fixture(scope="module")
def trained(shared_client: httpx.Client) -> dict[str, Any]:
    dataset = shared_client.post("/datasets", json=blobs()).json()
    job = wait_for(shared_client, submit(shared_client, dataset["id"], n_iterations=20), TERMINAL)
    assert job["status"] == "succeeded"
    return {"dataset": dataset["id"], "model": job["model_id"], "job": job["id"]}


PATHS = [
    "/datasets",
    "/datasets/{dataset}",
    "/jobs",
    "/jobs/{job}",
    "/jobs/{job}/history",
    "/jobs/{job}/curve.svg",
    "/models",
    "/models/{model}",
    "/models/{model}/weights",
    "/sweeps",
    "/openapi.json",
    "/metrics",
    "/healthz",
    "/",
    "/docs",
    "/v2/models/{model}",
    "/datasets/no-such-dataset",  # 404: the same error headers
    "/jobs?limit=0",  # 422
]


@pytest.mark.parametrize("template", PATHS)
def test_head_answers_as_get_does_without_a_body(
    shared_client: httpx.Client, trained: dict[str, Any], template: str
) -> None:
    path = template.format(**trained)
    got = shared_client.get(path)
    head = shared_client.head(path)
    assert head.status_code == got.status_code, (path, head.text)
    assert head.content == b""
    # /metrics counts the GET just made: its length moves from one request to the next.
    varying = VARYING | ({"content-length"} if template == "/metrics" else set())
    expected = {k: v for k, v in got.headers.items() if k not in varying}
    assert {k: v for k, v in head.headers.items() if k not in varying} == expected
    assert ("content-length" in head.headers) == ("content-length" in got.headers)


def test_head_on_an_event_stream_answers_at_once(shared_client: httpx.Client) -> None:
    """A live stream has no end: a HEAD served as its GET must stop at the headers."""
    dataset = shared_client.post("/datasets", json=blobs()).json()
    job_id = submit(shared_client, dataset["id"], n_iterations=1_000_000)
    try:
        started = time.monotonic()
        head = shared_client.head(f"/jobs/{job_id}/events", timeout=10)
        assert time.monotonic() - started < 5
        assert head.status_code == 200
        assert head.headers["content-type"].startswith("text/event-stream")
        assert head.content == b""
        # The connection is still good for the next request.
        assert shared_client.get("/healthz").status_code == 200
    finally:
        shared_client.post(f"/jobs/{job_id}/cancel")


def test_head_is_not_documented_as_an_operation(shared_client: httpx.Client) -> None:
    paths = shared_client.get("/openapi.json").json()["paths"]
    assert not [path for path, item in paths.items() if "head" in item]


def test_a_path_without_get_still_refuses_head(shared_client: httpx.Client) -> None:
    response = shared_client.head("/predict")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_head_is_counted_under_its_route(shared_client: httpx.Client) -> None:
    """The route the GET matched is the HEAD's metrics label, not `<unmatched>`."""
    assert shared_client.head("/sweeps").status_code == 200
    exposition = shared_client.get("/metrics").text
    assert 'dnn_http_requests_total{method="HEAD",route="/sweeps",status="200"}' in exposition
