"""POST /sweeps and its answers: a hyperparameter search whose trials are ordinary jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StrictInt, model_validator

from app.db.tables import SweepStatus
from app.names import ModelName
from app.schemas.common import Page, StrictFiniteFloat, StrictModel

SweepMetric = Literal["cost", "accuracy", "val_cost", "val_accuracy"]
# Costs are better lower, accuracies (R² for regression) higher.
MAXIMISED: frozenset[str] = frozenset({"accuracy", "val_accuracy"})
MAX_PARAM_VALUES = 10_000
RANGE_BOUND = 1e15
# A hyperparameter's value is a number, a string, a list of widths or a small object
# (early_stopping); none nests deeper. A value nested 500 deep passed validation and failed as
# a 500 when the request was serialized to be hashed.
MAX_VALUE_DEPTH = 8


def _shallow(value: Any) -> Any:
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_VALUE_DEPTH:
            raise ValueError(f"nests deeper than {MAX_VALUE_DEPTH} levels; no hyperparameter does")
        level = [
            child
            for item in level
            if isinstance(item, list | dict)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
    return value


# A hyperparameter's value as a sweep carries it before a trial validates it.
ParamValue = Annotated[Any, AfterValidator(_shallow)]


class Range(StrictModel):
    """A range to sample from: uniform, or log-uniform with `log`; integers when both bounds
    are integers (e.g. n_iterations), real numbers otherwise."""

    # No hyperparameter reaches 1e15; the bound keeps every draw a finite float.
    low: StrictInt | StrictFiniteFloat = Field(ge=-RANGE_BOUND, le=RANGE_BOUND)
    high: StrictInt | StrictFiniteFloat = Field(ge=-RANGE_BOUND, le=RANGE_BOUND)
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.high < self.low:
            raise ValueError("high must not be below low")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low above 0")
        return self


class RandomSearch(StrictModel):
    n_trials: int = Field(
        ge=1, le=1_000_000, strict=True, description="bounded by DNN_MAX_SWEEP_TRIALS"
    )
    space: dict[str, Range | list[ParamValue]] = Field(
        min_length=1, description="per hyperparameter: a range, or a list of choices"
    )
    seed: int = Field(default=0, ge=0, le=2**32 - 1, strict=True)


class SweepRequest(StrictModel):
    dataset_id: str = Field(min_length=1, max_length=64)
    name: ModelName | None = Field(
        default=None, description="model name of every trial; default: made from the dataset's"
    )
    hyperparameters: dict[str, ParamValue] = Field(
        default_factory=dict, description="the base every trial starts from (POST /train's)"
    )
    grid: dict[str, list[ParamValue]] | None = Field(
        default=None, min_length=1, description="every combination of these values; bounded"
    )
    random: RandomSearch | None = None
    metric: SweepMetric | None = Field(
        default=None,
        description="default: val_cost when the trials validate, else cost; accuracies maximise",
    )
    max_parallel: int = Field(
        default=2, ge=1, le=256, strict=True, description="unfinished trials at once"
    )
    promote: str | None = Field(
        default=None,
        max_length=64,
        description="an alias the best trial's model gets when the sweep succeeds",
    )

    @model_validator(mode="after")
    def _one_search(self) -> SweepRequest:
        if (self.grid is None) == (self.random is None):
            raise ValueError("give exactly one of grid and random")
        for values in (self.grid or {}).values():
            if not values or len(values) > MAX_PARAM_VALUES:
                raise ValueError(f"every grid parameter needs 1 to {MAX_PARAM_VALUES} values")
        return self


class SweepAccepted(BaseModel):
    id: str = Field(description="the sweep's id, as in GET /sweeps")
    sweep_id: str = Field(description="the same id (an alias kept for older clients)")
    status: SweepStatus
    location: str


class TrialOut(BaseModel):
    trial: int = Field(description="index in the sweep's plan")
    job_id: str | None = Field(description="null until the trial is started")
    status: str = Field(description="the job's status, or 'pending' before it exists")
    rank: int | None = Field(description="1 = best; null when the trial has no final metric")
    params: dict[str, Any] = Field(description="the searched hyperparameters' values")
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any] | None
    model_id: str | None
    started_at: datetime | None
    finished_at: datetime | None


class BestTrial(BaseModel):
    job_id: str
    model_id: str | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]


class SweepSummary(BaseModel):
    id: str
    name: str
    status: SweepStatus
    dataset_id: str
    metric: SweepMetric
    goal: Literal["min", "max"]
    max_parallel: int
    n_trials: int
    n_started: int
    promote: str | None = Field(description="the alias the best model gets at the end")
    created_at: datetime
    finished_at: datetime | None
    error: str | None


class SweepOut(SweepSummary):
    search: dict[str, Any]
    trials: list[TrialOut] = Field(description="leaderboard order: ranked first, best first")
    best: BestTrial | None


class SweepList(Page):
    items: list[SweepSummary]
