"""Open Inference Protocol v2 request and error bodies (JSON tensors)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProtocolErrorBody(BaseModel):
    error: str


class RequestInput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any


class RequestOutput(BaseModel):
    name: str
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    id: str | None = None
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1)
    outputs: list[RequestOutput] | None = None
