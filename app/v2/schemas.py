"""Open Inference Protocol v2 request and error bodies (the JSON header of a request)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictInt


class ProtocolErrorBody(BaseModel):
    error: str


class RequestInput(BaseModel):
    name: str
    # Strict: a dimension of true or 1.0 was read as 1.
    shape: list[StrictInt]
    datatype: str
    parameters: dict[str, Any] | None = None
    # Absent when the tensor travels as binary data ("parameters": {"binary_data_size": ...}).
    data: Any = None


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None
