"""I/O of the model registry: a name's versions, its aliases, and the history of their moves."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt

from app.schemas.common import MAX_INDEX, StrictModel


class AliasTarget(StrictModel):
    # Strict: "1" is refused rather than read as 1.
    version: StrictInt = Field(
        ge=1, le=MAX_INDEX, description="the version the alias names from now on"
    )


class AliasOut(BaseModel):
    name: str
    alias: str
    version: int
    model_id: str
    previous_version: int | None = Field(description="the version it named before; null if new")


class VersionOut(BaseModel):
    id: str
    version: int
    created_at: datetime
    metrics: dict[str, Any]


class AliasMoveOut(BaseModel):
    alias: str
    version: int | None = Field(description="null when the alias was removed")
    previous_version: int | None = Field(description="null when the alias was created")
    at: datetime
    by: str = Field(description="the id of the API key that moved it, or the tenant in open mode")


class NameOut(BaseModel):
    name: str
    versions: list[VersionOut]
    aliases: dict[str, int] = Field(description='alias -> version, e.g. {"production": 2}')
    alias_history: list[AliasMoveOut] = Field(description="every move, oldest first")
