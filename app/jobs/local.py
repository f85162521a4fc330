"""The embedded executor: a pool of worker processes that take queued jobs from the database.

Jobs live in the database, so the pool needs no queue of its own: a wake-up token tells an idle
worker to look, and workers also look on a timer, so a job queued while no one listened (or
before a restart) still runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
import time
from datetime import timedelta
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from threadpoolctl import threadpool_limits

from app.db.engine import make_engine, make_session_factory, transaction
from app.jobs.reconciler import CHECKS_PER_LEASE, MAX_INTERVAL_SECONDS
from app.jobs.runner import make_worker_id, run_training_job, worker_id_for
from app.jobs.sweeps import STALLED_CHECK_SECONDS, SweepAdvancer
from app.settings import Settings
from app.store import jobs

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 1.0
MONITOR_SECONDS = 0.5
PR_SET_PDEATHSIG = 1
OUTAGE_FIRST_WAIT_SECONDS = 0.5
OUTAGE_MAX_WAIT_SECONDS = 30.0


def die_with_parent() -> None:
    """Ask Linux to kill this process if the server dies, so no orphan keeps training or
    holding memory (set in each spawned child: training workers, the body-parsing pool)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        # A parent that died while this child was still starting up sends no signal: leave now.
        parent = mp.parent_process()
        if parent is not None and os.getppid() != parent.pid:
            os._exit(1)


def blas_threads(settings: Settings) -> int:
    """BLAS threads for each local worker: ``DNN_WORKER_THREADS``, or the cores left after one
    for the API, shared among the workers, at least 1 (each BLAS spawning a thread per core
    would oversubscribe them)."""
    if settings.worker_threads is not None:
        return settings.worker_threads
    return max(1, ((os.cpu_count() or 1) - 1) // max(1, settings.workers))


def lower_priority(nice: int) -> None:
    """Make every thread of this process background work: the API process on the same
    machine answers first.

    On Linux, SCHED_IDLE also lets a waking API thread preempt training at once instead of
    waiting out the scheduler's time slice, which is what shows in the API's tail latency.
    Nice values and scheduling policies are per thread there, and BLAS started its threads
    when NumPy was imported: lowering only the calling thread left OpenBLAS's helper thread at
    normal priority, spinning beside the API (predict p99 while one job trained: 9x idle,
    against 2.4x for two single-threaded workers). Threads started later inherit the setting.
    """
    if nice == 0:
        return
    target = min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice)
    tasks = Path("/proc/self/task")
    own = threading.get_native_id()
    others = [int(tid) for tid in os.listdir(tasks) if int(tid) != own] if tasks.is_dir() else []
    # The calling thread last (0 names it), so that once it is lowered all of them are.
    for tid in [*others, 0]:
        with contextlib.suppress(ProcessLookupError):  # a thread that has just exited
            os.setpriority(os.PRIO_PROCESS, tid, target)
            if hasattr(os, "SCHED_IDLE"):
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))


def worker_main(settings_data: dict[str, Any], wake: Any, stop: EventType) -> None:
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = Settings.model_validate(settings_data)
    lower_priority(settings.worker_nice)
    threadpool_limits(limits=blas_threads(settings), user_api="blas")
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    worker_id = make_worker_id()
    # Workers take queued jobs from the database themselves: a new trial needs no hand-over.
    sweeps = SweepAdvancer(settings, dispatch=None)
    outage = _Outage()
    # The job whose run ended in a database error, which this worker may still hold: the pool
    # never takes a live worker's job, so the worker hands it back itself before the next.
    held: str | None = None
    while not stop.is_set():
        try:
            if held is not None:
                _release(factory, worker_id, settings)
                held = None
            with transaction(factory) as session:
                job_id = jobs.next_queued_job_id(session)
            if job_id is not None:
                # The claim is its first write: a database that refuses it (full disk,
                # read-only, unreachable) raises here, and the job is still queued.
                held = job_id
                run_training_job(factory, job_id, worker_id, settings)
                held = None
        except SQLAlchemyError:
            # Dying here only had the pool start another worker that died the same way, in a
            # tight loop until the database took writes again.
            stop.wait(outage.failed())
            continue
        outage.ended()
        if job_id is None:
            with contextlib.suppress(queue.Empty):
                wake.get(timeout=IDLE_POLL_SECONDS)
            continue
        sweeps.after_trial(factory, job_id)
    engine.dispose()


