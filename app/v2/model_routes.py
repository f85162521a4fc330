"""Open Inference Protocol v2 model routes: metadata, configuration, readiness, statistics,
and the repository index of every model version the tenant can use.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body

from app import model_cache
from app.api.deps import InferenceDep, ReadSessionDep, SettingsDep, TenantDep
from app.db.tables import Model
from app.model_cache import ModelRef
from app.serving import InferenceService
from app.store import models
from app.v2.addressing import VersionPath, find, model_ref
from app.v2.codec import (
    FLOAT_DATATYPES,
    INPUT_NAME,
    PLATFORM,
    PROTOCOL_PREFIX,
    ProtocolError,
    output_specs,
)

# The repository index and the statistics list at most this many model versions.
MAX_LISTED = 500
CONFIG_TYPES = {"FP32": "TYPE_FP32", "FP64": "TYPE_FP64", "INT64": "TYPE_INT64"}
CONFIG_TYPES["BYTES"] = "TYPE_STRING"

# Routes match in the order they are declared: /models/stats comes before /models/{name}.
router = APIRouter(prefix=PROTOCOL_PREFIX)


def _versions(session: ReadSessionDep, tenant: str, name: str | None) -> list[Model]:
    found = models.list_models(session, tenant, name=name, limit=MAX_LISTED, offset=0)
    return sorted(found, key=lambda m: (m.name, m.version))


@router.get("/models/stats", summary="Inference statistics of every model version")
def all_stats(
    session: ReadSessionDep, tenant: TenantDep, inference: InferenceDep
) -> dict[str, Any]:
    return _stats(inference, _versions(session, tenant, None))


def _input_datatype(model: Model) -> str:
    return FLOAT_DATATYPES[np.dtype(model.architecture["dtype"])]


def _metadata(model: Model, session: ReadSessionDep, tenant: str) -> dict[str, Any]:
    arch = model.architecture
    return {
        "name": model.name,
        "versions": [str(m.version) for m in _versions(session, tenant, model.name)],
        "platform": PLATFORM,
        "inputs": [
            {
                "name": INPUT_NAME,
                "datatype": _input_datatype(model),
                "shape": [-1, *arch["input_shape"]],
            }
        ],
        "outputs": [{"name": name, **spec} for name, spec in output_specs(arch).items()],
    }


@router.get("/models/{name}", summary="Model metadata of the latest version")
def model_metadata(name: str, session: ReadSessionDep, tenant: TenantDep) -> dict[str, Any]:
    return _metadata(find(session, tenant, name, None), session, tenant)


@router.get("/models/{name}/versions/{version}", summary="Model metadata of one version")
def version_metadata(
    name: str, version: VersionPath, session: ReadSessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return _metadata(find(session, tenant, name, version), session, tenant)


def _config(model: Model, max_rows: int) -> dict[str, Any]:
    """The model's configuration as Triton's model_config JSON spells it."""
    arch = model.architecture
    outputs = output_specs(arch)
    return {
        "name": model.name,
        "platform": PLATFORM,
        "backend": "",
        "version_policy": {"all": {}},
        # 0: no implicit batch dimension; every tensor's dims start with the rows, -1.
        "max_batch_size": 0,
        "input": [
            {
                "name": INPUT_NAME,
                "data_type": CONFIG_TYPES[_input_datatype(model)],
                "format": "FORMAT_NONE",
                "dims": [-1, *arch["input_shape"]],
            }
        ],
        "output": [
            {"name": name, "data_type": CONFIG_TYPES[spec["datatype"]], "dims": spec["shape"]}
            for name, spec in outputs.items()
        ],
        "parameters": {
            "task": {"string_value": str(arch["task"])},
            "max_rows_per_request": {"string_value": str(max_rows)},
        },
    }


@router.get("/models/{name}/config", summary="Model configuration of the latest version")
def model_config(
    name: str, session: ReadSessionDep, tenant: TenantDep, settings: SettingsDep
) -> dict[str, Any]:
    return _config(find(session, tenant, name, None), settings.max_predict_rows)


@router.get("/models/{name}/versions/{version}/config", summary="Model configuration of a version")
def version_config(
    name: str,
    version: VersionPath,
    session: ReadSessionDep,
    tenant: TenantDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    return _config(find(session, tenant, name, version), settings.max_predict_rows)


def _ready(
    session: ReadSessionDep, tenant: str, inference: InferenceService, ref: ModelRef
) -> dict[str, Any]:
    # Ready means loadable: the weights are read and checked against their sha256 once here.
    model = model_cache.find(session, tenant, ref)
    inference.load(session, tenant, model, ref)
    return {"name": model.name, "version": str(model.version), "ready": True}


@router.get("/models/{name}/ready", summary="200 when the latest version can be loaded")
def model_ready(
    name: str, session: ReadSessionDep, tenant: TenantDep, inference: InferenceDep
) -> dict[str, Any]:
    return _ready(session, tenant, inference, model_ref(name, None))


@router.get("/models/{name}/versions/{version}/ready", summary="200 when the version can be loaded")
def version_ready(
    name: str,
    version: VersionPath,
    session: ReadSessionDep,
    tenant: TenantDep,
    inference: InferenceDep,
) -> dict[str, Any]:
    return _ready(session, tenant, inference, model_ref(name, version))


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


def _stats(inference: InferenceService, versions: list[Model]) -> dict[str, Any]:
    """Triton's statistics body: counts of this process since it started."""
    entries = []
    for model in versions:
        counts = inference.stats.of(model.id)
        success = _duration(counts.success, counts.success_ns) if counts else _duration(0, 0)
        fail = _duration(counts.failure, counts.failure_ns) if counts else _duration(0, 0)
        zero = _duration(0, 0)
        entries.append(
            {
                "name": model.name,
                "version": str(model.version),
                "last_inference": counts.last_ms if counts else 0,
                "inference_count": counts.rows if counts else 0,
                "execution_count": counts.success if counts else 0,
                "inference_stats": {
                    "success": success,
                    "fail": fail,
                    "queue": zero,
                    "compute_input": zero,
                    "compute_infer": success,
                    "compute_output": zero,
                    "cache_hit": zero,
                    "cache_miss": zero,
                },
                "batch_stats": [],
            }
        )
    return {"model_stats": entries}


@router.get("/models/{name}/stats", summary="Inference statistics of every version of a model")
def model_stats(
    name: str, session: ReadSessionDep, tenant: TenantDep, inference: InferenceDep
) -> dict[str, Any]:
    if "@" in name:  # NAME@alias: the one version the alias names
        return _stats(inference, [find(session, tenant, name, None)])
    found = _versions(session, tenant, name)
    if not found:
        raise ProtocolError(f"model {name!r} does not exist", 404)
    return _stats(inference, found)


@router.get("/models/{name}/versions/{version}/stats", summary="Inference statistics of a version")
def version_stats(
    name: str,
    version: VersionPath,
    session: ReadSessionDep,
    tenant: TenantDep,
    inference: InferenceDep,
) -> dict[str, Any]:
    return _stats(inference, [find(session, tenant, name, version)])


@router.post("/repository/index", summary="Every model version this tenant can use")
def repository_index(
    session: ReadSessionDep,
    tenant: TenantDep,
    _index_request: Annotated[
        dict[str, Any] | None, Body(description='optional {"ready": bool}; all are ready')
    ] = None,
) -> list[dict[str, Any]]:
    # Every stored version is loadable (its weights are verified when first used): all READY.
    return [
        {"name": m.name, "version": str(m.version), "state": "READY", "reason": ""}
        for m in _versions(session, tenant, None)
    ]
