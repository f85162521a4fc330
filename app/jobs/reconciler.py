"""The lease reconciler: re-queues (or closes) running jobs whose worker stopped heartbeating.

In celery mode no API process can see the workers' processes (they may be on other machines),
so a job's heartbeat is the only evidence its worker is alive. Every API replica runs this small
thread; they may overlap harmlessly, since each change is a conditional update that only one
of them can make (and so only that one publishes the job again).
It never trains and holds no lock between rounds.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError

from app.db.engine import make_engine, make_session_factory, transaction
from app.errors import ServiceUnavailable
from app.jobs.sweeps import SweepAdvancer
from app.store import jobs

log = logging.getLogger(__name__)

# Look a few times per lease so a dead worker's job is closed soon after its lease runs out,
# but not more often than needed on a busy database.
CHECKS_PER_LEASE = 4
MIN_INTERVAL_SECONDS = 0.25
MAX_INTERVAL_SECONDS = 30.0
# Far longer than an API process takes from committing a job to publishing it.
DISPATCH_GRACE_SECONDS = 30.0
# A job published this many leases ago and still queued is published again: the broker may
# have lost its message (Redis restarted without persistence, failed over, was flushed). A
# job only waiting behind others gets one harmless duplicate per period (only one claim wins).
REPUBLISH_AFTER_LEASES = 5


class LeaseReconciler:
    """Re-queues jobs whose lease ran out and hands over queued jobs that were never dispatched,
    or whose message the broker seems to have lost.

    A job row is committed before its id is published; an API process that dies in between
    leaves a queued job no worker will hear of. `redispatch` publishes such a job again once
    it is older than DISPATCH_GRACE_SECONDS (a second delivery of a job that did arrive is
    harmless: only one claim can succeed).
    """

    def __init__(
        self,
        database_url: str,
        lease_seconds: float,
        redispatch: Callable[[str], None],
        max_attempts: int = 1,
        sweeps: SweepAdvancer | None = None,
    ) -> None:
        self._redispatch = redispatch
        self._max_attempts = max_attempts
        self._sweeps = sweeps
        self._engine = make_engine(database_url)
        self._factory = make_session_factory(self._engine)
        self._lease = timedelta(seconds=lease_seconds)
        self._republish_after = self._lease * REPUBLISH_AFTER_LEASES
        self.interval = min(
            max(lease_seconds / CHECKS_PER_LEASE, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def reconcile_once(self) -> jobs.Reconciled:
        with transaction(self._factory) as session:
            outcome = jobs.reconcile_abandoned(
                session, lease=self._lease, max_attempts=self._max_attempts
            )
            stranded = jobs.undispatched_job_ids(
                session, older_than=timedelta(seconds=DISPATCH_GRACE_SECONDS)
            )
            lost = jobs.lost_dispatch_job_ids(session, older_than=self._republish_after)
        if outcome.closed:
            log.warning("closed job(s) whose worker lease ran out: %s", outcome.closed)
        # A job queued again is published again at once: Redis would redeliver its old message
        # only after the visibility timeout, and that delivery found the job still running.
        for job_id in outcome.requeued:
            self._dispatch(job_id, "queued again after its worker's lease ran out")
        for job_id in stranded:
            if job_id not in outcome.requeued:
                self._dispatch(job_id, "its API process had not handed it over")
        for job_id in lost:
            self._dispatch(job_id, "still queued long after it was published")
        if self._sweeps is not None:
            # Trials that ended without their worker's hook (cancelled, reconciled above).
            self._sweeps.advance_stalled(self._factory)
        return outcome

    def _dispatch(self, job_id: str, why: str) -> None:
        self._redispatch(job_id)
        with transaction(self._factory) as session:
            jobs.mark_dispatched(session, job_id)
        log.warning("dispatched job %s: %s", job_id, why)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.reconcile_once()
            except (SQLAlchemyError, ServiceUnavailable):
                # The database or the broker may be restarting; the next round tries again.
                log.exception("lease reconciliation failed; retrying in %.1f s", self.interval)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-reconciler", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._engine.dispose()
