"""A running job's progress: the core's on_progress callback, recording its points in batches.

Its answer at each recorded point stops training once the job is cancelled, out of time, or no
longer this worker's (its lease was lost).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.job_status import JobStatus
from app.jobs.heartbeat import Heartbeat
from app.store import history, jobs


class ProgressReporter:
    """The core's on_progress callback: buffers points, flushes them in short transactions.

    A flush also renews the job's heartbeat and reads its status; with what the heartbeat thread
    sees, a cancel request or an exhausted time limit stops training at the next recorded point.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        job_id: str,
        worker_id: str,
        heartbeat: Heartbeat,
        *,
        flush_seconds: float,
        time_limit_seconds: float,
    ) -> None:
        self._factory = factory
        self._heartbeat = heartbeat
        self._job_id = job_id
        self._worker_id = worker_id
        self._flush_seconds = flush_seconds
        self._deadline = time.monotonic() + time_limit_seconds
        self._pending: list[dict[str, Any]] = []
        self._curve = history.CurveWriter(job_id)
        self._last_flush = 0.0
        self.cancelled = False
        self.timed_out = False
        self.lost = False

    def __call__(self, iteration: int, metrics: dict[str, float]) -> bool:
        self._pending.append(dict(metrics))
        now = time.monotonic()
        if now - self._last_flush >= self._flush_seconds:
            self.flush()
            self._last_flush = now
        if now > self._deadline:
            self.timed_out = True
        self.cancelled = self.cancelled or self._heartbeat.cancel_requested.is_set()
        return self.cancelled or self.timed_out or self.lost

    def flush(self, also: Callable[[Session], None] | None = None) -> bool:
        """Write the buffered points, and ``also``, if the job is still this worker's.

        The job row is touched first: once the job was queued again or closed under this
        worker (its lease ran out), nothing it writes counts, so nothing is written.
        """
        if not self._pending and also is None:
            return not self.lost
        with transaction(self._factory) as session:
            if self._pending:
                last_iteration = int(self._pending[-1]["iteration"])
                status = jobs.record_progress(
                    session, self._job_id, self._worker_id, last_iteration
                )
            else:
                status = jobs.renew_lease(session, self._job_id, self._worker_id)
            if status is not None:
                if self._pending:
                    self._curve.append(session, self._pending)
                if also is not None:
                    also(session)
        self._pending = []
        self.cancelled = self.cancelled or status == JobStatus.CANCELLING
        self.lost = self.lost or status is None
        return status is not None
