"""Load scenarios of issue 18 for benchmarks/service.py: /healthz under load, a 48 MB upload.

A probe thread asks GET /healthz on its own keep-alive connection every few milliseconds while
the load runs and records each answer's latency and every failure (non-200, dropped or refused
connection). The figures are bounded latencies: worst and p99 of the probe.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

UPLOAD_BYTES = 48 * 1024 * 1024


@dataclass
class Probe:
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def worst_ms(self) -> float:
        return max(self.latencies) * 1000 if self.latencies else float("nan")

    def p99_ms(self) -> float:
        if not self.latencies:
            return float("nan")
        return float(np.percentile(np.array(self.latencies) * 1000, 99))


def probe_while(url: str, work: Callable[[], Any], interval: float = 0.01) -> tuple[Probe, Any]:
    """Run work() while probing {url}/healthz from a thread; the probe and work()'s result."""
    probe = Probe()
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                started = time.perf_counter()
                try:
                    ok = client.get(f"{url}/healthz").status_code == 200
                except httpx.TransportError:
                    ok = False
                probe.latencies.append(time.perf_counter() - started)
                probe.failures += not ok
                stop.wait(interval)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        result = work()
    finally:
        stop.set()
        thread.join(60)
    return probe, result


def upload_body(target_bytes: int = UPLOAD_BYTES) -> bytes:
    """A JSON dataset upload of about target_bytes: rows of 10 six-decimal features."""

    def body(rows: int) -> bytes:
        X = np.random.default_rng(7).normal(size=(rows, 10)).round(6)
        labels = (X[:, 0] > 0).astype(int).tolist()
        data = {"name": "bench-48mb", "features": X.tolist(), "labels": labels}
        return json.dumps(data).encode()

    sample = body(10_000)
    return body(int(10_000 * target_bytes / len(sample)))


def post_upload(url: str, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/datasets",
        content=body,
        headers={"Content-Type": "application/json"},
        params={"dedupe": "false"},
        timeout=300,
    )
    return response.status_code, time.perf_counter() - started
