"""GET /metrics: Prometheus text exposition of the API processes and of the shared job table."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from app.api.deps import MetricsAccessDep, SessionFactoryDep
from app.metrics import JobCollector, scrape_registry
from app.schemas.common import error_responses

router = APIRouter(tags=["metrics"], responses=error_responses(401, 403))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    summary="Prometheus metrics: requests and inference per route and model, jobs, process",
)
def metrics(factory: SessionFactoryDep, _access: MetricsAccessDep) -> Response:
    # Job figures are read fresh on every scrape, so the collector lives only for this one.
    jobs = CollectorRegistry()
    jobs.register(JobCollector(factory))
    body = generate_latest(scrape_registry()) + generate_latest(jobs)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)
