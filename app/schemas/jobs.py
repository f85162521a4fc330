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
    resume_from: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description=(
            "a model id: continue its training for n_iterations more; hyperparameters left out "
            "are the model's, the dataset defaults to the model's"
        ),
    )
    resume_from_job: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="a cancelled or failed job's id: continue it from its last checkpoint",
    )

    @model_validator(mode="after")
    def _one_dataset(self) -> TrainRequest:
        if self.resume_from is not None and self.resume_from_job is not None:
            raise ValueError("give at most one of resume_from and resume_from_job")
        if self.dataset_id is not None and self.dataset is not None:
            raise ValueError("give exactly one of dataset_id and dataset")
        resuming = self.resume_from is not None or self.resume_from_job is not None
        if not resuming and self.dataset_id is None and self.dataset is None:
            raise ValueError("give exactly one of dataset_id and dataset")
        return self

    def sent_hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters the client wrote (not the defaults filled in)."""
        hp = self.hyperparameters
        return hp.model_dump(include=set(hp.model_fields_set))


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
    attempts: int = Field(
        description="claims by a worker so far; a job whose worker died is retried"
    )
    start_iteration: int = Field(
        description="iterations done before this job (continuing a model or a stopped job)"
    )
    parent_model_id: str | None = None
    parent_job_id: str | None = None


class JobOut(JobSummary):
    hyperparameters: dict[str, Any]
    history: list[HistoryPointOut]


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
    points: list[HistoryPointOut]
