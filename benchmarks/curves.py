"""Curves at scale (issue 12): what storing and reading a learning curve costs as the run grows.

Writes synthetic curves of 1k, 10k, 100k and 1M points straight through the store, in batches
of what a worker recording 100 points/s flushes each DNN_PROGRESS_FLUSH_SECONDS (25 points at
0.25 s; the code before this change flushed 10 every 0.1 s, one row per point), measures the SQLite
file growth per point, then starts the real `dnn-service serve` on that file and times the
three reads a dashboard makes: `GET /jobs/{id}`, `GET /jobs/{id}?max_points=500` and
`GET /jobs/{id}/curve.png`. A second part trains the recipe workload with `record_every` 1,
once with no callback and once through the worker's real progress reporter, for the write
path's share of training time.

    flock /tmp/bench.lock .venv/bin/python benchmarks/curves.py              # ~3-4 min
    .venv/bin/python benchmarks/curves.py --lengths 2000,200000 --repeat 5  # the issue's pair
    .venv/bin/python benchmarks/curves.py --postgres postgresql+psycopg://postgres@127.0.0.1/x

`--postgres URL` (an empty database) also measures `pg_total_relation_size` per point.
It runs against any revision of the store that has `history.append_points`, so the same
script measured the code before and after the change.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))

from live_server import LiveServer  # noqa: E402

from app.db.engine import make_engine, make_session_factory, transaction  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402
from app.db.tables import Job, JobStatus  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store import history  # noqa: E402

# What a worker recording 100 points/s writes per progress flush.
FLUSH_POINTS = round(100 * Settings().progress_flush_seconds)
APPENDS_PER_TRANSACTION = 500
TENANT = "public"
CURVE_TABLES = ("history", "history_chunks")


def synthetic_points(n: int, seed: int) -> list[dict[str, Any]]:
    """A noisy decreasing cost with a few spikes, accuracy, and validation metrics."""
    rng = np.random.default_rng(seed)
    it = np.arange(1, n + 1)
    cost = 0.7 * np.exp(-it / max(n / 5, 1)) + 0.02 + rng.normal(0, 0.005, n)
    cost[rng.integers(0, n, max(n // 50_000, 1))] += 5.0
    accuracy = np.clip(1 - cost, 0, 1)
    columns = [
        it.tolist(),
        cost.astype(np.float32).tolist(),
        accuracy.astype(np.float32).tolist(),
        (cost * 1.1).astype(np.float32).tolist(),
        (accuracy * 0.98).astype(np.float32).tolist(),
    ]
    keys = ("iteration", "cost", "accuracy", "val_cost", "val_accuracy")
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def new_job(factory: sessionmaker[Session], n: int, status: JobStatus, worker: str | None) -> str:
    job_id = uuid.uuid4().hex
    with transaction(factory) as session:
        session.add(
            Job(
                id=job_id,
                tenant_id=TENANT,
                dataset_id=None,
                status=status.value,
                hyperparameters={"record_every": 1},
                model_name=f"bench-{n}",
                n_iterations=n,
                last_iteration=n if status == JobStatus.SUCCEEDED else 0,
                worker_id=worker,
            )
        )
    return job_id


def write_curve(factory: sessionmaker[Session], job_id: str, points: list[dict[str, Any]]) -> None:
    writer_class = getattr(history, "CurveWriter", None)
    writer = writer_class(job_id) if writer_class else None
    for start in range(0, len(points), FLUSH_POINTS * APPENDS_PER_TRANSACTION):
        with transaction(factory) as session:
            stop = min(start + FLUSH_POINTS * APPENDS_PER_TRANSACTION, len(points))
            for batch in range(start, stop, FLUSH_POINTS):
                chunk = points[batch : batch + FLUSH_POINTS]
                if writer is not None:
                    writer.append(session, chunk)
                else:
                    history.append_points(session, job_id, chunk)


def sqlite_bytes(path: Path) -> int:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


def postgres_bytes(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        total = 0
        for table in CURVE_TABLES:
            exists = session.scalar(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table})
            if exists:
                total += int(session.scalar(text(f"SELECT pg_total_relation_size('{table}')")))
        return total


def reads(url: str, lengths: list[int], jobs: dict[int, str], repeat: int) -> list[list[str]]:
    """Fastest of `repeat` rounds per read; each round visits every length in turn, so load
    from whatever else shares the machine falls on all lengths alike."""
    best: dict[tuple[int, str], float] = {}
    bodies: dict[int, tuple[int, int]] = {}
    with httpx.Client(base_url=url, timeout=600) as client:
        requests = {
            "get": lambda j: client.get(f"/jobs/{j}"),
            "thin": lambda j: client.get(f"/jobs/{j}", params={"max_points": 500}),
            "png": lambda j: client.get(f"/jobs/{j}/curve.png"),
        }
        for n in lengths:  # warm-up, and the body size
            body = requests["get"](jobs[n])
            assert body.status_code == 200, body.text
            bodies[n] = (len(body.content), len(body.json()["history"]))
        for round_ in range(repeat):
            for n in lengths:
                if n >= 1_000_000 and round_ >= max(1, repeat // 2):
                    continue  # the old code takes seconds per read at 1M points
                for name, request in requests.items():
                    start = time.perf_counter()
                    request(jobs[n]).raise_for_status()
                    seconds = time.perf_counter() - start
                    best[(n, name)] = min(best.get((n, name), seconds), seconds)
    return [
        [
            f"{n:,}",
            f"{best[(n, 'get')] * 1000:,.0f} ms",
            f"{bodies[n][0] / 1024:,.0f} KiB ({bodies[n][1]:,} points)",
            f"{best[(n, 'thin')] * 1000:,.0f} ms",
            f"{best[(n, 'png')] * 1000:,.0f} ms",
        ]
        for n in lengths
    ]


def storage(args: argparse.Namespace, lengths: list[int], folder: Path) -> dict[int, str]:
    path = folder / "service.db"
    url = f"sqlite:///{path}"
    upgrade_to_head(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    jobs = {}
    print("| points | write (s) | SQLite bytes per point |")
    print("|---|---|---|")
    for n in lengths:
        points = synthetic_points(n, seed=n)
        before = sqlite_bytes(path)
        start = time.perf_counter()
        jobs[n] = new_job(factory, n, JobStatus.SUCCEEDED, None)
        write_curve(factory, jobs[n], points)
        seconds = time.perf_counter() - start
        grown = sqlite_bytes(path) - before
        print(f"| {n:,} | {seconds:.1f} | {grown / n:.1f} |", flush=True)
    engine.dispose()
    if args.postgres:
        upgrade_to_head(args.postgres)
        pg_engine = make_engine(args.postgres)
        pg_factory = make_session_factory(pg_engine)
        n = 100_000
        before = postgres_bytes(pg_factory)
        write_curve(
            pg_factory, new_job(pg_factory, n, JobStatus.SUCCEEDED, None), synthetic_points(n, 1)
        )
        with pg_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        grown = postgres_bytes(pg_factory) - before
        print(
            f"\nPostgreSQL, {n:,} points: {grown / n:.1f} bytes per point (pg_total_relation_size)"
        )
        pg_engine.dispose()
    return jobs


class Timed:
    """Wraps the progress callback, adding up the wall and CPU seconds spent inside it."""

    def __init__(self, callback: Callable[[int, dict[str, float]], bool]) -> None:
        self.callback = callback
        self.wall = 0.0
        self.cpu = 0.0

    def __call__(self, iteration: int, metrics: dict[str, float]) -> bool:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return self.callback(iteration, metrics)
        finally:
            self.wall += time.perf_counter() - wall
            self.cpu += time.thread_time() - cpu


def write_path(iterations: int, rounds: int, folder: Path) -> None:
    """Recipe workload, record_every 1: the share of training time spent in the worker's
    progress reporter (buffering every point, flushing to SQLite). Measured inside one run,
    as wall and CPU seconds in the callback, so a busy shared machine does not blur it."""
    from threadpoolctl import threadpool_limits

    from app.jobs.heartbeat import Heartbeat
    from app.jobs.progress import ProgressReporter
    from core import Network, TrainConfig, train

    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 10), dtype=np.float32)
    y = (X @ rng.standard_normal(10, dtype=np.float32) > 0).astype(np.float32)
    dims = (10, 16, 32, 64, 128, 256, 128, 64, 32, 16, 8, 1)
    config = TrainConfig(0.01, iterations, standardize=False, record_every=1)
    url = f"sqlite:///{folder / 'write.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    shares = []
    # One BLAS thread, as in benchmarks/core_vs_peers.py (the recipe's matrices are small).
    with threadpool_limits(1):
        for _ in range(rounds):
            worker = "bench:1"
            job_id = new_job(factory, iterations, JobStatus.RUNNING, worker)
            reporter = ProgressReporter(
                factory,
                job_id,
                worker,
                Heartbeat(factory, job_id, worker, 60.0),
                flush_seconds=Settings().progress_flush_seconds,
                time_limit_seconds=3600,
            )
            timed_reporter = Timed(reporter)
            wall, cpu = time.perf_counter(), time.thread_time()
            train(Network(dims, seed=0), X, y, config, on_progress=timed_reporter)
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
            shares.append(
                (
                    timed_reporter.wall / (wall - timed_reporter.wall),
                    timed_reporter.cpu / (cpu - timed_reporter.cpu),
                    iterations / wall,
                )
            )
    wall_share, cpu_share, speed = min(shares)
    print(
        f"\nrecipe workload, {iterations:,} iterations, record_every 1, flush every "
        f"{Settings().progress_flush_seconds:g} s (best of {rounds}, {speed:,.0f} it/s): the "
        f"progress reporter adds {100 * wall_share:.1f}% wall time, {100 * cpu_share:.1f}% CPU "
        "time to training"
    )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="1000,10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", help="an empty PostgreSQL database for its size per point")
    parser.add_argument("--train-iterations", type=int, default=3000)
    parser.add_argument("--train-rounds", type=int, default=3)
    parser.add_argument("--skip-reads", action="store_true")
    parser.add_argument("--skip-write-path", action="store_true")
    args = parser.parse_args(argv)
    lengths = [int(n) for n in args.lengths.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if not args.skip_reads:
            jobs = storage(args, lengths, folder)
            with LiveServer.in_folder(folder, workers=1) as server:
                print("\n| points | GET /jobs/{id} | body | ?max_points=500 | curve.png |")
                print("|---|---|---|---|---|")
                for row in reads(server.url, lengths, jobs, args.repeat):
                    print("| " + " | ".join(row) + " |", flush=True)
        if not args.skip_write_path:
            write_path(args.train_iterations, args.train_rounds, folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
