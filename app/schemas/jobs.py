from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    model_validator,
)

from app.db.tables import JobStatus
from app.schemas.common import Page, StrictModel
from app.schemas.datasets import InlineDataset


class EarlyStoppingIn(StrictModel):
    patience: int = Field(default=10, ge=1, le=100_000)
    min_delta: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)


class Hyperparameters(StrictModel):
    hidden_layers: list[int] = Field(default=[16, 8], max_length=64)
    activation: Literal["relu", "leaky_relu", "tanh", "sigmoid"] = "relu"
    task: Literal["auto", "binary", "multiclass", "regression"] = "auto"
    learning_rate: float = Field(default=0.01, gt=0.0, le=100.0, allow_inf_nan=False)
    n_iterations: int = Field(default=500, ge=1)
    optimizer: Literal["gd", "momentum", "nesterov", "adam"] = "adam"
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    batch_size: int | None = Field(default=None, ge=1, description="null = full batch, the recipe")
    l2: float = Field(default=0.0, ge=0.0, le=1e3, allow_inf_nan=False)
    lr_decay: Literal["none", "inverse_time", "step"] = "none"
    decay_rate: float = Field(default=0.5, ge=0.0, le=1e3, allow_inf_nan=False)
    decay_steps: int = Field(default=100, ge=1)
    init: Literal["he", "xavier", "normal"] = "he"
    validation_fraction: float = Field(default=0.0, ge=0.0, le=0.5)
    early_stopping: EarlyStoppingIn | None = None
    standardize: bool = True
    seed: int = Field(default=0, ge=0, le=2**32 - 1)
    record_every: int = Field(default=1, ge=1)
    dtype: Literal["float32", "float64"] = "float32"

    @model_validator(mode="after")
    def _early_stopping_needs_validation(self) -> Hyperparameters:
        if self.early_stopping is not None and self.validation_fraction == 0.0:
            raise ValueError("early_stopping needs a validation_fraction above 0")
        if any(width < 1 for width in self.hidden_layers):
            raise ValueError("every hidden layer needs at least one unit")
        return self


class TrainRequest(StrictModel):
    dataset_id: str | None = None
    dataset: InlineDataset | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200, description="model name")
    hyperparameters: Hyperparameters = Hyperparameters()

    @model_validator(mode="after")
    def _one_dataset(self) -> TrainRequest:
        if (self.dataset_id is None) == (self.dataset is None):
            raise ValueError("give exactly one of dataset_id and dataset")
        return self


class HistoryPointOut(BaseModel):
    """One point of a learning curve; val_cost and val_accuracy only when validating."""

    iteration: int
    cost: float
    accuracy: float
    val_cost: float | None = None
    val_accuracy: float | None = None


class JobSummary(BaseModel):
    id: str
    status: JobStatus
    progress: float = Field(ge=0.0, le=1.0)
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    dataset_id: str | None
    model_name: str
    model_id: str | None
    error: str | None


# GET /jobs/{id} returns at most this many points unless ?max_points asks otherwise; no
# request returns more than MAX_CURVE_POINTS (page through /jobs/{id}/history for all of them).
DEFAULT_CURVE_POINTS = 2000
MAX_CURVE_POINTS = 100_000


class JobOut(JobSummary):
    hyperparameters: dict[str, Any]
    history: list[HistoryPointOut] = Field(
        description="the learning curve, thinned to max_points real recorded points if longer"
    )
    thinned: bool = Field(description="true when history is a subset of the recorded points")
    points_total: int = Field(description="how many points the job has recorded")
    full_history: str = Field(description="pages through every recorded point (?since, ?limit)")


class JobAccepted(BaseModel):
    job_id: str
    status: JobStatus
    dataset_id: str
    location: str


class JobList(Page):
    items: list[JobSummary]


class HistoryOut(BaseModel):
    job_id: str
    status: JobStatus
    since: int
    limit: int
    points: list[HistoryPointOut]
    next_since: int | None = Field(
        description="more points are stored: pass this as since for the next page; null when "
        "this page reached the last stored point"
    )
    thinned: bool = Field(description="true only when max_points thinned this page")
