from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    Field,
    StrictInt,
    model_validator,
)

from app.job_status import JobStatus
from app.names import ModelName
from app.schemas.common import Page, StrictModel
from app.schemas.datasets import InlineDataset
from core import EarlyStopping, Network, TrainConfig
from core.choices import (
    OUTPUT_FOR_TASK,
    DType,
    HiddenActivation,
    Init,
    LrSchedule,
    OptimizerName,
    Task,
)


class EarlyStoppingIn(StrictModel):
    patience: int = Field(default=10, ge=1, le=100_000, strict=True)
    min_delta: float = Field(default=0.0, ge=0.0, allow_inf_nan=False, strict=True)
    restore_best: bool = Field(
        default=True, description="keep the weights of the best validation cost, not the last"
    )

    def to_core(self) -> EarlyStopping:
        return EarlyStopping(
            patience=self.patience, min_delta=self.min_delta, restore_best=self.restore_best
        )


# "auto": the task the dataset's labels make (see app.jobs.spec.decide_task).
RequestedTask = Literal["auto", Task]


class Hyperparameters(StrictModel):
    """The training contract: what POST /train accepts, what a job stores, what the worker runs.

    The worker re-validates the stored JSON into this model, so it trains exactly what was
    accepted. Limits that a deployment may change (layer count and width, iterations) are
    settings, checked at submission (app.jobs.submit), not fields here. Numbers are strict,
    as StrictFiniteFloat is: `"n_iterations": true` was a 1-iteration job.
    """

    hidden_layers: list[StrictInt] = Field(default=[16, 8], description="widths, input to output")
    activation: HiddenActivation = "relu"
    task: RequestedTask = "auto"
    learning_rate: float = Field(default=0.01, gt=0.0, le=100.0, allow_inf_nan=False, strict=True)
    n_iterations: int = Field(default=500, ge=1, strict=True)
    optimizer: OptimizerName = "adam"
    momentum: float = Field(
        default=0.9, ge=0.0, lt=1.0, strict=True, description="momentum and nesterov"
    )
    beta1: float = Field(
        default=0.9, ge=0.0, lt=1.0, strict=True, description="adam: first-moment decay"
    )
    beta2: float = Field(
        default=0.999, ge=0.0, lt=1.0, strict=True, description="adam: second-moment decay"
    )
    epsilon: float = Field(
        default=1e-8,
        gt=0.0,
        le=1.0,
        allow_inf_nan=False,
        strict=True,
        description="adam: denominator term",
    )
    batch_size: int | None = Field(
        default=None, ge=1, strict=True, description="null = full batch, the recipe"
    )
    shuffle: bool = Field(default=True, description="reshuffle the rows every epoch (mini-batches)")
    l2: float = Field(default=0.0, ge=0.0, le=1e3, allow_inf_nan=False, strict=True)
    lr_decay: LrSchedule = "none"
    decay_rate: float = Field(default=0.5, ge=0.0, le=1e3, allow_inf_nan=False, strict=True)
    decay_steps: int = Field(default=100, ge=1, strict=True)
    init: Init = "he"
    validation_fraction: float = Field(default=0.0, ge=0.0, le=0.5, strict=True)
    early_stopping: EarlyStoppingIn | None = None
    standardize: bool = True
    seed: int = Field(default=0, ge=0, le=2**32 - 1, strict=True)
    record_every: int = Field(default=1, ge=1, strict=True)
    dtype: DType = "float32"

    @model_validator(mode="after")
    def _early_stopping_needs_validation(self) -> Hyperparameters:
        if self.early_stopping is not None and self.validation_fraction == 0.0:
            raise ValueError("early_stopping needs a validation_fraction above 0")
        if any(width < 1 for width in self.hidden_layers):
            raise ValueError("every hidden layer needs at least one unit")
        return self

    def to_network(self, n_features: int, n_outputs: int) -> Network:
        """The untrained network: ``n_features`` inputs, the hidden layers, ``n_outputs`` outputs.

        Needs a decided task (not "auto"): it picks the output layer.
        """
        if self.task == "auto":
            raise ValueError("the task must be decided before the network is built")
        return Network(
            [n_features, *self.hidden_layers, n_outputs],
            hidden_activation=self.activation,
            output=OUTPUT_FOR_TASK[self.task],
            init=self.init,
            seed=self.seed,
            dtype=self.dtype,
        )

    def to_train_config(self) -> TrainConfig:
        return TrainConfig(
            learning_rate=self.learning_rate,
            n_iterations=self.n_iterations,
            optimizer=self.optimizer,
            batch_size=self.batch_size,
            l2=self.l2,
            validation_fraction=self.validation_fraction,
            early_stopping=self.early_stopping.to_core() if self.early_stopping else None,
            record_every=self.record_every,
            seed=self.seed,
            standardize=self.standardize,
            shuffle=self.shuffle,
            momentum=self.momentum,
            beta1=self.beta1,
            beta2=self.beta2,
            epsilon=self.epsilon,
            lr_decay=self.lr_decay,
            decay_rate=self.decay_rate,
            decay_steps=self.decay_steps,
        )


class TrainRequest(StrictModel):
    dataset_id: str | None = None
    dataset: InlineDataset | None = None
    name: ModelName | None = Field(
        default=None, description="the model's name; default: made from the dataset's name"
    )
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
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description='as stored: the decided task, not "auto"'
    )
    metrics: dict[str, Any] | None = Field(
        default=None,
        description="final metrics: the model's (with best_iteration, stopped_early) once it "
        "exists, else the last recorded point; null before the first point",
    )


# GET /jobs/{id} returns at most this many points unless ?max_points asks otherwise; no
# request returns more than MAX_CURVE_POINTS (page through /jobs/{id}/history for all of them).
DEFAULT_CURVE_POINTS = 2000
MAX_CURVE_POINTS = 100_000


class JobOut(JobSummary):
    history: list[HistoryPointOut] = Field(
        description="the learning curve, thinned to max_points real recorded points if longer"
    )
    thinned: bool = Field(description="true when history is a subset of the recorded points")
    points_total: int = Field(description="how many points the job has recorded")
    full_history: str = Field(description="pages through every recorded point (?since, ?limit)")


class JobAccepted(BaseModel):
    id: str = Field(description="the job's id, as in GET /jobs")
    job_id: str = Field(description="the same id (an alias kept for older clients)")
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
