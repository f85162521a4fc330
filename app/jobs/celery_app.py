"""The Celery app (Redis broker) and its one task: a thin adapter around run_training_job.

The broker only carries job ids; the job itself is a database row. So Celery's delivery
guarantees matter only for *when* a job starts: the runner's conditional claim makes a second
delivery of the same id a no-op, and the lease reconciler closes a job whose worker vanished.
"""

from __future__ import annotations

import os

from celery import Celery
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.jobs.runner import make_worker_id, run_training_job
from app.jobs.sweeps import SweepAdvancer
from app.settings import Settings

TASK_NAME = "dnn_service.train"
# How long the runner's own deadline (checked at each progress flush) gets to end a job cleanly
# before Celery's hard limit kills the process.
HARD_LIMIT_GRACE_SECONDS = 60.0
# Redis must not hand a still-running job's message to another worker: keep its visibility
# timeout well above the hard limit.
VISIBILITY_MARGIN_SECONDS = 300.0
BROKER_CONNECT_TIMEOUT_SECONDS = 2.0
# A task whose database connection fails outside training (the claim, the sweep hook) is
# published again after 1, 2, 4 ... 60 s (about 3 minutes in all): otherwise its message is
# gone and the job waits for the reconciler's re-publish, REPUBLISH_AFTER_LEASES leases later.
DATABASE_RETRIES = 8
DATABASE_RETRY_MAX_SECONDS = 60


def task_time_limit(settings: Settings) -> float:
    return settings.job_time_limit_seconds + HARD_LIMIT_GRACE_SECONDS


def visibility_timeout(settings: Settings) -> float:
    return task_time_limit(settings) + VISIBILITY_MARGIN_SECONDS


def make_celery(settings: Settings) -> Celery:
    """The app both sides use: the API to send job ids, `dnn-service worker` to run them."""
    app = Celery("dnn_service", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Runs are recorded in the database; a result backend would only duplicate them.
        task_ignore_result=True,
        task_default_queue=settings.celery_queue,
        # Ack after the run, and put the message back if the worker process dies mid-run:
        # a redelivery is harmless because only one claim of a queued job can succeed.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # A training job is long and CPU-bound: a worker process holds one job, never a backlog.
        worker_prefetch_multiplier=1,
        task_time_limit=task_time_limit(settings),
        broker_transport_options={
            "visibility_timeout": visibility_timeout(settings),
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
        },
        broker_connection_timeout=BROKER_CONNECT_TIMEOUT_SECONDS,
        broker_connection_retry_on_startup=True,
        # A broker blip must not abort an hour of training: the job keeps running and records
        # its own outcome; the unacked message, if redelivered, finds the job already claimed.
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


class _WorkerDatabase:
    """One engine per worker *process*: a prefork child must not reuse its parent's sockets."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._pid: int | None = None
        self._factory: sessionmaker[Session] | None = None

    def factory(self) -> sessionmaker[Session]:
        if self._factory is None or self._pid != os.getpid():
            self._factory = make_session_factory(make_engine(self._database_url))
            self._pid = os.getpid()
        return self._factory


def make_worker_celery(settings: Settings) -> Celery:
    """The Celery app with the training task registered, for `dnn-service worker`."""
    app = make_celery(settings)
    database = _WorkerDatabase(settings.database_url)

    def publish(job_id: str) -> None:
        app.send_task(TASK_NAME, args=[job_id], queue=settings.celery_queue)

    # The worker that sees a trial finish publishes the sweep's next trial itself.
    sweeps = SweepAdvancer(settings, publish)

    # A retried delivery is harmless: the claim is conditional, and training itself ends an
    # attempt cut off from the database on its own (see run_training_job).
    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME,
        autoretry_for=(OperationalError, InterfaceError),
        max_retries=DATABASE_RETRIES,
        retry_backoff=True,
        retry_backoff_max=DATABASE_RETRY_MAX_SECONDS,
    )
    def train(job_id: str) -> str | None:
        status = run_training_job(database.factory(), job_id, make_worker_id(), settings)
        sweeps.after_trial(database.factory(), job_id)
        return None if status is None else str(status)

    return app
