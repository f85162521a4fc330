from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt, model_validator

from app.schemas.common import MAX_INDEX, Page, StrictFiniteFloat, StrictModel


class ModelOut(BaseModel):
    id: str
    name: str
    version: int
    created_at: datetime
    job_id: str | None
    dataset_id: str | None
    architecture: dict[str, Any]
    metrics: dict[str, Any]
    sha256: str
    size_bytes: int
    parent_model_id: str | None = None


class ModelList(Page):
    items: list[ModelOut]


class PredictRequest(StrictModel):
    model_id: str | None = None
    model: str | None = Field(
        default=None, description="a model name; its latest version unless version is given"
    )
    # Strict, like the instances: "2" and true are refused rather than read as 2 and 1.
    version: StrictInt | None = Field(default=None, ge=1, le=MAX_INDEX)
    alias: str | None = Field(
        default=None, max_length=64, description="with model: the version this alias names"
    )
    instances: list[list[StrictFiniteFloat]] = Field(
        min_length=1, description="rows of (n, n_features): JSON numbers only"
    )

    @model_validator(mode="after")
    def _one_model(self) -> PredictRequest:
        if (self.model_id is None) == (self.model is None):
            raise ValueError("give exactly one of model_id and model")
        if self.version is not None and self.model is None:
            raise ValueError("version goes with model (a name), not with model_id")
        if self.alias is not None and (self.model is None or self.version is not None):
            raise ValueError("alias goes with model (a name), instead of version")
        return self


class PredictResponse(BaseModel):
    model_id: str
    predictions: list[Any]
    probabilities: list[list[float]] | None = None
