"""Local training workers run every thread as background work, BLAS's own threads included."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from app.db.migrate import upgrade_to_head
from app.jobs.local import LocalWorkerPool, blas_threads
from app.settings import Settings

pytestmark = pytest.mark.skipif(
    not (hasattr(os, "SCHED_IDLE") and Path("/proc/self/task").is_dir()),
    reason="per-thread scheduling policies are Linux's",
)


def _threads(pid: int) -> list[int]:
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def test_every_worker_thread_is_idle_priority(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'priority.db'}"
    upgrade_to_head(url)
    before = set(mp.active_children())
    pool = LocalWorkerPool(Settings(database_url=url, workers=1, worker_nice=10), 1)
    pool.start()
    try:
        (worker,) = set(mp.active_children()) - before
        assert worker.pid is not None
        deadline = time.monotonic() + 30
        # The worker lowers itself once it has imported NumPy (and so started BLAS's threads).
        while os.sched_getscheduler(worker.pid) != os.SCHED_IDLE:
            assert time.monotonic() < deadline, "the worker never switched to SCHED_IDLE"
            time.sleep(0.05)
        threads = _threads(worker.pid)
        if (os.cpu_count() or 1) > 1:
            assert len(threads) > 1, "expected OpenBLAS's helper threads beside the main one"
        for tid in threads:
            assert os.sched_getscheduler(tid) == os.SCHED_IDLE, f"thread {tid}"
            assert os.getpriority(os.PRIO_PROCESS, tid) == 10, f"thread {tid}"
    finally:
        pool.stop()


def test_blas_threads_leave_the_api_a_core() -> None:
    cores = os.cpu_count() or 1
    assert blas_threads(Settings(workers=1)) == max(1, cores - 1)
    assert blas_threads(Settings(workers=cores)) == 1
    assert blas_threads(Settings(workers=1, worker_threads=3)) == 3
