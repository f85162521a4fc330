"""Prometheus instrumentation: HTTP traffic by route template, inference per model, jobs.

Counters that events update (requests, latency, inferences per model) live in one process-wide
registry, as prometheus_client intends; with several API processes (`serve --api-workers N`)
prometheus_client's multiprocess mode sums them across processes at scrape time (see
`scrape_registry`). Job figures are read from the database at scrape time by a collector bound
to one app's session factory, so every API replica reports the shared database's truth rather
than what it happened to see itself.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.asgi import HttpMiddleware
from app.job_status import JobStatus
from app.store import job_stats

# A `_created` sample per series doubles the exposition and no dashboard reads it.
disable_created_metrics()  # type: ignore[no-untyped-call]

# prometheus_client picks its value store when imported: with this variable set (by
# `serve --api-workers N`), every process writes its samples to files there, summed at scrape.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ

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

MODEL_INFERENCES = Counter(
    "dnn_model_inferences",
    "Inference requests per model, by model name, version, route and outcome (ok or error).",
    ["model", "version", "route", "outcome"],
    registry=PROCESS_REGISTRY,
)
MODEL_LATENCY = Histogram(
    "dnn_model_inference_duration_seconds",
    "Time spent validating the input and running the model, per model and route.",
    ["model", "version", "route"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5),
    registry=PROCESS_REGISTRY,
)
API_PROCESS_STARTS = Counter(
    "dnn_api_process_starts",
    "API processes started (with --api-workers N, N at start, plus any restarts).",
    registry=PROCESS_REGISTRY,
)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)

# Paths that match no route share one label, so scanners cannot blow up the label set.
UNMATCHED_ROUTE = "<unmatched>"
# Any token is a method to the HTTP parser: methods outside RFC 9110's (and PATCH) share one
# label too, so `FOO1`, `FOO2`, ... cannot add series without bound either.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
OTHER_METHOD = "<other>"
# Inference outside an HTTP request (e.g. a test calling the service directly).
NO_ROUTE = "<none>"
# Per-model series beyond the cap share this model and version label.
OTHER = "other"
EVENT_STREAM = b"text/event-stream"

# The ASGI scope of the request being served: the inference service reads the matched route
# from it, so per-model series carry the route without every caller passing it along.
CURRENT_SCOPE: ContextVar[Scope | None] = ContextVar("dnn_current_scope", default=None)


def route_template(scope: Scope) -> str:
    """The matched route's path template (e.g. /jobs/{job_id}), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class HttpMetrics(HttpMiddleware):
    """ASGI middleware counting requests and timing them by route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        # The children of each (method, route, status): labels() takes a lock and rebuilds
        # the key on every call. The label values are bounded (known methods, route
        # templates, the statuses the app answers), and so are these caches. A latency child
        # is made only when first observed: making one exports its (empty) series.
        self._counters: dict[tuple[str, str, str], Counter] = {}
        self._latencies: dict[tuple[str, str, str], Histogram] = {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500  # what the client sees if the app raises before starting a response
        streaming = False

        async def send_with_status(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                streaming = any(
                    name == b"content-type" and value.startswith(EVENT_STREAM)
                    for name, value in message.get("headers", ())
                )
            await send(message)

        token = CURRENT_SCOPE.set(scope)
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            CURRENT_SCOPE.reset(token)
            # The router records the matched route in the scope it was handed, which is ours.
            method = scope["method"] if scope["method"] in KNOWN_METHODS else OTHER_METHOD
            labels = (method, route_template(scope), str(status))
            counter = self._counters.get(labels)
            if counter is None:
                counter = self._counters[labels] = HTTP_REQUESTS.labels(*labels)
            counter.inc()
            # An event stream lasts as long as its client watches: timing it as a request
            # would only fill the +Inf bucket and hide real latency in the route's quantiles.
            if not streaming:
                latency = self._latencies.get(labels)
                if latency is None:
                    latency = self._latencies[labels] = HTTP_LATENCY.labels(*labels)
                latency.observe(time.perf_counter() - started)


class ModelSeries:
    """Per-model inference count and latency with a bounded label set.

    The first `cap` (model, version, route) triples get their own series; later ones share
    model="other", version="other" for their route, so a tenant creating thousands of models
    cannot grow the exposition without bound. Children are cached by (model id, route), so the
    hot path is a dict lookup, an increment and an observation (about 2 µs).
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._labels: set[tuple[str, str, str]] = set()
        self._children: dict[tuple[str, str], tuple[Counter, Counter, Histogram]] = {}
        self._lock = threading.Lock()

    def record(self, model_id: str, name: str, version: int, ok: bool, seconds: float) -> None:
        scope = CURRENT_SCOPE.get()
        route = NO_ROUTE if scope is None else route_template(scope)
        children = self._children.get((model_id, route))
        if children is None:
            children = self._add(model_id, name, str(version), route)
        ok_counter, error_counter, latency = children
        (ok_counter if ok else error_counter).inc()
        latency.observe(seconds)

    def _add(
        self, model_id: str, name: str, version: str, route: str
    ) -> tuple[Counter, Counter, Histogram]:
        with self._lock:
            labels = (name, version, route)
            if labels not in self._labels:
                if len(self._labels) >= self.cap:
                    labels = (OTHER, OTHER, route)
                else:
                    self._labels.add(labels)
            children = (
                MODEL_INFERENCES.labels(*labels, "ok"),
                MODEL_INFERENCES.labels(*labels, "error"),
                MODEL_LATENCY.labels(*labels),
            )
            self._children[(model_id, route)] = children
            return children

    def series(self) -> int:
        with self._lock:
            return len(self._labels)


