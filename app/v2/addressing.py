"""How a protocol model name and version address a stored model version.

A model name resolves to its latest version; its versions are the trained models of that name.
`NAME@alias` resolves to the version the alias names (see app/store/aliases.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from app import model_cache, serving
from app.api.deps import ReadSessionDep
from app.db.tables import Model
from app.model_cache import ModelRef
from app.schemas.common import MAX_INDEX
from app.v2.codec import ProtocolError

# The protocol's version is a path segment, read by model_ref (a 400 in the protocol's shape
# otherwise); the pattern documents what it takes, so schema-valid versions are ones it reads.
VersionPath = Annotated[
    str,
    Path(
        description="a version number: 1, 2, ...",
        json_schema_extra={"pattern": "^[1-9][0-9]{0,8}$"},
    ),
]


def model_ref(name: str, version: str | None) -> ModelRef:
    if "@" in name:  # NAME@alias: the version the alias names
        if version is not None:
            raise ProtocolError("a model named NAME@alias takes no version; the alias names one")
        base, alias = name.rsplit("@", 1)
        return ModelRef(name=base, alias=alias)
    if version is None:
        return ModelRef(name=name)
    number = serving.parse_version(version, MAX_INDEX)
    if number is None:
        raise ProtocolError(f"model version must be a positive integer, not {version!r}")
    return ModelRef(name=name, version=number)


def find(session: ReadSessionDep, tenant: str, name: str, version: str | None) -> Model:
    return model_cache.find(session, tenant, model_ref(name, version))
