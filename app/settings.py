"""Typed service settings, read from the environment with the ``DNN_`` prefix."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the service can be configured with; one instance is injected everywhere."""

    model_config = SettingsConfigDict(env_prefix="DNN_", extra="ignore")

    database_url: str = "sqlite:///./dnn-service.db"
    executor: Literal["local", "celery"] = "local"
    broker_url: str = "redis://127.0.0.1:6379/0"
    # The Redis list Celery workers consume; separate deployments may share one Redis.
    celery_queue: str = Field(default="dnn-training", min_length=1, max_length=200)
    # Niceness added to local training processes, so the API stays responsive while they train.
    worker_nice: int = Field(default=10, ge=0, le=19)
    # One core is left to the API (its event loop and BLAS) when it shares the machine with the
    # training workers: with every core training, predict tail latency doubled (see
    # benchmarks/README-service.md). At least one worker, so a 1-core machine still trains.
    workers: int = Field(default_factory=lambda: max(1, (os.cpu_count() or 1) - 1), ge=0, le=256)
    # BLAS threads per local training worker. Unset: the cores left after one for the API,
    # shared among the workers (at least 1 each). On 2 cores, one worker with 2 BLAS threads
    # kept predict p99 at 2-2.5x idle while it trained, even at SCHED_IDLE.
    worker_threads: int | None = Field(default=None, ge=1, le=256)
    # API processes `serve` starts (uvicorn workers); each has its own model cache, and the
    # serve parent alone runs the training workers and the reconciler.
    api_workers: int = Field(default=1, ge=1, le=64)

    # A job whose worker has not written a heartbeat for this long is considered abandoned.
    job_lease_seconds: float = Field(default=60.0, gt=0)
    job_time_limit_seconds: float = Field(default=3600.0, gt=0)
    # A running job stores its training state this often (and when cancelled), so a worker's
    # death costs at most this much training.
    checkpoint_seconds: float = Field(default=30.0, gt=0)
    # Claims of one job: a job whose worker dies is queued again (and resumed from its last
    # checkpoint) until it has been claimed this many times, then fails.
    max_attempts: int = Field(default=3, ge=1, le=100)
    # How often a running job writes buffered history and checks for cancellation. Each flush
    # stores its points as one packed chunk row: at 0.25 s (the event streams' poll interval,
    # so no live view sees points later) a job recording 100 points/s writes 25-point chunks.
    progress_flush_seconds: float = Field(default=0.25, gt=0)
    # How often a live event stream (GET /jobs/{id}/events) looks for new points.
    events_poll_seconds: float = Field(default=0.25, gt=0, le=10)

    # Authentication: "keys" (every request needs an API key) or "none" (one open tenant).
    # Unset: "none" only on a loopback bind of a database where no key was ever created, else
    # "keys"; see app/auth.py decide_mode. Once keys are required they stay required.
    auth: Literal["keys", "none"] | None = None
    # Deprecated (use DNN_AUTH): true lets an unset DNN_AUTH open a non-loopback bind too.
    allow_open_network: bool | None = None
    # A bearer token that may read GET /metrics when keys are required (besides admin keys).
    metrics_token: str | None = Field(default=None, min_length=16, repr=False)
    max_active_jobs_per_tenant: int = Field(default=50, gt=0)
    max_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # A request body that sends no bytes for this long is answered 408 and its connection
    # closed: uvicorn itself never times out a body that stalls mid-way.
    body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_dataset_cells: int = Field(default=20_000_000, gt=0)
    # What an uploaded .npz may decompress to (X and y together), checked from the .npy headers
    # before anything is decompressed.
    max_dataset_bytes: int = Field(default=256 * 1024 * 1024, gt=0)
    # Distinct labels a classification dataset may have: each class is one output unit. Left
    # unset, it is 1000 or the layer-width limit if that is lower.
    max_classes: int = Field(default=1000, ge=2)
    max_layer_width: int = Field(default=4096, gt=0)
    max_hidden_layers: int = Field(default=32, gt=0)
    max_iterations: int = Field(default=1_000_000, gt=0)
    # The most trials one sweep (POST /sweeps) may plan, grid or random.
    max_sweep_trials: int = Field(default=256, gt=0)
    max_predict_rows: int = Field(default=100_000, gt=0)
    model_cache_size: int = Field(default=32, gt=0)
    # Distinct (model, version, route) series /metrics keeps per model before the rest share
    # model="other": a bound on the exposition's size whatever number of models exist.
    metrics_model_series: int = Field(default=500, ge=1, le=100_000)
    # JSON bodies at least this large (dataset uploads, big predicts) are parsed in a separate
    # process, so the event loop and its GIL keep answering while they are parsed.
    parse_offload_bytes: int = Field(default=1024 * 1024, gt=0)
    # Processes in that parsing pool; 0 parses every body in the API process.
    parse_workers: int = Field(default=1, ge=0, le=32)

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        # `DNN_METRICS_TOKEN=` (e.g. compose passing an unset variable through) means no token.
        return None if value == "" else value

    @model_validator(mode="after")
    def _classes_fit_a_layer(self) -> Settings:
        if "max_classes" not in self.model_fields_set:
            self.max_classes = min(self.max_classes, self.max_layer_width)
        if self.max_classes > self.max_layer_width:
            raise ValueError(
                f"DNN_MAX_CLASSES ({self.max_classes}) must not exceed "
                f"DNN_MAX_LAYER_WIDTH ({self.max_layer_width}): each class is one output unit"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    return Settings()
