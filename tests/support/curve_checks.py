"""Checks of the learning-curve store, run on SQLite (tests/app) and PostgreSQL (tests/integration).

Each takes a session factory on a migrated, empty database. Long curves are written straight
through the store, in flush-sized batches, as a worker would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_session_factory, transaction
from app.db.migrate import alembic_config
from app.db.tables import Job, JobStatus
from app.settings import Settings
from app.store import history
from app.store.curve_codec import FIRST_BUCKET_POINTS

Factory = sessionmaker[Session]
Point = dict[str, Any]


def make_job(factory: Factory, n_iterations: int = 1_000_000) -> str:
    job_id = uuid.uuid4().hex
    with transaction(factory) as session:
        session.add(
            Job(
                id=job_id,
                tenant_id="public",
                dataset_id=None,
                status=JobStatus.SUCCEEDED.value,
                hyperparameters={},
                model_name="curve",
                n_iterations=n_iterations,
            )
        )
    return job_id


def curve(n: int, seed: int = 0, *, validation: bool = True, start: int = 1) -> list[Point]:
    """A noisy falling cost with rare spikes (a run that nearly diverges).

    Every value is a float32 (as the core computes them), so the store returns it exactly.
    """
    rng = np.random.default_rng(seed)
    iteration = np.arange(start, start + n)
    cost = (0.7 * np.exp(-iteration / 20_000) + rng.normal(0.05, 0.01, n)).astype(np.float32)
    cost[rng.integers(0, n, max(n // 20_000, 1))] += np.float32(50.0)
    accuracy = rng.uniform(0.5, 1.0, n).astype(np.float32)
    points: list[Point] = []
    for i in range(n):
        point: Point = {
            "iteration": int(iteration[i]),
            "cost": float(cost[i]),
            "accuracy": float(accuracy[i]),
        }
        if validation:
            point["val_cost"] = float(cost[i]) * 2
            point["val_accuracy"] = float(accuracy[i]) / 2
        points.append(point)
    return points


def write(
    factory: Factory,
    job_id: str,
    points: Sequence[Point],
    batches: Sequence[int] = (10,),
    *,
    writer: history.CurveWriter | None = None,
    per_transaction: int = 200,
) -> history.CurveWriter:
    """Append points in flushes of the given sizes (cycled), many flushes per transaction."""
    writer = writer or history.CurveWriter(job_id)
    position, flush = 0, 0
    while position < len(points):
        with transaction(factory) as session:
            for _ in range(per_transaction):
                size = batches[flush % len(batches)]
                writer.append(session, points[position : position + size])
                position += size
                flush += 1
                if position >= len(points):
                    break
    return writer


def assert_real_points(returned: list[Point], recorded: Sequence[Point]) -> None:
    by_iteration = {p["iteration"]: p for p in recorded}
    for point in returned:
        original = by_iteration[point["iteration"]]
        assert point == original, "a returned point is a recorded one, unchanged"


def check_paging_reads_every_point_once(factory: Factory) -> None:
    job_id = make_job(factory)
    points = curve(25_000, seed=1)
    # Flushes of odd sizes, some above the chunk size, so chunks straddle every page boundary.
    write(factory, job_id, points, batches=(1, 7, 300, 64, 999, 10))
    read: list[Point] = []
    since, pages = 0, 0
    with factory() as session:
        while True:
            page = history.read_page(session, job_id, since=since, limit=1000)
            assert len(page.points) <= 1000
            read += page.points
            pages += 1
            if page.next_since is None:
                break
            assert page.next_since == page.points[-1]["iteration"]
            since = page.next_since
        assert pages == 25
        assert [p["iteration"] for p in read] == list(range(1, 25_001))
        assert read == points  # float32 values come back exactly
        # A since inside a chunk starts right after it.
        middle = history.read_page(session, job_id, since=12_345, limit=3)
        assert [p["iteration"] for p in middle.points] == [12_346, 12_347, 12_348]
        assert history.read_page(session, job_id, since=25_000, limit=10).points == []


def check_thinned_reads_are_bounded_by_what_they_return(factory: Factory) -> None:
    costs = {}
    for n in (5_000, 200_000):
        job_id = make_job(factory)
        points = curve(n, seed=n)
        write(factory, job_id, points, batches=(10, 10, 10, 1000))
        spike = max(points, key=lambda p: p["cost"])
        with factory() as session:
            for max_points in (500, 2000):
                read = history.read_curve(session, job_id, max_points=max_points)
                returned = read.points
                assert read.thinned and read.total == n
                assert 4 <= len(returned) <= max_points
                assert returned[0]["iteration"] == 1 and returned[-1]["iteration"] == n
                iterations = [p["iteration"] for p in returned]
                assert iterations == sorted(set(iterations))
                assert spike in returned, "the highest cost (a divergence spike) is kept"
                assert_real_points(returned, points)
                # What the read fetched: the returned points' buckets (or, for a curve up to
                # 4 times max_points, the curve itself), plus a few rows per level at the
                # curve's end (each at most MAX_CHUNK_POINTS points).
                assert read.cost.bytes <= 128 * len(returned) + 40_000, (n, read.cost)
                assert read.cost.rows <= len(returned) // 2 + 40, (n, read.cost)
                costs[(n, max_points)] = read.cost
    # Forty times the points, (about) the same read.
    for max_points in (500, 2000):
        short, long = costs[(5_000, max_points)], costs[(200_000, max_points)]
        assert long.bytes <= 3 * short.bytes + 20_000, (short, long)


def check_every_view_is_made_of_real_points(factory: Factory) -> None:
    job_id, empty = make_job(factory), make_job(factory)
    points = curve(3_000, seed=3, validation=False)
    write(factory, job_id, points)
    with factory() as session:
        for max_points in (2, 3, 4, 5, 17, 100, 2999):
            read = history.read_curve(session, job_id, max_points=max_points)
            assert read.thinned and len(read.points) <= max_points
            assert read.points[0]["iteration"] == 1 and read.points[-1]["iteration"] == 3000
            assert_real_points(read.points, points)
            assert all("val_cost" not in p for p in read.points)
        full = history.read_curve(session, job_id, max_points=3000)
        assert not full.thinned and full.points == points
        after = history.read_curve(session, job_id, max_points=50, since=1000)
        assert after.points[0]["iteration"] == 1001 and after.points[-1]["iteration"] == 3000
        assert len(after.points) <= 50
        assert_real_points(after.points, points)
        nothing = history.read_curve(session, empty, max_points=10)
        assert (nothing.points, nothing.thinned, nothing.total) == ([], False, 0)


def views(factory: Factory, job_id: str) -> list[Any]:
    with factory() as session:
        every = history.read_page(session, job_id, limit=1_000_000).points
        thinned = [
            history.read_curve(session, job_id, max_points=m).points for m in (10, 300, 1000)
        ]
        return [every, *thinned]


def check_truncating_equals_never_having_written(factory: Factory) -> None:
    """The resume case: drop the points after a checkpoint's iteration, then record again."""
    points = curve(20_000, seed=4)
    cut = 13_333  # inside a chunk and inside a bucket at every level
    truncated, fresh, straight = make_job(factory), make_job(factory), make_job(factory)
    write(factory, truncated, points, batches=(10, 37, 500))
    with transaction(factory) as session:
        assert history.truncate_points_after(session, truncated, cut) == cut
    write(factory, fresh, points[:cut], batches=(3, 1000))
    assert views(factory, truncated) == views(factory, fresh)

    # Recording again after the cut, from a new writer (a resumed job's new worker).
    write(factory, truncated, points[cut:], batches=(10,))
    write(factory, straight, points, batches=(250,))
    assert views(factory, truncated) == views(factory, straight)

    with transaction(factory) as session:
        assert history.truncate_points_after(session, straight, 20_000) == 20_000  # no-op
        assert history.truncate_points_after(session, straight, FIRST_BUCKET_POINTS) == 64
        assert history.truncate_points_after(session, truncated, 0) == 0
    assert views(factory, truncated) == [[], [], [], []]
    assert [p["iteration"] for p in views(factory, straight)[0]] == list(range(1, 65))


