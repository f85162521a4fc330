"""Learning curves in the database: packed chunks of points plus multi-resolution summaries.

The layout (levels, buckets, the chunk format) is in app/store/curve_codec.py. Here:

* `CurveWriter`: a running job's writer; each flush inserts one chunk and, per level, the
  buckets that flush completed. Rows are written once and never updated.
* `read_page`: every point after an iteration, in pages (full resolution).
* `read_curve`: a thinned view made of real recorded points; what it reads is bounded by what it
  returns (a few rows per level near the curve's end, plus the chosen level's buckets), however
  long the curve.
* `truncate_points_after`: drop the points after an iteration (a job resuming from a checkpoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.db.tables import HistoryChunk
from app.store.curve_codec import (
    N_LEVELS,
    ChunkRow,
    CurveBuilder,
    Points,
    bucket_stop,
    bucket_width,
    pack,
    reduce_to,
    summarize,
    unpack,
)

# Below every recorded iteration (the core records from iteration 1).
BEFORE_ALL = -1
# Each thinned bucket returns at most this many points (first, min cost, max cost, last).
POINTS_PER_BUCKET = 4
# A thinned read takes the finest level holding at most this many times the points asked for
# (every point for a curve that short, else a summary level: between 1 and 4 times) and thins
# those by rank, so a view has close to max_points points, at a read cost of O(max_points).
OVERSAMPLING = 4


@dataclass
class ReadCost:
    """What a read fetched from the database: rows and bytes of packed points."""

    rows: int = 0
    bytes: int = 0


@dataclass
class Curve:
    points: list[dict[str, Any]]
    # True when points is a subset of the curve (a thinned view), False when it is all of it.
    thinned: bool
    # How many points the curve holds in all.
    total: int
    cost: ReadCost = field(default_factory=ReadCost)


@dataclass
class Page:
    points: list[dict[str, Any]]
    # Pass as `since` for the next page; None when this page reached the last stored point.
    next_since: int | None
    cost: ReadCost = field(default_factory=ReadCost)


def _chunks(
    session: Session,
    job_id: str,
    level: int,
    cost: ReadCost,
    *,
    after: int = BEFORE_ALL,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[Points]:
    """Rows of one level holding any point with iteration > after, in order."""
    table = HistoryChunk.__table__
    key = table.c.last_iteration
    query = (
        select(table.c.data)
        .where(table.c.job_id == job_id, table.c.level == level, key > after)
        .order_by(key.desc() if newest_first else key)
    )
    if limit is not None:
        query = query.limit(limit)
    blobs = session.scalars(query).all()
    cost.rows += len(blobs)
    cost.bytes += sum(len(blob) for blob in blobs)
    return [unpack(blob) for blob in blobs]


def _last_chunk(session: Session, job_id: str, level: int, cost: ReadCost) -> Points | None:
    found = _chunks(session, job_id, level, cost, limit=1, newest_first=True)
    return found[0] if found else None


def _frontier(session: Session, job_id: str, level: int, cost: ReadCost) -> tuple[int, int]:
    """Where a summary level's written buckets end: (ordinal, iteration of the point before)."""
    last = _last_chunk(session, job_id, level, cost)
    if last is None:
        return 0, BEFORE_ALL
    return bucket_stop(int(last.ordinal[-1]), bucket_width(level)), int(last.iteration[-1])


def _tail(
    session: Session, job_id: str, level: int, frontier: int, after: int, cost: ReadCost
) -> Points:
    """Points that summarize every ordinal >= frontier at `level`: the finer levels' written
    buckets past it, then the raw points past the finest level's buckets.

    `after` is the iteration of the point at ordinal frontier - 1. Each finer level adds fewer
    than LEVEL_FACTOR buckets, so this reads a few rows per level whatever the curve's length.
    """
    parts = []
    for finer in range(level - 1, 0, -1):
        points = Points.concat(_chunks(session, job_id, finer, cost, after=after))
        points = points.take(points.ordinal >= frontier)
        if len(points):
            parts.append(points)
            frontier = bucket_stop(int(points.ordinal[-1]), bucket_width(finer))
            after = int(points.iteration[-1])
    raw = Points.concat(_chunks(session, job_id, 0, cost, after=after))
    parts.append(raw.take(raw.ordinal >= frontier))
    return Points.concat(parts)


def _load_builder(session: Session, job_id: str) -> CurveBuilder:
    """The writer's state rebuilt from what is stored (a new worker, a resumed job).

    Level k's open bucket: the stored representatives of level k-1 (raw points for level 1)
    past level k's last written bucket. Two small reads per level.
    """
    cost = ReadCost()
    last = _last_chunk(session, job_id, 0, cost)
    if last is None:
        return CurveBuilder.empty()
    open_points = []
    for level in range(1, N_LEVELS + 1):
        frontier, after = _frontier(session, job_id, level, cost)
        below = Points.concat(_chunks(session, job_id, level - 1, cost, after=after))
        open_points.append(summarize(below.take(below.ordinal >= frontier), bucket_width(level)))
    return CurveBuilder(int(last.ordinal[-1]) + 1, int(last.iteration[-1]), open_points)


def _insert(session: Session, job_id: str, rows: Sequence[ChunkRow]) -> None:
    if rows:
        values = [
            {"job_id": job_id, "level": r.level, "last_iteration": r.last_iteration, "data": r.data}
            for r in rows
        ]
        session.execute(insert(HistoryChunk), values)


