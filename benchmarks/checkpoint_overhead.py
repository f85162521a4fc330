"""What checkpointing costs a training run: 1 s checkpoints against none, on the recipe workload.

The checkpointed run uses the worker's own :class:`app.jobs.checkpoints.Checkpointer`, writing
each state to a real SQLite database through the store (one short transaction per checkpoint,
as in a job), so the measured cost is the whole path: the per-iteration clock read, the state
capture (copies of the parameters and the optimizer's arrays), safetensors serialization and the
database write. Runs are interleaved (none, 1 s, none, 1 s, ...) because the machine may be
shared; the summary reports the median and the best of each, in wall and CPU seconds. One BLAS
thread, as the service's workers train.

    flock /tmp/bench.lock .venv/bin/python benchmarks/checkpoint_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.engine import make_engine, make_session_factory, transaction  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402
from app.jobs.checkpoints import Checkpointer  # noqa: E402
from app.store import datasets, jobs  # noqa: E402
from app.store.checkpoints import save_checkpoint  # noqa: E402
from core import Network, TrainConfig, train  # noqa: E402

print = functools.partial(print, flush=True)  # progress shows as it comes

LAYER_DIMS = (10, 16, 32, 64, 128, 256, 128, 64, 32, 16, 8, 1)  # core_vs_peers.py's "recipe"
N_SAMPLES = 500


class DatabaseFlusher:
    """Writes what a checkpoint writes, in one transaction, as the worker's reporter does."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self.written = 0

    def flush(self, also: Callable[[Session], None] | None = None) -> bool:
        with transaction(self.factory) as session:
            if also is not None:
                also(session)
        self.written += 1
        return True


def make_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((N_SAMPLES, LAYER_DIMS[0]), dtype=np.float32)
    w = rng.standard_normal(LAYER_DIMS[0], dtype=np.float32)
    return X, (X @ w > 0).astype(np.float32)


def run(
    X: np.ndarray, y: np.ndarray, config: TrainConfig, checkpointer: Checkpointer | None
) -> tuple[float, float]:
    net = Network(LAYER_DIMS, seed=0)
    wall, cpu = time.perf_counter(), time.process_time()
    train(net, X, y, config, on_checkpoint=checkpointer)
    return time.perf_counter() - wall, time.process_time() - cpu


def cost_per_checkpoint(
    X: np.ndarray, y: np.ndarray, config: TrainConfig, factory: sessionmaker[Session], job_id: str
) -> tuple[float, float, float, int, float]:
    """CPU seconds of one capture, one serialization, one database write; the state's bytes;
    CPU seconds of one call of the checkpoint callback when no checkpoint is due."""
    captures: list[float] = []
    states = []

    def on_checkpoint(iteration: int, capture: Callable[[], object]) -> None:
        if iteration % 20 == 0:
            start = time.process_time()
            states.append(capture())
            captures.append(time.process_time() - start)

    train(
        Network(LAYER_DIMS, seed=0),
        X,
        y,
        replace(config, n_iterations=400),
        on_checkpoint=on_checkpoint,
    )
    start = time.process_time()
    blobs = [state.to_bytes() for state in states]  # type: ignore[attr-defined]
    serialize = (time.process_time() - start) / len(blobs)
    start = time.process_time()
    for index, blob in enumerate(blobs):
        with transaction(factory) as session:
            save_checkpoint(session, job_id, index, blob)
    write = (time.process_time() - start) / len(blobs)
    idle = Checkpointer(DatabaseFlusher(factory), job_id, every_seconds=1e9, end_iteration=10**9)
    calls = 200_000
    start = time.process_time()
    for iteration in range(calls):
        idle(iteration, lambda: None)  # type: ignore[arg-type,return-value]
    per_call = (time.process_time() - start) / calls
    return statistics.median(captures), serialize, write, len(blobs[0]), per_call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument(
        "--costs-only", action="store_true", help="only the per-checkpoint costs, no timed runs"
    )
    args = parser.parse_args()
    # One BLAS thread, as a training worker on a shared machine runs (app/jobs/local.py).
    threadpool_limits(limits=1, user_api="blas")
    X, y = make_data()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade_to_head(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with transaction(factory) as session:
            dataset = datasets.create_dataset(
                session, tenant_id="b", name="b", X=X, y=y, task="binary", classes=[0, 1]
            )
            job_id = jobs.create_job(
                session,
                tenant_id="b",
                dataset_id=dataset.id,
                hyperparameters={},
                model_name="b",
                n_iterations=args.iterations,
            ).id
        print(f"recipe workload {LAYER_DIMS}, {N_SAMPLES} samples, {args.iterations} iterations")
        for optimizer in ("gd", "adam"):
            lr = 0.01 if optimizer == "gd" else 0.001
            config = TrainConfig(
                lr, args.iterations, optimizer=optimizer, standardize=False, record_every=1000
            )
            capture, serialize, write, size, per_call = cost_per_checkpoint(
                X, y, config, factory, job_id
            )
            per_iteration = run(X, y, replace(config, n_iterations=200), None)[1] / 200
            one = capture + serialize + write
            print(
                f"\n{optimizer}: one checkpoint ({size / 1024:.0f} KiB) costs {1e3 * one:.2f} ms "
                f"CPU (capture {1e3 * capture:.2f}, serialize {1e3 * serialize:.2f}, database "
                f"write {1e3 * write:.2f}); the callback costs {1e9 * per_call:.0f} ns per "
                f"iteration when none is due, against {1e3 * per_iteration:.2f} ms per iteration"
            )
            print(
                f"{optimizer}: estimated overhead of 1 s checkpoints on a dedicated core: "
                f"{100 * (one / 1.0 + per_call / per_iteration):.3f}%"
            )
            if args.costs_only:
                continue
            timings: dict[str, list[tuple[float, float]]] = {"none": [], "1 s": []}
            written = 0
            run(X, y, config, None)  # warm-up
            for _ in range(args.rounds):
                timings["none"].append(run(X, y, config, None))
                flusher = DatabaseFlusher(factory)
                checkpointer = Checkpointer(
                    flusher, job_id, every_seconds=1.0, end_iteration=args.iterations
                )
                timings["1 s"].append(run(X, y, config, checkpointer))
                written += flusher.written
            print(f"\n{optimizer}: {written / args.rounds:.1f} checkpoints per checkpointed run")
            print("| checkpoints | wall median s | wall best s | CPU median s | CPU best s |")
            print("|---|---|---|---|---|")
            for name, values in timings.items():
                walls, cpus = [v[0] for v in values], [v[1] for v in values]
                print(
                    f"| {name} | {statistics.median(walls):.3f} | {min(walls):.3f} | "
                    f"{statistics.median(cpus):.3f} | {min(cpus):.3f} |"
                )
            for index, label in ((0, "wall"), (1, "CPU")):
                base = statistics.median(v[index] for v in timings["none"])
                checked = statistics.median(v[index] for v in timings["1 s"])
                best_base = min(v[index] for v in timings["none"])
                best_checked = min(v[index] for v in timings["1 s"])
                print(
                    f"{label} overhead: median {100 * (checked / base - 1):+.2f}%, "
                    f"best-of {100 * (best_checked / best_base - 1):+.2f}%"
                )
        engine.dispose()


if __name__ == "__main__":
    main()