def _release(factory: sessionmaker[Session], worker_id: str, settings: Settings) -> None:
    """What the pool does for a dead worker: its job, if it holds one, is queued again (or
    closed on its last attempt). Nothing when the error came before the claim was committed."""
    with transaction(factory) as session:
        jobs.reconcile_abandoned(
            session, lease=None, max_attempts=settings.max_attempts, dead_workers=[worker_id]
        )


class _Outage:
    """A worker's view of a database outage: logged once when it starts and once when it ends,
    with a wait between tries that grows to a cap (many workers, one struggling database)."""

    def __init__(self) -> None:
        self._failures = 0

    def failed(self) -> float:
        """Record a failed try; returns the seconds to wait before the next."""
        if self._failures == 0:
            log.exception(
                "worker pid %d cannot read or write the database; trying again, less often, until it can",
                os.getpid(),
            )
        self._failures += 1
        return min(
            OUTAGE_MAX_WAIT_SECONDS, OUTAGE_FIRST_WAIT_SECONDS * 2.0 ** min(self._failures - 1, 16)
        )

    def ended(self) -> None:
        if self._failures:
            log.warning(
                "worker pid %d: the database answers again after %d failed tries",
                os.getpid(),
                self._failures,
            )
        self._failures = 0


def _pid_alive(worker_id: str) -> bool:
    """Whether the worker's process still runs; a zombie (killed, not yet reaped) does not."""
    pid = worker_id.rsplit(":", 1)[1]
    if not (pid.isascii() and pid.isdigit()):  # "²".isdigit() is true; int() refuses it
        return False
    if not Path("/proc").is_dir():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


