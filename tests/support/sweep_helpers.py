"""Helpers for tests that drive sweeps through the HTTP API."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx

SWEEP_DONE = {"succeeded", "failed", "cancelled"}


def wait_for_sweep(
    client: httpx.Client, sweep_id: str, states: set[str], timeout: float = 180.0
) -> dict[str, Any]:
    """The sweep once its status is in states and none of its trials is still unfinished."""
    deadline = time.monotonic() + timeout
    sweep: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sweep = client.get(f"/sweeps/{sweep_id}").json()
        unfinished = [
            t for t in sweep["trials"] if t["status"] in {"queued", "running", "cancelling"}
        ]
        if sweep["status"] in states and not unfinished:
            return sweep
        time.sleep(0.1)
    raise AssertionError(f"sweep {sweep_id} did not reach {states}; last seen {sweep}")


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals open at one instant; one that ends as another starts does not overlap."""
    events = [(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals]
    # At equal times the end (-1) sorts first.
    running = peak = 0
    for _, step in sorted(events):
        running += step
        peak = max(peak, running)
    return peak


def run_intervals(client: httpx.Client, job_ids: list[str]) -> list[tuple[datetime, datetime]]:
    """Each job's [started_at, finished_at], from the jobs API."""
    intervals = []
    for job_id in job_ids:
        job = client.get(f"/jobs/{job_id}").json()
        assert job["started_at"] and job["finished_at"], job
        intervals.append(
            (datetime.fromisoformat(job["started_at"]), datetime.fromisoformat(job["finished_at"]))
        )
    return intervals


def best_by_metric(client: httpx.Client, sweep: dict[str, Any]) -> str:
    """The job id of the best succeeded trial, recomputed from each trial's model."""
    metric, sign = sweep["metric"], (-1.0 if sweep["goal"] == "max" else 1.0)
    scored = []
    for trial in sweep["trials"]:
        if trial["status"] != "succeeded":
            continue
        model = client.get(f"/models/{trial['model_id']}").json()
        scored.append((sign * model["metrics"][metric], trial["trial"], trial["job_id"]))
    assert scored, sweep
    return str(min(scored)[2])
