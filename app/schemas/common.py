"""Shared I/O pieces: the error body every 4xx/5xx carries, finite floats, pagination."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
# Numbers in request bodies are JSON numbers, taken strictly: "1" and true are refused, not
# coerced to 1 (a float accepts an integer; an integer refuses 2.0).
StrictFiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class StrictModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


class Page(BaseModel):
    limit: int
    offset: int


# Bounds that keep every integer the API accepts inside a 32-bit database column.
MAX_INDEX = 2**31 - 1
# NumPy's limit on an array's dimensions: a shape with more cannot be read into an array.
MAX_ARRAY_DIMS = 64
# ASCII digits only ([0-9], not \d): no sign but a minus, no spaces, no leading zeros.
_PLAIN_DECIMAL = re.compile(r"0|-?[1-9][0-9]*")


def _plain_decimal(value: object) -> object:
    """Pydantic reads a query string as an int leniently: "2.0", "+2", " 2", "02" and "2_0"
    all passed as numbers, so a client's mistake (a float where a count belongs) went unseen."""
    if isinstance(value, str) and _PLAIN_DECIMAL.fullmatch(value) is None:
        raise PydanticCustomError(
            "int_parsing",
            "must be a plain decimal integer such as 50 (ASCII digits only: no sign but -, "
            "no spaces, leading zeros, decimal point or exponent)",
        )
    return value


# Every integer query parameter, after its Query(): `Annotated[int, Query(...), PLAIN_INT]`
# (placed before it, or nested in an Annotated of its own, the bounds leave OpenAPI's schema).
PLAIN_INT = BeforeValidator(_plain_decimal)
Limit = Annotated[int, Query(ge=1, le=500, description="items per page"), PLAIN_INT]
Offset = Annotated[int, Query(ge=0, le=MAX_INDEX, description="items to skip"), PLAIN_INT]
Since = Annotated[
    int, Query(ge=0, le=MAX_INDEX, description="only points with a larger iteration"), PLAIN_INT
]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting the service's error body for the given statuses."""
    return {code: {"model": ErrorBody} for code in codes}
