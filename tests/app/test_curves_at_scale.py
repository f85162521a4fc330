"""Long learning curves over HTTP: bounded job reads, paged history, one snapshot per stream.

The 100,000-point curve is written straight into the server's database through the store (as
a worker's flushes would), so no test trains for minutes.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import curve_checks
import httpx
import pytest
from live_server import LiveServer
from sse_events import read_events

from app.db.engine import make_engine, make_session_factory

pytestmark = pytest.mark.slow

N_POINTS = 100_000
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("curves-at-scale")
    with LiveServer.in_folder(folder, workers=1, DNN_EVENTS_POLL_SECONDS="0.05") as live:
        yield live


@pytest.fixture(scope="module")
def long_job(server: LiveServer) -> tuple[str, list[dict[str, Any]]]:
    engine = make_engine(server.database_url)
    try:
        factory = make_session_factory(engine)
        job_id = curve_checks.make_job(factory, N_POINTS)
        points = curve_checks.curve(N_POINTS, seed=12)
        curve_checks.write(factory, job_id, points, batches=(25, 1000))
    finally:
        engine.dispose()
    return job_id, points


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_get_job_returns_a_bounded_thinned_curve(
    http: httpx.Client, long_job: tuple[str, list[dict[str, Any]]]
) -> None:
    job_id, points = long_job
    response = http.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    assert len(response.content) < 1024 * 1024
    job = response.json()
    assert job["thinned"] and job["points_total"] == N_POINTS
    assert job["full_history"] == f"/jobs/{job_id}/history"
    history = job["history"]
    assert 500 < len(history) <= 2000
    assert history[0] == points[0] and history[-1] == points[-1]
    curve_checks.assert_real_points(history, points)
    assert max(points, key=lambda p: p["cost"]) in history, "the spike survives"

    small = http.get(f"/jobs/{job_id}", params={"max_points": 500}).json()
    assert small["thinned"] and len(small["history"]) <= 500
    assert small["history"][-1] == points[-1]
    for bad in (1, 100_001):
        refused = http.get(f"/jobs/{job_id}", params={"max_points": bad})
        assert refused.status_code == 422
        assert refused.json()["error"]["code"] == "invalid_input"


def test_history_pages_return_every_point_exactly_once(
    http: httpx.Client, long_job: tuple[str, list[dict[str, Any]]]
) -> None:
    job_id, points = long_job
    first = http.get(f"/jobs/{job_id}/history").json()
    assert first["limit"] == 10_000 and len(first["points"]) == 10_000
    assert first["next_since"] == 10_000 and not first["thinned"]
    read: list[dict[str, Any]] = []
    since: int | None = 0
    while since is not None:
        page = http.get(f"/jobs/{job_id}/history", params={"since": since, "limit": 7_000})
        assert page.status_code == 200
        body = page.json()
        assert body["since"] == since and len(body["points"]) <= 7_000
        read += body["points"]
        since = body["next_since"]
    assert read == points
    assert http.get(f"/jobs/{job_id}/history", params={"limit": 100_001}).status_code == 422
    thinned = http.get(f"/jobs/{job_id}/history", params={"since": 90_000, "max_points": 100})
    body = thinned.json()
    assert body["thinned"] and body["next_since"] is None and len(body["points"]) <= 100
    assert body["points"][0]["iteration"] == 90_001 and body["points"][-1] == points[-1]


def test_a_new_stream_opens_with_one_thinned_snapshot(
    http: httpx.Client, long_job: tuple[str, list[dict[str, Any]]]
) -> None:
    job_id, points = long_job
    with http.stream("GET", f"/jobs/{job_id}/events") as response:
        events = list(read_events(response))
    assert [e.event for e in events] == ["snapshot", "status", "end"]
    snapshot = events[0].json()
    assert snapshot["thinned"] and snapshot["points_total"] == N_POINTS
    assert snapshot["points"] == http.get(f"/jobs/{job_id}").json()["history"]
    assert events[0].id == str(N_POINTS)

    # Resuming (Last-Event-ID or ?since) sends points, never a snapshot.
    headers = {"Last-Event-ID": str(N_POINTS - 10)}
    with http.stream("GET", f"/jobs/{job_id}/events", headers=headers) as response:
        resumed = list(read_events(response))
    assert [e.json() for e in resumed if e.event == "point"] == points[-10:]
    assert "snapshot" not in {e.event for e in resumed}
    # ?since= far back replays every later point, a page of 10,000 per read.
    since = N_POINTS - 25_000
    with http.stream("GET", f"/jobs/{job_id}/events", params={"since": since}) as response:
        replayed = [e for e in read_events(response) if e.event == "point"]
    assert [int(e.id or 0) for e in replayed] == list(range(since + 1, N_POINTS + 1))


def test_curve_images_draw_the_thinned_curve(
    http: httpx.Client, long_job: tuple[str, list[dict[str, Any]]]
) -> None:
    job_id, _ = long_job
    history = http.get(f"/jobs/{job_id}").json()["history"]
    svg = http.get(f"/jobs/{job_id}/curve.svg")
    assert svg.status_code == 200
    for group in ET.fromstring(svg.content).iter(f"{SVG}g"):
        if group.get("id") == "cost-train":
            # matplotlib may split a long line into several <path> pieces.
            d = " ".join(path.get("d", "") for path in group.iter(f"{SVG}path"))
            assert len(re.findall(r"[ML]\s", d)) == len(history)
            break
    else:
        pytest.fail("no cost-train line in the SVG")
    png = http.get(f"/jobs/{job_id}/curve.png")
    assert png.status_code == 200 and png.content[:4] == b"\x89PNG"
