from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StrictBool, StrictFloat, StrictInt, StrictStr

from app.schemas.common import Page, StrictFiniteFloat, StrictModel

# Strict members: in lax mode "yes" would become True and "1" would become 1.
Label = Annotated[
    StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictStr,
    Field(union_mode="left_to_right"),
]


class DatasetCreate(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    features: list[list[StrictFiniteFloat]] = Field(
        min_length=1, description="rows of (n_samples, n_features)"
    )
    labels: list[Label] = Field(min_length=1, description="one label per row")


class InlineDataset(StrictModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    features: list[list[StrictFiniteFloat]] = Field(min_length=1)
    labels: list[Label] = Field(min_length=1)


class DatasetOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    n_samples: int
    n_features: int
    input_shape: list[int]
    task: str
    classes: list[Any] | None
    content_sha256: str | None = Field(
        default=None, description="sha256 of the uploaded content and its parse options"
    )


class DatasetCreated(DatasetOut):
    deduplicated: bool = Field(
        description="true when the same content was already stored: this is that dataset (200)"
    )


class DatasetList(Page):
    items: list[DatasetOut]
