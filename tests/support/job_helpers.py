"""Helpers for tests that drive training jobs through the HTTP API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np

from app.db.engine import make_engine, make_session_factory
from app.store import history

TERMINAL = {"succeeded", "failed", "cancelled"}


def wait_for(
    client: httpx.Client, job_id: str, states: set[str], timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not reach {states}; last seen {job.get('status')}")


def wait_for_history(
    client: httpx.Client, job_id: str, at_least: int, timeout: float = 60.0
) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline:
        count = len(client.get(f"/jobs/{job_id}/history").json()["points"])
        if count >= at_least:
            return count
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} recorded only {count} points")


def all_points(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every recorded point of a job, at full resolution, paging through /history."""
    points: list[dict[str, Any]] = []
    since: int | None = 0
    while since is not None:
        page = client.get(f"/jobs/{job_id}/history", params={"since": since}).json()
        points += page["points"]
        since = page.get("next_since")
    return points


def blobs(n: int = 100, seed: int = 0) -> dict[str, Any]:
    """A small, separable binary problem as the JSON body of POST /datasets."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 4)) + np.where(y[:, None] == 1, 2.0, -2.0)
    return {"name": "blobs", "features": X.round(4).tolist(), "labels": y.tolist()}


def submit(client: httpx.Client, dataset_id: str, **hyperparameters: Any) -> str:
    response = client.post(
        "/train", json={"dataset_id": dataset_id, "hyperparameters": hyperparameters}
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def stored_points(database_url: str, job_id: str) -> int:
    """How many points a job has recorded, read from its database directly (no server)."""
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return history.read_curve(session, job_id, max_points=2).total
    finally:
        engine.dispose()
