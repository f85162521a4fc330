"""A running job's lease, renewed from a background thread of the worker.

Progress flushes renew it too, but they follow the recorded iterations: a job that records
rarely, or whose iterations are slow, would otherwise look abandoned to the reconcilers.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import transaction
from app.job_status import JobStatus
from app.store import jobs

log = logging.getLogger(__name__)

BEATS_PER_LEASE = 4
MAX_INTERVAL_SECONDS = 10.0


class Heartbeat:
    """While entered, renews the job's heartbeat a few times per lease and watches for a cancel."""

    def __init__(
        self, factory: sessionmaker[Session], job_id: str, worker_id: str, lease_seconds: float
    ) -> None:
        self._factory = factory
        self._job_id = job_id
        self._worker_id = worker_id
        self._interval = min(lease_seconds / BEATS_PER_LEASE, MAX_INTERVAL_SECONDS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)
        self.cancel_requested = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                with transaction(self._factory) as session:
                    status = jobs.renew_lease(session, self._job_id, self._worker_id)
            except SQLAlchemyError:
                log.exception("could not renew the lease of job %s; retrying", self._job_id)
                continue
            if status == JobStatus.CANCELLING:
                self.cancel_requested.set()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
