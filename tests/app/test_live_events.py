"""GET /jobs/{id}/events against a real server: every point once, in order, then the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from sse_events import read_events

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder: Path = tmp_path_factory.mktemp("live-events")
    with LiveServer.in_folder(folder, workers=1, DNN_EVENTS_POLL_SECONDS="0.05") as live:
        yield live


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def start_job(http: httpx.Client, n_iterations: int, **hyperparameters: Any) -> str:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 120)
    X = rng.normal(size=(120, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    dataset = {"name": "blobs", "features": X.tolist(), "labels": y.tolist()}
    uploaded = http.post("/datasets", json=dataset)
    # The same rows each time: stored on the first call, found again (200) on later ones.
    assert uploaded.status_code in (200, 201), uploaded.text
    hp = {"hidden_layers": [4], "n_iterations": n_iterations, "optimizer": "gd", **hyperparameters}
    submitted = http.post(
        "/train", json={"dataset_id": uploaded.json()["id"], "hyperparameters": hp}
    )
    assert submitted.status_code == 202, submitted.text
    job_id: str = submitted.json()["job_id"]
    return job_id


def test_stream_yields_every_point_once_then_ends(http: httpx.Client) -> None:
    job_id = start_job(http, 1500, validation_fraction=0.2)
    with http.stream("GET", f"/jobs/{job_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(read_events(response))  # returns only because the server ends the stream

    # Opened without Last-Event-ID: one snapshot of the curve so far (1,500 points never need
    # thinning), then every later point once.
    assert events[0].event == "snapshot"
    snapshot = events[0].json()
    assert not snapshot["thinned"] and snapshot["points_total"] == len(snapshot["points"])
    if snapshot["points"]:
        assert events[0].id == str(snapshot["points"][-1]["iteration"])
    assert [e.event for e in events].count("snapshot") == 1
    points = [e for e in events if e.event == "point"]
    received = snapshot["points"] + [p.json() for p in points]
    assert [p["iteration"] for p in received] == list(range(1, 1501))
    assert all(p.id == str(p.json()["iteration"]) for p in points)
    assert {"cost", "accuracy", "val_cost", "val_accuracy"} <= set(received[-1])

    assert events[-1].event == "end"
    final = events[-1].json()
    assert final["id"] == job_id and final["status"] == "succeeded" and final["model_id"]
    statuses = [e.json() for e in events if e.event == "status"]
    assert statuses[-1]["status"] == "succeeded" and statuses[-1]["progress"] == 1.0
    assert [s["iteration"] for s in statuses] == sorted(s["iteration"] for s in statuses)

    # The stream agrees with the stored history.
    stored = http.get(f"/jobs/{job_id}/history").json()["points"]
    assert received == stored


def test_last_event_id_resumes_after_that_iteration(http: httpx.Client) -> None:
    job_id = start_job(http, 800)
    seen: list[int] = []
    with http.stream("GET", f"/jobs/{job_id}/events") as response:
        for event in read_events(response):
            if event.event == "snapshot":
                seen += [point["iteration"] for point in event.json()["points"]]
            if event.event == "point":
                seen.append(int(event.id or 0))
            if len(seen) >= 100:
                break  # drop the connection mid-job, as a flaky network would
    headers = {"Last-Event-ID": str(seen[-1])}
    with http.stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
        events = list(read_events(response))
    assert "snapshot" not in [e.event for e in events], "a resumed stream sends no snapshot"
    seen += [int(e.id or 0) for e in events if e.event == "point"]
    assert seen == list(range(1, 801)), "every point exactly once across the reconnect"
    assert events[-1].event == "end"

    # ?since= is the same resume point for clients that cannot set headers.
    with http.stream("GET", f"/jobs/{job_id}/events", params={"since": 790}) as response:
        later = [int(e.id or 0) for e in read_events(response) if e.event == "point"]
    assert later == list(range(791, 801))


def test_cancelled_job_ends_the_stream(http: httpx.Client) -> None:
    job_id = start_job(http, 1_000_000)
    statuses: list[str] = []
    cancel_sent = False
    with http.stream("GET", f"/jobs/{job_id}/events") as response:
        for event in read_events(response):
            if event.event == "point" and not cancel_sent:
                assert http.post(f"/jobs/{job_id}/cancel").status_code == 202
                cancel_sent = True
            if event.event == "status":
                statuses.append(event.json()["status"])
            if event.event == "end":
                assert event.json()["status"] == "cancelled"
                break
        else:
            pytest.fail("the stream closed without an end event")
    assert statuses[0] in {"queued", "running"} and statuses[-1] == "cancelled"


def test_unknown_job_and_bad_resume_point_are_client_errors(http: httpx.Client) -> None:
    missing = http.get("/jobs/nope/events")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"

    job_id = start_job(http, 10)
    bad = http.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "soon"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input"