class CurveWriter:
    """Appends a job's recorded points; keep one per running job, flush after flush.

    The first append reads the stored curve's end (so a resumed job continues it); later ones
    only insert. Create a new writer after `truncate_points_after`.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self._builder: CurveBuilder | None = None

    def append(self, session: Session, points: Sequence[dict[str, Any]]) -> None:
        if not points:
            return
        if self._builder is None:
            self._builder = _load_builder(session, self.job_id)
        _insert(session, self.job_id, self._builder.add(points))


def append_points(session: Session, job_id: str, points: Sequence[dict[str, Any]]) -> None:
    """One-off append (reads the curve's end first); a running job uses a CurveWriter."""
    CurveWriter(job_id).append(session, points)


def _read_points(
    session: Session, job_id: str, since: int, limit: int, cost: ReadCost
) -> tuple[Points, bool]:
    """Up to limit points with iteration > since, and whether more are stored after them."""
    parts: list[Points] = []
    count, after, batch = 0, since, 8
    while count <= limit:
        chunks = _chunks(session, job_id, 0, cost, after=after, limit=batch)
        for chunk in chunks:
            part = chunk.after(since)
            parts.append(part)
            count += len(part)
        if len(chunks) < batch:
            break
        after = int(chunks[-1].iteration[-1])
        batch = min(batch * 2, 256)
    points = Points.concat(parts)
    if len(points) > limit:
        return points.take(slice(0, limit)), True
    return points, False


def last_point(session: Session, job_id: str) -> dict[str, Any] | None:
    """The newest recorded point (one row read), or None before the first flush."""
    chunk = _last_chunk(session, job_id, 0, ReadCost())
    if chunk is None or not len(chunk):
        return None
    return chunk.take(slice(len(chunk) - 1, None)).to_dicts()[0]


def read_page(session: Session, job_id: str, *, since: int = 0, limit: int) -> Page:
    """Up to `limit` points with iteration > since, oldest first, at full resolution."""
    cost = ReadCost()
    points, more = _read_points(session, job_id, since, limit, cost)
    next_since = int(points.iteration[-1]) if more else None
    return Page(points.to_dicts(), next_since, cost)


def _level_for(first_ordinal: int, last_ordinal: int, max_points: int) -> int:
    """The finest summary level whose buckets' points over the range fit in max_points."""
    for level in range(1, N_LEVELS + 1):
        width = bucket_width(level)
        buckets = last_ordinal // width - first_ordinal // width + 1
        if POINTS_PER_BUCKET * buckets <= max_points:
            return level
    return N_LEVELS


def read_curve(session: Session, job_id: str, *, max_points: int, since: int = 0) -> Curve:
    """The points with iteration > since, thinned to at most max_points (>= 2) if longer.

    A thinned curve is made of real recorded points: the first and the last, and per bucket
    its first, minimum-cost, maximum-cost and last points, so spikes survive. The buckets'
    points come from the finest stored level with at most OVERSAMPLING * max_points of them,
    re-bucketed by rank down to max_points. It reads O(max_points) data, not O(length).
    """
    cost = ReadCost()
    last = _last_chunk(session, job_id, 0, cost)
    if last is None or int(last.iteration[-1]) <= since:
        total = 0 if last is None else int(last.ordinal[-1]) + 1
        return Curve([], False, total, cost)
    total = int(last.ordinal[-1]) + 1
    first = _chunks(session, job_id, 0, cost, after=since, limit=1)[0].after(since)
    first_ordinal = int(first.ordinal[0])
    count = total - first_ordinal
    if count <= OVERSAMPLING * max_points:
        points, _ = _read_points(session, job_id, since, count, cost)
        return Curve(reduce_to(points, max_points).to_dicts(), count > max_points, total, cost)
    level = _level_for(first_ordinal, total - 1, OVERSAMPLING * max_points)
    width = bucket_width(level)
    written = Points.concat(_chunks(session, job_id, level, cost, after=since)).after(since)
    frontier, frontier_after = _frontier(session, job_id, level, cost)
    tail = summarize(_tail(session, job_id, level, frontier, frontier_after, cost), width)
    parts = [first.take(slice(0, 1)), written, tail.after(since), last.take(slice(-1, None))]
    candidates = Points.concat(parts)
    _, unique = np.unique(candidates.ordinal, return_index=True)
    thinned = reduce_to(candidates.take(unique), max_points)
    return Curve(thinned.to_dicts(), True, total, cost)


def truncate_points_after(session: Session, job_id: str, iteration: int) -> int:
    """Delete every recorded point with iteration > `iteration`; returns the points kept.

    For a job resuming from a checkpoint at `iteration`. The chunk straddling it is rewritten
    without its later points; at each summary level, the buckets that lost points are dropped
    (the row holding the first of them is rewritten with the complete buckets before it), so
    the partial bucket is summarized again from what remains, on read and by the next writer.
    """
    cost = ReadCost()
    straddling = _chunks(session, job_id, 0, cost, after=iteration, limit=1)
    if not straddling:
        last = _last_chunk(session, job_id, 0, cost)
        return 0 if last is None else int(last.ordinal[-1]) + 1
    kept_raw = straddling[0].iteration <= iteration
    n_kept = int(straddling[0].ordinal[0]) + int(kept_raw.sum())
    for level in range(N_LEVELS + 1):
        first = straddling[0] if level == 0 else None
        if level > 0:
            found = _chunks(session, job_id, level, cost, after=iteration, limit=1)
            first = found[0] if found else None
        if first is None:
            continue
        session.execute(
            delete(HistoryChunk).where(
                HistoryChunk.job_id == job_id,
                HistoryChunk.level == level,
                HistoryChunk.last_iteration > iteration,
            )
        )
        if level == 0:
            keep = kept_raw
        else:
            width = bucket_width(level)
            keep = (first.ordinal // width + 1) * width <= n_kept
        if keep.any():
            kept = first.take(keep)
            row = ChunkRow(level, int(kept.iteration[-1]), pack(kept, explicit_ordinals=level > 0))
            _insert(session, job_id, [row])
    return n_kept
