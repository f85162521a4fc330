from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)

from app.schemas.common import Page, StrictFiniteFloat, StrictModel

# Strict members: in lax mode "yes" would become True and "1" would become 1.
Label = Annotated[
    StrictBool | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictStr,
    Field(union_mode="left_to_right"),
]

# A dataset's name is free text, shown in terminals, tables and the dashboard: no control
# characters (an ESC sequence in a name reached the CLI's terminal raw, a newline broke its
# tables), no bidirectional overrides or isolates, which show text in another order than it is
# stored ("Trojan Source"), and not blank.
UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_NAME_LENGTH = 200


def name_problem(name: str) -> str | None:
    """What makes `name` unfit to be a dataset's name, or None."""
    if not name.strip():
        return "is blank"
    unshowable = UNSHOWABLE.search(name)
    if unshowable is not None:
        return f"holds the control character U+{ord(unshowable.group()):04X}"
    return None


def _showable(name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        raise ValueError(f"the name {problem}")
    return name


DatasetName = Annotated[
    str, Field(min_length=1, max_length=MAX_NAME_LENGTH), AfterValidator(_showable)
]


class DatasetCreate(StrictModel):
    name: DatasetName
    features: list[list[StrictFiniteFloat]] = Field(
        min_length=1, description="rows of (n_samples, n_features)"
    )
    labels: list[Label] = Field(min_length=1, description="one label per row")


class InlineDataset(StrictModel):
    name: DatasetName | None = None
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
