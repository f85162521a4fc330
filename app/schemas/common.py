"""Shared I/O pieces: the error body every 4xx/5xx carries, finite floats, pagination."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

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
Limit = Annotated[int, Query(ge=1, le=500, description="items per page")]
Offset = Annotated[int, Query(ge=0, le=MAX_INDEX, description="items to skip")]
Since = Annotated[int, Query(ge=0, le=MAX_INDEX, description="only points with a larger iteration")]


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` documenting the service's error body for the given statuses."""
    return {code: {"model": ErrorBody} for code in codes}
