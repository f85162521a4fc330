"""Job checkpoints: the latest training state of a job, one row per job, overwritten.

The state lives in the database (not in files), so any worker on any machine can resume the job.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db.tables import JobCheckpoint, utcnow


@dataclass(frozen=True)
class Checkpoint:
    iteration: int
    state: bytes


def save_checkpoint(session: Session, job_id: str, iteration: int, state: bytes) -> None:
    # Delete-then-insert in one transaction: portable across SQLite and PostgreSQL, and the
    # caller's transaction already holds the job row, so no two writers race here.
    session.execute(delete(JobCheckpoint).where(JobCheckpoint.job_id == job_id))
    session.add(JobCheckpoint(job_id=job_id, iteration=iteration, state=state, saved_at=utcnow()))
    session.flush()


def load_checkpoint(session: Session, job_id: str) -> Checkpoint | None:
    row = session.execute(
        select(JobCheckpoint.iteration, JobCheckpoint.state).where(JobCheckpoint.job_id == job_id)
    ).first()
    return None if row is None else Checkpoint(int(row.iteration), bytes(row.state))


def delete_checkpoint(session: Session, job_id: str) -> None:
    session.execute(delete(JobCheckpoint).where(JobCheckpoint.job_id == job_id))
