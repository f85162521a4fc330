"""Learning curves as packed chunks and multi-resolution summaries: pure NumPy, no SQL.

A curve is stored at several levels. Level 0 holds every recorded point, in chunks of at most
``MAX_CHUNK_POINTS``. Level k >= 1 splits the points, by their position (ordinal) in the curve,
into buckets of ``bucket_width(k)`` points and keeps, per bucket, the real recorded points that
are its first, its minimum cost, its maximum cost and its last (its *representatives*). The
representatives of a bucket's sub-buckets contain the bucket's own, so any bucket can be
summarized from a finer level: that is how a partly filled bucket is read, and rebuilt.

A chunk's bytes: a header (flags, point count, first ordinal), the ordinals when they are not
consecutive (summaries), the iterations (two numbers when evenly spaced, else int32), then one
float32 array per metric that has any value (NaN = absent in that point).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import NDArray

METRICS = ("cost", "accuracy", "val_cost", "val_accuracy")
FIRST_BUCKET_POINTS = 64
LEVEL_FACTOR = 4
# Level 8 buckets hold 1,048,576 points: a 2,000-point view stays exact up to ~500M points.
N_LEVELS = 8
MAX_CHUNK_POINTS = 256
# At most this many buckets per summary row, so a read near a bucket edge stays small.
MAX_ROW_BUCKETS = MAX_CHUNK_POINTS // 4

_HEADER = struct.Struct("<BIi")
_ARITHMETIC = struct.Struct("<ii")
_EXPLICIT_ORDINALS = 1 << 4
_EVEN_ITERATIONS = 1 << 5
INT32_MAX = 2**31 - 1

Int64s = NDArray[np.int64]


def bucket_width(level: int) -> int:
    """Points per bucket at a summary level (1..N_LEVELS)."""
    return int(FIRST_BUCKET_POINTS * LEVEL_FACTOR ** (level - 1))


@dataclass(frozen=True)
class Points:
    """Recorded points, oldest first: ordinal (position in the curve), iteration, metrics."""

    ordinal: Int64s
    iteration: Int64s
    values: NDArray[np.float32]  # (n, len(METRICS)); NaN where a metric was not recorded

    def __len__(self) -> int:
        return len(self.ordinal)

    @property
    def cost(self) -> NDArray[np.float32]:
        return self.values[:, 0]

    def take(self, index: NDArray[Any] | slice) -> Points:
        return Points(self.ordinal[index], self.iteration[index], self.values[index])

    def after(self, iteration: int) -> Points:
        return self.take(self.iteration > iteration)

    @staticmethod
    def empty() -> Points:
        return Points(
            np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, len(METRICS)), np.float32)
        )

    @staticmethod
    def concat(parts: Iterable[Points]) -> Points:
        parts = [part for part in parts if len(part)]
        if not parts:
            return Points.empty()
        if len(parts) == 1:
            return parts[0]
        return Points(
            np.concatenate([p.ordinal for p in parts]),
            np.concatenate([p.iteration for p in parts]),
            np.concatenate([p.values for p in parts]),
        )

    @staticmethod
    def from_dicts(points: Sequence[Mapping[str, Any]], first_ordinal: int) -> Points:
        n = len(points)
        values = np.full((n, len(METRICS)), np.nan, dtype=np.float32)
        for column, key in enumerate(METRICS):
            values[:, column] = [np.nan if (v := point.get(key)) is None else v for point in points]
        iteration = np.fromiter((int(p["iteration"]) for p in points), np.int64, n)
        return Points(
            np.arange(first_ordinal, first_ordinal + n, dtype=np.int64), iteration, values
        )

    def to_dicts(self) -> list[dict[str, Any]]:
        """The API's point shape: metrics that were not recorded are left out."""
        columns = [self.values[:, c].tolist() for c in range(len(METRICS))]
        out = []
        for i, iteration in enumerate(self.iteration.tolist()):
            point: dict[str, Any] = {"iteration": iteration}
            for key, column in zip(METRICS, columns, strict=True):
                value = column[i]
                if value == value:  # not NaN
                    point[key] = value
            out.append(point)
        return out


def pack(points: Points, *, explicit_ordinals: bool) -> bytes:
    n = len(points)
    if n == 0:
        raise ValueError("a chunk holds at least one point")
    present = [c for c in range(len(METRICS)) if not np.isnan(points.values[:, c]).all()]
    flags = sum(1 << c for c in present)
    parts: list[bytes] = []
    if explicit_ordinals:
        flags |= _EXPLICIT_ORDINALS
        parts.append(points.ordinal.astype("<i4").tobytes())
    steps = np.diff(points.iteration)
    if n == 1 or (steps == steps[0]).all():
        flags |= _EVEN_ITERATIONS
        step = int(steps[0]) if n > 1 else 0
        parts.append(_ARITHMETIC.pack(int(points.iteration[0]), step))
    else:
        parts.append(points.iteration.astype("<i4").tobytes())
    parts.extend(points.values[:, c].astype("<f4").tobytes() for c in present)
    return _HEADER.pack(flags, n, int(points.ordinal[0])) + b"".join(parts)


