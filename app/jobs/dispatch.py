"""Executors: how a queued job reaches a worker. The runner they call is the same."""

from __future__ import annotations

from typing import Any, Protocol

from app.errors import ServiceUnavailable
from app.jobs.local import LocalWorkerPool
from app.jobs.reconciler import LeaseReconciler
from app.jobs.sweeps import SweepAdvancer
from app.settings import Settings

# Publishing is quick or the broker is down: one quick retry rides out a reconnect, and a
# request never waits long for a 503.
PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5}
BROKER_RETRY_AFTER_SECONDS = 10
CELERY_EXTRA_HINT = (
    "DNN_EXECUTOR=celery needs the celery extra: pip install 'dnn-service[celery]' "
    "(from a checkout: pip install -e '.[celery]')"
)


class Executor(Protocol):
    """How a queued job reaches a worker: app.jobs.local.LocalWorkerPool or CeleryExecutor."""

    def start(self) -> None: ...

    def submit(self, job_id: str) -> None: ...

    def ready(self) -> bool: ...

    def stop(self) -> None: ...


class CeleryExecutor:
    """Job ids go to Celery workers over Redis; this process only publishes and reconciles.

    Readiness covers this replica's own duties (the reconciler), not the broker: with Redis
    down, reads and predictions still work and only submissions answer 503.
    """

    def __init__(self, settings: Settings) -> None:
        # Celery, kombu and redis come with the [celery] extra: the embedded default runs
        # without them, so they are imported only when this executor is chosen.
        try:
            from kombu.exceptions import OperationalError
            from redis.exceptions import RedisError

            from app.jobs.celery_app import TASK_NAME, make_celery
        except ModuleNotFoundError as exc:
            raise RuntimeError(CELERY_EXTRA_HINT) from exc
        self._task_name = TASK_NAME
        self._publish_errors: tuple[type[BaseException], ...] = (
            OperationalError,
            RedisError,
            OSError,
        )
        self._settings = settings
        self._celery: Any = make_celery(settings)
        self._reconciler = LeaseReconciler(
            settings.database_url,
            settings.job_lease_seconds,
            redispatch=self.submit,
            max_attempts=settings.max_attempts,
            sweeps=SweepAdvancer(settings, self.submit),
        )

    def start(self) -> None:
        self._reconciler.start()

    def submit(self, job_id: str) -> None:
        try:
            self._celery.send_task(
                self._task_name,
                args=[job_id],
                queue=self._settings.celery_queue,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
            )
        except self._publish_errors as exc:
            raise ServiceUnavailable(
                "the job queue is unreachable; nothing was started, retry later",
                retry_after=BROKER_RETRY_AFTER_SECONDS,
            ) from exc

    def ready(self) -> bool:
        return self._reconciler.alive()

    def stop(self) -> None:
        self._reconciler.stop()
        self._celery.close()


def make_executor(settings: Settings) -> Executor:
    if settings.executor == "celery":
        return CeleryExecutor(settings)
    return LocalWorkerPool(settings, settings.workers)
