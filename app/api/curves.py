"""A job's learning curve as an image: GET /jobs/{id}/curve.svg and curve.png."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session, sessionmaker

from app import plots
from app.api.deps import ReadSessionFactoryDep, TenantDep
from app.schemas.common import PLAIN_INT, error_responses
from app.schemas.jobs import DEFAULT_CURVE_POINTS, MAX_CURVE_POINTS
from app.store import history, job_metrics, jobs

router = APIRouter(tags=["live"], responses=error_responses(400, 401, 404, 422))

# Curves longer than this are drawn from their thinned view (real points, spikes kept).
DEFAULT_PLOT_POINTS = DEFAULT_CURVE_POINTS

MaxPlotPoints = Annotated[
    int,
    Query(ge=2, le=MAX_CURVE_POINTS, description="draw at most this many (real) points"),
    PLAIN_INT,
]


YScaleQuery = Annotated[
    plots.YScale,
    Query(description="the cost panel's y axis; accuracy/R² stays linear"),
]


def curve_style(
    hyperparameters: dict[str, Any], metrics: dict[str, Any] | None, yscale: plots.YScale
) -> plots.CurveStyle:
    """How a job's curve is labelled: its decided task, batch size and early-stopping point."""
    restored = (metrics or {}).get("best_iteration")
    batch_size = hyperparameters.get("batch_size")
    return plots.CurveStyle(
        yscale=yscale,
        task=hyperparameters.get("task"),
        batch_size=batch_size if isinstance(batch_size, int) else None,
        best_iteration=restored if isinstance(restored, int) else None,
    )


def render_job_curve(
    factory: sessionmaker[Session],
    tenant: str,
    job_id: str,
    fmt: plots.ImageFormat,
    max_points: int,
    yscale: plots.YScale,
) -> bytes:
    # The session closes before the comparatively slow drawing starts.
    with factory() as session:
        job = jobs.get_job(session, tenant, job_id)
        title = f"job {job.id} ({job.status})"
        style = curve_style(
            job.hyperparameters, job_metrics.final_metrics(session, [job]).get(job.id), yscale
        )
        points = history.read_curve(session, job_id, max_points=max_points).points
    return plots.render_curves(points, fmt, title=title, style=style)


@router.get(
    "/jobs/{job_id}/curve.svg",
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
    summary="The learning curve as SVG: cost and accuracy panels, train and validation lines",
)
def curve_svg(
    job_id: str,
    factory: ReadSessionFactoryDep,
    tenant: TenantDep,
    max_points: MaxPlotPoints = DEFAULT_PLOT_POINTS,
    yscale: YScaleQuery = "log",
) -> Response:
    image = render_job_curve(factory, tenant, job_id, "svg", max_points, yscale)
    return Response(image, media_type="image/svg+xml", headers={"Cache-Control": "no-cache"})


@router.get(
    "/jobs/{job_id}/curve.png",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}},
    summary="The learning curve as a 1000x400 PNG",
)
def curve_png(
    job_id: str,
    factory: ReadSessionFactoryDep,
    tenant: TenantDep,
    max_points: MaxPlotPoints = DEFAULT_PLOT_POINTS,
    yscale: YScaleQuery = "log",
) -> Response:
    image = render_job_curve(factory, tenant, job_id, "png", max_points, yscale)
    return Response(image, media_type="image/png", headers={"Cache-Control": "no-cache"})
