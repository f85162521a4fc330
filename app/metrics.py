"""Prometheus instrumentation: HTTP traffic by route template, prediction rows, job gauges.

Counters that events update (requests, latency, prediction rows) live in one process-wide
registry, as prometheus_client intends. Job figures are read from the database at scrape time
by a collector bound to one app's session factory, so every API replica reports the shared
database's truth rather than what it happened to see itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db.tables import Job
from app.job_status import JobStatus

PROCESS_REGISTRY = CollectorRegistry()

HTTP_REQUESTS = Counter(
    "dnn_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=PROCESS_REGISTRY,
)
HTTP_LATENCY = Histogram(
    "dnn_http_request_duration_seconds",
    "Time from receiving an HTTP request to sending the last byte of its response.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=PROCESS_REGISTRY,
)
PREDICTION_ROWS = Counter(
    "dnn_prediction_rows",
    "Rows predicted by this process, through /predict and the v2 inference protocol.",
    registry=PROCESS_REGISTRY,
)

# Paths that match no route share one label, so scanners cannot blow up the label set.
UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's path template (e.g. /jobs/{job_id}), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetrics:
    """ASGI middleware counting requests and timing them by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before starting a response

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # The router records the matched route in the scope it was handed, which is ours.
            labels = (scope["method"], route_template(scope), str(status))
            HTTP_REQUESTS.labels(*labels).inc()
            HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)


class JobCollector(Collector):
    """Job counts by state and training progress, queried from the database at each scrape."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            with self._session_factory() as session:
                by_state = dict(
                    session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
                )
                iterations = int(session.scalar(select(func.sum(Job.last_iteration))) or 0)
                running = session.execute(
                    select(Job.last_iteration, Job.started_at).where(
                        Job.status == JobStatus.RUNNING, Job.started_at.is_not(None)
                    )
                ).all()
        except SQLAlchemyError:
            # A scrape during a database outage reports the HTTP metrics rather than failing.
            return
        jobs = GaugeMetricFamily(
            "dnn_jobs", "Training jobs in the database, by state.", labels=["state"]
        )
        for state in JobStatus:
            jobs.add_metric([state.value], float(by_state.get(state.value, 0)))
        yield jobs
        yield CounterMetricFamily(
            "dnn_training_iterations",
            "Sum over the jobs in the database of the last iteration each has recorded; "
            "rate() of it is training iterations per second. Deleting jobs lowers it, which "
            "Prometheus treats as a counter reset.",
            value=iterations,
        )
        now = datetime.now(UTC)
        rate = 0.0
        for last, started in running:
            elapsed = (now - started).total_seconds() if started is not None else 0.0
            rate += last / elapsed if elapsed > 0 else 0.0
        yield GaugeMetricFamily(
            "dnn_training_iterations_per_second",
            "Summed over running jobs: iterations recorded so far divided by seconds since the "
            "job started (an average since start, not an instantaneous speed).",
            value=rate,
        )
