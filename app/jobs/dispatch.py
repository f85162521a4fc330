"""Executors: how a queued job reaches a worker. The runner they call is the same."""

from __future__ import annotations

from typing import Protocol

from app.jobs.local import LocalWorkerPool
from app.settings import Settings


class Executor(Protocol):
    def start(self) -> None: ...

    def submit(self, job_id: str) -> None: ...

    def ready(self) -> bool: ...

    def stop(self) -> None: ...


class LocalExecutor:
    """Worker processes on this machine, fed from the database."""

    def __init__(self, settings: Settings) -> None:
        self._pool = LocalWorkerPool(settings, settings.workers)

    def start(self) -> None:
        self._pool.start()

    def submit(self, job_id: str) -> None:
        self._pool.wake()

    def ready(self) -> bool:
        return self._pool.alive() > 0

    def stop(self) -> None:
        self._pool.stop()


def make_executor(settings: Settings) -> Executor:
    return LocalExecutor(settings)