def check_points_only_move_forward(factory: Factory) -> None:
    job_id = make_job(factory)
    writer = write(factory, job_id, curve(100))
    for bad in (curve(5, start=100), curve(5, start=50), [*curve(2, start=200)] * 2):
        with pytest.raises(ValueError, match="increasing iterations"), factory() as session:
            writer.append(session, bad)
    # A one-off append reads where the curve ends: same rule.
    with pytest.raises(ValueError, match="increasing iterations"), factory() as session:
        history.append_points(session, job_id, curve(1, start=7))
    with transaction(factory) as session:
        history.append_points(session, job_id, curve(1, start=101))
    with factory() as session:
        assert history.read_curve(session, job_id, max_points=2).total == 101


def check_storage_per_point(factory: Factory, database_bytes: Callable[[], int]) -> float:
    """Bytes of database per point for jobs recording 100 points/s: one chunk per flush of
    DNN_PROGRESS_FLUSH_SECONDS, several jobs side by side (interleaved keys, as in service)."""
    flush = round(100 * Settings().progress_flush_seconds)
    jobs = [make_job(factory) for _ in range(3)]
    before = database_bytes()
    n = 30_000
    for seed, job_id in enumerate(jobs):
        write(factory, job_id, curve(n, seed=seed), batches=(flush,), per_transaction=500)
    n *= len(jobs)
    per_point = (database_bytes() - before) / n
    assert per_point <= 40, f"{per_point:.1f} bytes per point"
    return per_point


