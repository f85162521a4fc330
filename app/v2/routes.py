"""The Open Inference Protocol v2 over REST (KServe v2, as Triton and MLServer clients speak it).

A model name resolves to its latest version; its versions are the trained models of that name.
`NAME@alias` resolves to the version the alias names (see app/store/aliases.py).
Tensors travel as JSON or as binary data (the binary tensor data extension), which is what
tritonclient sends and asks for by default. Every answer under /v2 that is an error, from these
routes or from no route at all, carries the protocol's body {"error": "<message>"} (app/main.py
asks `is_protocol_path`).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import model_cache, serving
from app.api.deps import ExecutorDep, InferenceDep, ReadSessionDep, SettingsDep, TenantDep
from app.db.tables import Model
from app.model_cache import ModelRef
from app.schemas.common import MAX_INDEX
from app.serving import InferenceService
from app.store import models
from app.v2.codec import (
    FLOAT_DATATYPES,
    INPUT_NAME,
    PLATFORM,
    PROTOCOL_PREFIX,
    ProtocolError,
    encode_response,
    output_specs,
    parse_request,
)
from app.v2.schemas import InferenceRequest, ProtocolErrorBody

EXTENSIONS = ["binary_tensor_data", "model_configuration", "statistics"]
# The repository index and the statistics list at most this many model versions.
MAX_LISTED = 500
CONFIG_TYPES = {"FP32": "TYPE_FP32", "FP64": "TYPE_FP64", "INT64": "TYPE_INT64"}
CONFIG_TYPES["BYTES"] = "TYPE_STRING"

PROTOCOL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProtocolErrorBody} for code in (400, 401, 404, 409, 413, 415, 422)
}
router = APIRouter(
    prefix=PROTOCOL_PREFIX, tags=["inference protocol v2"], responses=PROTOCOL_ERRORS
)


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


@router.get("", summary="Server metadata")
def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": "dnn-service", "version": request.app.version, "extensions": EXTENSIONS}


@router.get(
    "/health/live", summary="200 while the server answers requests", response_class=Response
)
def live() -> Response:
    return Response(status_code=200)


@router.get(
    "/health/ready",
    summary="200 when the database and the workers are available",
    response_class=Response,
)
def ready(session: ReadSessionDep, executor: ExecutorDep) -> Response:
    try:
        session.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        raise ProtocolError("not ready: the database is unreachable") from exc
    if not executor.ready():
        raise ProtocolError("not ready: no training workers are available")
    return Response(status_code=200)


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
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep
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
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep, settings: SettingsDep
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
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep, inference: InferenceDep
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
    found = _versions(session, tenant, name)
    if not found:
        raise ProtocolError(f"model {name!r} does not exist", 404)
    return _stats(inference, found)


@router.get("/models/{name}/versions/{version}/stats", summary="Inference statistics of a version")
def version_stats(
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep, inference: InferenceDep
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


BINARY_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}
INFER_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": InferenceRequest.model_json_schema()},
            "application/octet-stream": {"schema": BINARY_SCHEMA},
        },
    }
}
INFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or a JSON header plus binary tensor data when outputs ask for it",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/octet-stream": {"schema": BINARY_SCHEMA},
        },
    }
}


async def _infer(
    request: Request, tenant: str, inference: InferenceService, ref: ModelRef
) -> Response:
    if request.headers.get("content-encoding", "identity").lower() != "identity":
        raise ProtocolError("compressed request bodies are not supported", 415)
    body = await request.body()
    parsed, X = parse_request(body, request.headers.get("inference-header-content-length"))
    result = await inference.predict(tenant, ref, X)
    network = result.model.network
    specs = output_specs(
        {
            "task": network.task,
            "dtype": network.dtype,
            "layer_dims": network.layer_dims,
            "classes": network.classes,
        }
    )
    content, header_length = encode_response(parsed, result, specs)
    if header_length is None:
        return Response(content, media_type="application/json")
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(header_length)},
    )


@router.post(
    "/models/{name}/infer",
    openapi_extra=INFER_OPENAPI,
    responses=INFER_RESPONSES,
    response_class=Response,
    summary="Infer with the latest version",
)
async def infer(
    name: str, request: Request, tenant: TenantDep, inference: InferenceDep
) -> Response:
    return await _infer(request, tenant, inference, model_ref(name, None))


@router.post(
    "/models/{name}/versions/{version}/infer",
    openapi_extra=INFER_OPENAPI,
    responses=INFER_RESPONSES,
    response_class=Response,
    summary="Infer with one version",
)
async def infer_version(
    name: str, version: str, request: Request, tenant: TenantDep, inference: InferenceDep
) -> Response:
    return await _infer(request, tenant, inference, model_ref(name, version))
