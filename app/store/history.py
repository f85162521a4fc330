"""Learning-curve points: one row per recorded iteration, appended in short batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.db.tables import HistoryPoint

POINT_COLUMNS = ("iteration", "cost", "accuracy", "val_cost", "val_accuracy")


def append_points(session: Session, job_id: str, points: Sequence[dict[str, Any]]) -> None:
    if not points:
        return
    rows = [
        {"job_id": job_id, **{key: point.get(key) for key in POINT_COLUMNS}} for point in points
    ]
    session.execute(insert(HistoryPoint), rows)


def truncate_points_after(session: Session, job_id: str, iteration: int) -> None:
    """Delete the points recorded after ``iteration``: a job resumed from a checkpoint at that
    iteration records them again, so the curve holds every iteration once."""
    session.execute(
        delete(HistoryPoint).where(
            HistoryPoint.job_id == job_id, HistoryPoint.iteration > iteration
        )
    )


def read_points(
    session: Session, job_id: str, *, since: int = 0, max_points: int | None = None
) -> list[dict[str, Any]]:
    """Points with iteration > since, oldest first; evenly thinned to max_points if given.

    Thinning keeps the last point so a reader always sees where the curve ends.
    """
    table = HistoryPoint.__table__
    query = (
        select(*(table.c[key] for key in POINT_COLUMNS))
        .where(table.c.job_id == job_id, table.c.iteration > since)
        .order_by(table.c.iteration)
    )
    rows = session.execute(query).all()
    if max_points is not None and len(rows) > max_points:
        step = len(rows) / max_points
        picked = [rows[int(i * step)] for i in range(max_points - 1)]
        rows = [*picked, rows[-1]]
    return [
        {key: value for key, value in zip(POINT_COLUMNS, row, strict=True) if value is not None}
        for row in rows
    ]


def count_points(session: Session, job_id: str) -> int:
    query = select(func.count()).where(HistoryPoint.job_id == job_id)
    return int(session.scalar(query) or 0)