def check_migration_converts_stored_points(database_url: str) -> None:
    """Revision 0005 turns per-point rows into chunks (and back on downgrade), losing nothing."""
    config = alembic_config(database_url)
    command.upgrade(config, "0003")
    engine = create_engine(database_url)
    curves = {"with-validation": curve(5_000, seed=7), "without": curve(300, validation=False)}
    try:
        with engine.begin() as connection:
            for job_id, points in curves.items():
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, tenant_id, status, hyperparameters, model_name,"
                        " n_iterations, last_iteration, created_at) VALUES (:id, 'public',"
                        " 'succeeded', '{}', 'm', 5000, 5000, CURRENT_TIMESTAMP)"
                    ),
                    {"id": job_id},
                )
                rows = [{"val_cost": None, "val_accuracy": None, **p} for p in points]
                connection.execute(
                    text(
                        "INSERT INTO history (job_id, iteration, cost, accuracy, val_cost,"
                        " val_accuracy) VALUES (:job_id, :iteration, :cost, :accuracy,"
                        " :val_cost, :val_accuracy)"
                    ),
                    [{"job_id": job_id, **row} for row in rows],
                )
        # To the head, not just 0005: the ORM below maps the latest schema (later revisions add
        # columns to jobs).
        command.upgrade(config, "head")
        factory = make_session_factory(engine)
        for job_id, points in curves.items():
            assert views(factory, job_id)[0] == points
            with factory() as session:
                thinned = history.read_curve(session, job_id, max_points=100)
            assert thinned.total == len(points) and thinned.points[-1] == points[-1]
            assert_real_points(thinned.points, points)
        # A converted curve is a normal one: it continues, and thins as if written live.
        more = curve(1_000, seed=8, start=5_001)
        write(factory, "with-validation", more, batches=(25,))
        written_live = make_job(factory)
        write(factory, written_live, curves["with-validation"] + more, batches=(25,))
        assert views(factory, "with-validation") == views(factory, written_live)

        command.downgrade(config, "0003")
        with engine.connect() as connection:
            count = connection.execute(
                text("SELECT count(*) FROM history WHERE job_id = 'with-validation'")
            ).scalar_one()
        assert count == 6_000
    finally:
        engine.dispose()
