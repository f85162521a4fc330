"""Checkpoints while a job runs: its training state, stored every few seconds and when it stops.

The core calls :class:`Checkpointer` after every iteration with a way to capture the state; it
captures only every ``DNN_CHECKPOINT_SECONDS``, so the cost is one clock read per iteration plus
one copy of the state per period. The points recorded up to the checkpoint are flushed in the
same transaction, so a job resumed from it finds its curve complete up to that iteration.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from sqlalchemy.orm import Session

from app.store import checkpoints
from core import TrainState


class Flusher(Protocol):
    def flush(self, also: Callable[[Session], None] | None = None) -> bool: ...


class Checkpointer:
    """The core's ``on_checkpoint`` callback for one job attempt."""

    def __init__(
        self, flusher: Flusher, job_id: str, *, every_seconds: float, end_iteration: int
    ) -> None:
        self._flusher = flusher
        self._job_id = job_id
        self._every = every_seconds
        # The last iteration is never checkpointed: the model stored right after holds it.
        self._end = end_iteration
        self._last = time.monotonic()
        self.saved_iteration: int | None = None

    def __call__(self, iteration: int, capture: Callable[[], TrainState]) -> None:
        if iteration >= self._end:
            return
        now = time.monotonic()
        if now - self._last < self._every:
            return
        self._last = now
        self.save(capture())

    def save(self, state: TrainState) -> bool:
        """Store ``state`` (with the points so far) if the job is still ours; whether it was."""
        data = state.to_bytes()

        def write(session: Session) -> None:
            checkpoints.save_checkpoint(session, self._job_id, state.iteration, data)

        saved = self._flusher.flush(also=write)
        if saved:
            self.saved_iteration = state.iteration
        return saved