def scrape_registry() -> CollectorRegistry:
    """What GET /metrics exposes of the processes' own counters.

    One process: its registry plus the default process, platform and GC collectors. Several
    API processes: their counters and histograms summed from the multiprocess directory; the
    process and GC collectors describe one process only, so they are left out there.
    """
    if not MULTIPROCESS:
        return PROCESS_REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def register_default_collectors() -> None:
    """Process (CPU, memory, file descriptors), platform and GC figures of this process."""
    if MULTIPROCESS:
        return
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        with contextlib.suppress(ValueError):  # registered by an earlier app in this process
            PROCESS_REGISTRY.register(collector)


class JobCollector(Collector):
    """Job counts by state and training progress, queried from the database at each scrape."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory

    def collect(self) -> Iterator[Metric]:
        try:
            with self._session_factory() as session:
                figures = job_stats.job_figures(session)
        except SQLAlchemyError:
            # A scrape during a database outage reports the HTTP metrics rather than failing.
            return
        jobs = GaugeMetricFamily(
            "dnn_jobs", "Training jobs in the database, by state.", labels=["state"]
        )
        by_state = figures.by_state
        for state in JobStatus:
            jobs.add_metric([state.value], float(by_state.get(state.value, 0)))
        yield jobs
        finished = CounterMetricFamily(
            "dnn_jobs_finished",
            "Jobs that reached a final state, by that state (jobs are never deleted).",
            labels=["status"],
        )
        for state in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED):
            finished.add_metric([state.value], float(by_state.get(state.value, 0)))
        yield finished
        waits = [(s - c).total_seconds() for c, s, _ in figures.timings]
        durations = [(f - s).total_seconds() for _, s, f in figures.timings if f is not None]
        yield histogram(
            "dnn_job_queue_wait_seconds", "From submission to a worker starting the job.", waits
        )
        yield histogram(
            "dnn_job_duration_seconds",
            "From a worker starting a job to its final state.",
            durations,
        )
        # Not a counter: a job resumed from a checkpoint records an iteration again, lowering
        # the sum, and a counter must never go down.
        yield GaugeMetricFamily(
            "dnn_job_iterations_recorded",
            "Sum over the jobs in the database of the last iteration each has recorded; "
            "deriv() of it approximates training iterations per second.",
            value=figures.iterations,
        )
        now = datetime.now(UTC)
        rate = 0.0
        for last, started in figures.running:
            elapsed = (now - started).total_seconds()
            rate += last / elapsed if elapsed > 0 else 0.0
        yield GaugeMetricFamily(
            "dnn_training_iterations_per_second",
            "Summed over running jobs: iterations recorded so far divided by seconds since the "
            "job started (an average since start, not an instantaneous speed).",
            value=rate,
        )


def histogram(name: str, documentation: str, values: list[float]) -> HistogramMetricFamily:
    """A histogram of values computed at scrape time, with the job buckets."""
    values = sorted(values)
    buckets: list[tuple[str, float]] = []
    index = 0
    for bound in JOB_BUCKETS:
        while index < len(values) and values[index] <= bound:
            index += 1
        buckets.append((str(bound), float(index)))
    buckets.append(("+Inf", float(len(values))))
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=sum(values))