def unpack(data: bytes) -> Points:
    flags, n, first_ordinal = _HEADER.unpack_from(data)
    offset = _HEADER.size
    if flags & _EXPLICIT_ORDINALS:
        ordinal = np.frombuffer(data, "<i4", n, offset).astype(np.int64)
        offset += 4 * n
    else:
        ordinal = np.arange(first_ordinal, first_ordinal + n, dtype=np.int64)
    if flags & _EVEN_ITERATIONS:
        first, step = _ARITHMETIC.unpack_from(data, offset)
        iteration = first + step * np.arange(n, dtype=np.int64)
        offset += _ARITHMETIC.size
    else:
        iteration = np.frombuffer(data, "<i4", n, offset).astype(np.int64)
        offset += 4 * n
    values = np.full((n, len(METRICS)), np.nan, dtype=np.float32)
    for c in range(len(METRICS)):
        if flags & (1 << c):
            values[:, c] = np.frombuffer(data, "<f4", n, offset)
            offset += 4 * n
    return Points(ordinal, iteration, values)


def summarize(points: Points, width: int) -> Points:
    """Per bucket of `width` ordinals, the points that are its first, min cost, max cost, last."""
    n = len(points)
    if n == 0:
        return points
    bucket = points.ordinal // width
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    ends = np.r_[starts[1:], n]
    keep = np.zeros(n, dtype=bool)
    keep[starts] = True
    keep[ends - 1] = True
    cost = points.cost
    lengths = ends - starts
    for reduce in (np.fmin, np.fmax):
        # fmin/fmax skip NaN; a bucket whose costs are all NaN keeps only its first and last.
        extreme = np.repeat(reduce.reduceat(cost, starts), lengths)
        hits = np.flatnonzero(cost == extreme)
        group = np.searchsorted(starts, hits, side="right") - 1
        _, first_hit = np.unique(group, return_index=True)
        keep[hits[first_hit]] = True
    return points.take(keep)


def bucket_stop(ordinal: int, width: int) -> int:
    """The ordinal just past the bucket holding `ordinal`."""
    return (ordinal // width + 1) * width


@dataclass(frozen=True)
class ChunkRow:
    """One row to insert: a level, the last iteration it holds (its key), its packed points."""

    level: int
    last_iteration: int
    data: bytes


def chunk_rows(level: int, points: Points) -> list[ChunkRow]:
    """Rows for points of one level; summary rows split only between buckets."""
    if not len(points):
        return []
    if level == 0:
        bounds = [*range(0, len(points), MAX_CHUNK_POINTS), len(points)]
    else:
        bucket = points.ordinal // bucket_width(level)
        firsts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
        bounds = [*(int(b) for b in firsts[::MAX_ROW_BUCKETS]), len(points)]
    rows = []
    for start, stop in pairwise(bounds):
        part = points.take(slice(start, stop))
        data = pack(part, explicit_ordinals=level > 0)
        rows.append(ChunkRow(level, int(part.iteration[-1]), data))
    return rows


class CurveBuilder:
    """The writer's state: the curve's length and, per level, its open (unfinished) bucket.

    `add` turns newly recorded points into the rows to insert: level-0 chunks, and per level a
    row of the buckets these points completed. Level k's open bucket holds the representatives
    of the level k-1 buckets completed inside it (for level 1, the raw points), so a level is
    only touched when the level below it completes a bucket. Rows are never rewritten.
    """

    def __init__(self, n: int, last_iteration: int, open_points: Sequence[Points]) -> None:
        if len(open_points) != N_LEVELS:
            raise ValueError("one open bucket per summary level")
        self.n = n
        self.last_iteration = last_iteration
        self._open = list(open_points)

    @classmethod
    def empty(cls) -> CurveBuilder:
        return cls(0, -1, [Points.empty()] * N_LEVELS)

    def add(self, recorded: Sequence[Mapping[str, Any]]) -> list[ChunkRow]:
        if not recorded:
            return []
        points = Points.from_dicts(recorded, self.n)
        iteration = points.iteration
        if iteration[0] <= self.last_iteration or (np.diff(iteration) <= 0).any():
            raise ValueError(
                "history points must have increasing iterations after "
                f"{self.last_iteration}; got {iteration[0]}..{iteration[-1]}"
            )
        if iteration[-1] > INT32_MAX:
            raise ValueError("iterations are stored as 32-bit integers")
        rows = chunk_rows(0, points)
        n = self.n + len(points)
        completed = points
        for level in range(1, N_LEVELS + 1):
            if not len(completed):
                break
            width = bucket_width(level)
            candidates = Points.concat([self._open[level - 1], completed])
            done = candidates.ordinal < (n // width) * width
            completed = summarize(candidates.take(done), width)
            rows.extend(chunk_rows(level, completed))
            self._open[level - 1] = summarize(candidates.take(~done), width)
        self.n = n
        self.last_iteration = int(iteration[-1])
        return rows


def reduce_to(points: Points, max_points: int) -> Points:
    """At most max_points (>= 2) of points, first and last kept, spikes kept while room allows.

    Re-buckets the points by rank into max_points // 4 buckets of their own, so the result is
    still made of first/min/max/last representatives.
    """
    n = len(points)
    if n <= max_points:
        return points
    if max_points >= 4:
        width = -(-n // (max_points // 4))
        ranked = Points(np.arange(n, dtype=np.int64), points.iteration, points.values)
        return points.take(summarize(ranked, width).ordinal)
    chosen = {0, n - 1}
    inner = points.cost[1:-1]
    if max_points == 3 and not np.isnan(inner).all():
        chosen.add(1 + int(np.nanargmax(inner)))
    return points.take(np.array(sorted(chosen), dtype=np.int64))