class LocalWorkerPool:
    """The local executor: N worker processes (spawned, never forked from the server) plus a
    monitor thread."""

    def __init__(self, settings: Settings, n_workers: int) -> None:
        self._settings = settings
        self._n_workers = n_workers
        self._ctx = mp.get_context("spawn")
        self._wake = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self._processes: list[BaseProcess] = []
        self._monitor: threading.Thread | None = None
        self._monitor_stop = threading.Event()
        self._factory = make_session_factory(make_engine(settings.database_url))
        self._sweeps = SweepAdvancer(
            settings, self.submit, min_interval_seconds=STALLED_CHECK_SECONDS
        )

    def start(self) -> None:
        self._reconcile_previous_run()
        self._processes = [self._spawn() for _ in range(self._n_workers)]
        self._monitor = threading.Thread(target=self._watch, name="worker-monitor", daemon=True)
        self._monitor.start()

    def _spawn(self) -> BaseProcess:
        process = self._ctx.Process(
            target=worker_main,
            args=(self._settings.model_dump(), self._wake, self._stop),
            name="dnn-service-worker",
            daemon=True,
        )
        process.start()
        return process

    def submit(self, job_id: str) -> None:
        """The job is already a queued row: wake one idle worker to look for it."""
        wake = getattr(self, "_wake", None)  # gone once stopped: nothing would listen
        if wake is not None:
            wake.put_nowait(None)

    def ready(self) -> bool:
        return any(process.is_alive() for process in self._processes)

    def _watch(self) -> None:
        """Replace a worker that died and re-queue (or close) the job it was running, at once;
        re-queue (or close) any running job whose lease ran out."""
        # A job left running by a previous run's worker whose pid now belongs to another
        # process, or whose host name changed (a container created anew), is not known dead at
        # start; its lease running out is the only sign, as in celery mode.
        lease_every = min(self._settings.job_lease_seconds / CHECKS_PER_LEASE, MAX_INTERVAL_SECONDS)
        next_lease_check = time.monotonic() + lease_every
        while not self._monitor_stop.wait(MONITOR_SECONDS):
            # This embedded executor's reconciler duty: sweeps whose trials ended unseen.
            self._sweeps.advance_stalled(self._factory)
            if time.monotonic() >= next_lease_check:
                try:
                    self._reconcile_workers([], "its worker's lease ran out")
                except SQLAlchemyError:
                    # A busy or restarting database: the next check tries again.
                    log.exception("lease reconciliation failed")
                next_lease_check = time.monotonic() + lease_every
            for index, process in enumerate(self._processes):
                if process.is_alive() or self._stop.is_set():
                    continue
                log.warning(
                    "worker pid %s exited with %s; replacing it", process.pid, process.exitcode
                )
                self._processes[index] = self._spawn()
                self._wake.put_nowait(None)
                try:
                    self._reconcile([process])
                except SQLAlchemyError:
                    # The database may be what killed the worker. Its job, if any, is re-queued
                    # when its lease runs out; this thread must live on to replace workers.
                    log.exception("could not re-queue the job of worker pid %s", process.pid)

    def _reconcile(self, dead: list[BaseProcess]) -> None:
        worker_ids = [worker_id_for(process.pid) for process in dead if process.pid is not None]
        self._reconcile_workers(worker_ids, "its worker died")

    def _reconcile_workers(self, worker_ids: list[str], why: str, shutdown: bool = False) -> None:
        lease = timedelta(seconds=self._settings.job_lease_seconds)
        alive = [worker_id_for(p.pid) for p in self._processes if p.pid and p.is_alive()]
        with transaction(self._factory) as session:
            outcome = jobs.reconcile_abandoned(
                session,
                lease=lease,
                max_attempts=self._settings.max_attempts,
                dead_workers=worker_ids,
                # This pool's own running workers are seen alive: never taken by their lease.
                alive_workers=alive,
                shutdown=shutdown,
            )
        if outcome.requeued:
            log.warning("queued again (%s), to resume from a checkpoint: %s", why, outcome.requeued)
        if outcome.closed:
            log.warning("closed (%s, no attempts left): %s", why, outcome.closed)

    def _reconcile_previous_run(self) -> None:
        """Re-queue jobs left running by workers of this host that no longer exist (a crash)."""
        host = worker_id_for(0).rsplit(":", 1)[0]
        with transaction(self._factory) as session:
            dead = [
                worker_id
                for worker_id in jobs.running_worker_ids(session)
                if worker_id.rsplit(":", 1)[0] == host and not _pid_alive(worker_id)
            ]
        self._reconcile_workers(dead, "interrupted by a previous shutdown")

    def stop(self, timeout: float = 5.0) -> None:
        self._monitor_stop.set()
        if self._monitor is not None:
            self._monitor.join(timeout)
        self._stop.set()
        for process in self._processes:
            if process.is_alive():
                os.kill(process.pid or 0, signal.SIGTERM)
        for process in self._processes:
            process.join(timeout)
        # Stopping is not the jobs' fault: their interrupted attempts do not count.
        stopped = [worker_id_for(p.pid) for p in self._processes if p.pid is not None]
        self._reconcile_workers(stopped, "the server stopped", shutdown=True)
        self._release_ipc()

    def _release_ipc(self) -> None:
        """Unlink the queue's and the event's named semaphores now, not at interpreter exit.

        uvicorn re-raises SIGTERM once it has shut down, and that signal's default action ends
        the process without running exit handlers, so semaphores left to them were reported by
        multiprocessing's resource tracker as leaked ("8 leaked semaphore objects"). Each is
        unlinked by a finalizer that runs when its last reference goes, so drop them all: the
        processes (their args hold both) and the pool's own.
        """
        for process in self._processes:
            if process.exitcode is not None:
                process.close()
        self._processes = []
        self._wake.close()
        self._wake.join_thread()
        del self._wake, self._stop
