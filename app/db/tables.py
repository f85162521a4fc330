"""SQLAlchemy 2.0 typed tables: datasets, jobs, their learning curves and checkpoints, models."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them without an offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        list[Any]: JSON,
        datetime: UTCDateTime,
    }


class Dataset(Base):
    __tablename__ = "datasets"
    # An upload asked to be stored once finds the tenant's earlier copy through this constraint.
    __table_args__ = (
        UniqueConstraint("tenant_id", "dedupe_key", name="uq_datasets_tenant_dedupe_key"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    n_samples: Mapped[int]
    n_features: Mapped[int]
    input_shape: Mapped[list[Any]]
    task: Mapped[str] = mapped_column(String(16))
    classes: Mapped[list[Any] | None]
    # sha256 of the uploaded content and its parse options (format, label column); None for
    # datasets stored before it was recorded.
    content_sha256: Mapped[str | None] = mapped_column(String(64))
    # content_sha256 when the upload asked to be stored once (the default), else None: NULLs
    # never collide, so `?dedupe=false` uploads are always stored anew.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    # The largest magnitude training casts to the network's dtype (features, numeric targets),
    # so POST /train can refuse a dtype that cannot hold it without reading `data`; None for
    # datasets stored before it was recorded.
    max_abs_value: Mapped[float | None]
    # An .npz archive of X and y written and read with allow_pickle=False.
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), index=True
    )
    status: Mapped[str] = mapped_column(String(16), index=True)
    hyperparameters: Mapped[dict[str, Any]]
    model_name: Mapped[str] = mapped_column(String(200))
    n_iterations: Mapped[int]
    last_iteration: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    model_id: Mapped[str | None] = mapped_column(String(32))
    # Set once the job's id reached the executor; a queued job without it was never handed over.
    dispatched_at: Mapped[datetime | None]
    # Claims so far: a job whose worker died is queued again until DNN_MAX_ATTEMPTS.
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    # Iterations the job's training state had done before it started (0 for a fresh run): a
    # job continuing a model or a stopped job runs iterations start_iteration+1..+n_iterations.
    start_iteration: Mapped[int] = mapped_column(default=0, server_default="0")
    parent_model_id: Mapped[str | None] = mapped_column(String(32))
    parent_job_id: Mapped[str | None] = mapped_column(String(32))


class JobCheckpoint(Base):
    """A job's latest training state (core.TrainState bytes), one row per job, overwritten."""

    __tablename__ = "job_checkpoints"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    iteration: Mapped[int]
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)
    state: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)


class HistoryChunk(Base):
    """Packed learning-curve points (see app/store/curve_codec.py), written once, never updated.

    Level 0 holds every recorded point; level k >= 1 the representatives of its buckets. Rows of
    a level never overlap, so their last iteration orders and finds them.
    """

    __tablename__ = "history_chunks"
    # SQLite: the rows live in the primary key's b-tree, with no second index beside them.
    __table_args__ = ({"sqlite_with_rowid": False},)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    last_iteration: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Model(Base):
    __tablename__ = "models"
    # Versions only go up and are never shared: minted from ModelVersionCounter, enforced here.
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", "version", name="uq_models_tenant_name_version"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    dataset_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    architecture: Mapped[dict[str, Any]]
    metrics: Mapped[dict[str, Any]]
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    # safetensors bytes; integrity is checked against sha256 on every load.
    weights: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    # The model this one continued training from (POST /train with resume_from), if any.
    parent_model_id: Mapped[str | None] = mapped_column(String(32))
    # core.TrainState bytes of the weights held, so any model can be continued.
    train_state: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)


class ModelVersionCounter(Base):
    """The last version minted for a (tenant, model name); it never goes down, so a deleted
    latest version's number is never minted again."""

    __tablename__ = "model_version_counters"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_version: Mapped[int]


class ModelAlias(Base):
    """A name's alias ("production") and the version it names; one row per (tenant, name, alias)."""

    __tablename__ = "model_aliases"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(64), primary_key=True)
    # RESTRICT: the database refuses to delete a version while an alias names it.
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    version: Mapped[int]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64))


class AliasMove(Base):
    """One move of an alias, kept forever: version None is a removal, previous None a creation."""

    __tablename__ = "alias_history"
    __table_args__ = (Index("ix_alias_history_tenant_name", "tenant_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(64))
    version: Mapped[int | None]
    previous_version: Mapped[int | None]
    at: Mapped[datetime] = mapped_column(default=utcnow)
    # The API key's id, or the tenant in open mode.
    moved_by: Mapped[str] = mapped_column(String(64))


class ApiKey(Base):
    """An API key of a tenant; only the sha256 of the key is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The first response to a request carrying an Idempotency-Key, replayed on retries."""

    __tablename__ = "idempotency_records"

    tenant_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_sha256: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SweepStatus(enum.StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Sweep(Base):
    """A hyperparameter search: its planned trials, created as jobs a few at a time.

    `next_trial` is the index of the next planned trial to become a job; it only moves by a
    conditional UPDATE under the sweep's row lock, so each trial becomes a job exactly once.
    """

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    dataset_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    metric: Mapped[str] = mapped_column(String(32))
    # "min" or "max": the direction in which `metric` is better.
    goal: Mapped[str] = mapped_column(String(8))
    max_parallel: Mapped[int]
    # The request's search ({"grid": ...} or {"random": ...}), for display.
    search: Mapped[dict[str, Any]]
    # Every trial's full hyperparameters (validated, task decided), in trial order.
    trials: Mapped[list[Any]]
    n_trials: Mapped[int]
    next_trial: Mapped[int] = mapped_column(default=0)
    # The alias the best model gets when the sweep succeeds (None: no promotion).
    promote: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class SweepTrial(Base):
    """A trial that became a job; the primary key admits each trial of a sweep once."""

    __tablename__ = "sweep_trials"

    sweep_id: Mapped[str] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"), primary_key=True
    )
    trial: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), unique=True, index=True
    )
