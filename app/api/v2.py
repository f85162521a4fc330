"""The Open Inference Protocol v2 over REST (KServe v2, as Triton and MLServer clients speak it).

A model name resolves to its latest version; its versions are the trained models of that name.
Tensors travel as JSON (row-major data, flat or nested). Every error on these routes carries the
protocol's body, {"error": "<message>"}, instead of the rest of the API's structured one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import serving
from app.api.deps import ExecutorDep, ModelCacheDep, ReadSessionDep, SettingsDep, TenantDep
from app.db.tables import Model
from app.errors import InvalidInput, ServiceError
from app.schemas.common import MAX_INDEX
from app.store import models
from app.validation import error_details, summarize

INPUT_NAME = "input"
PLATFORM = "dnn-service_numpy"
# Inputs may come in any of these; they are converted to the network's float dtype.
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    **{f"INT{bits}": np.dtype(f"int{bits}") for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": np.dtype(f"uint{bits}") for bits in (8, 16, 32, 64)},
}
FLOAT_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}


class ProtocolError(Exception):
    """An error answered with the protocol's {"error": message} body."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def protocol_error_response(exc: ProtocolError) -> JSONResponse:
    return JSONResponse({"error": exc.message}, status_code=exc.status_code)


class ProtocolRoute(APIRoute):
    """Turns domain and validation errors raised on these routes into the protocol's body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def protocol_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ProtocolError as exc:
                return protocol_error_response(exc)
            except RequestValidationError as exc:
                return protocol_error_response(
                    ProtocolError(summarize(error_details(exc.errors())))
                )
            except ServiceError as exc:
                # The protocol treats a malformed request as 400; 422 is this API's own habit.
                status = 400 if isinstance(exc, InvalidInput) else exc.status_code
                return protocol_error_response(ProtocolError(exc.message, status))

        return protocol_handler


class ProtocolErrorBody(BaseModel):
    error: str


PROTOCOL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProtocolErrorBody} for code in (400, 401, 404, 409, 413)
}
router = APIRouter(
    prefix="/v2",
    tags=["inference protocol v2"],
    route_class=ProtocolRoute,
    responses=PROTOCOL_ERRORS,
)


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


async def inference_request(request: Request) -> InferenceRequest:
    """The JSON body, whatever Content-Type the client sent (Triton's client sends none)."""
    body = await request.body()
    header_length = request.headers.get("inference-header-content-length")
    if header_length is not None and header_length.strip() != str(len(body)):
        raise ProtocolError("binary tensor data is not supported; send tensors as JSON data")
    try:
        return InferenceRequest.model_validate_json(body)
    except ValidationError as exc:
        raise ProtocolError(summarize(error_details(exc.errors()))) from exc


def label_datatype(classes: list[Any]) -> str:
    if any(isinstance(label, str) for label in classes):
        return "BYTES"
    if all(isinstance(label, int) and not isinstance(label, bool) for label in classes):
        return "INT64"
    return "FP64"


def output_specs(model: Model) -> dict[str, dict[str, Any]]:
    """The output tensors a model produces, by name, with their datatype and shape."""
    arch = model.architecture
    float_type = FLOAT_DATATYPES[np.dtype(arch["dtype"])]
    n_outputs = int(arch["layer_dims"][-1])
    if arch["task"] == "regression":
        shape = [-1] if n_outputs == 1 else [-1, n_outputs]
        return {"predictions": {"datatype": float_type, "shape": shape}}
    classes = list(arch["classes"])
    return {
        "predictions": {"datatype": label_datatype(classes), "shape": [-1]},
        "probabilities": {"datatype": float_type, "shape": [-1, len(classes)]},
    }


def lookup(session: ReadSessionDep, tenant: str, name: str, version: str | None) -> Model:
    number: int | None = None
    if version is not None:
        if not version.isdigit() or not 1 <= int(version) <= MAX_INDEX:
            raise ProtocolError(f"model version must be a positive integer, not {version!r}")
        number = int(version)
    return models.find_model(session, tenant, name, number)


@router.get("", summary="Server metadata")
def server_metadata(request: Request) -> dict[str, Any]:
    return {"name": "dnn-service", "version": request.app.version, "extensions": []}


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


def _metadata(model: Model, session: ReadSessionDep, tenant: str) -> dict[str, Any]:
    arch = model.architecture
    same_name = models.list_models(session, tenant, name=model.name, limit=500, offset=0)
    input_type = FLOAT_DATATYPES[np.dtype(arch["dtype"])]
    return {
        "name": model.name,
        "versions": [str(v) for v in sorted(m.version for m in same_name)],
        "platform": PLATFORM,
        "inputs": [
            {"name": INPUT_NAME, "datatype": input_type, "shape": [-1, *arch["input_shape"]]}
        ],
        "outputs": [{"name": name, **spec} for name, spec in output_specs(model).items()],
    }


@router.get("/models/{name}", summary="Model metadata of the latest version")
def model_metadata(name: str, session: ReadSessionDep, tenant: TenantDep) -> dict[str, Any]:
    return _metadata(lookup(session, tenant, name, None), session, tenant)


@router.get("/models/{name}/versions/{version}", summary="Model metadata of one version")
def version_metadata(
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep
) -> dict[str, Any]:
    return _metadata(lookup(session, tenant, name, version), session, tenant)


def _ready(model: Model, session: ReadSessionDep, cache: ModelCacheDep) -> dict[str, Any]:
    # Ready means loadable: the weights are read and checked against their sha256 once here.
    cache.get(session, model)
    return {"name": model.name, "version": str(model.version), "ready": True}


@router.get("/models/{name}/ready", summary="200 when the latest version can be loaded")
def model_ready(
    name: str, session: ReadSessionDep, tenant: TenantDep, cache: ModelCacheDep
) -> dict[str, Any]:
    return _ready(lookup(session, tenant, name, None), session, cache)


@router.get("/models/{name}/versions/{version}/ready", summary="200 when the version can be loaded")
def version_ready(
    name: str, version: str, session: ReadSessionDep, tenant: TenantDep, cache: ModelCacheDep
) -> dict[str, Any]:
    return _ready(lookup(session, tenant, name, version), session, cache)


def decode_input(tensor: RequestInput, n_features: int) -> np.ndarray[Any, Any]:
    """The input tensor as a float64 matrix of shape (n, n_features), checked against its header."""
    dtype = INPUT_DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise ProtocolError(
            f"input datatype {tensor.datatype!r} is not supported; use one of "
            + ", ".join(INPUT_DATATYPES)
        )
    shape = tensor.shape
    if len(shape) < 2 or any(size < 0 for size in shape) or shape[0] == 0:
        raise ProtocolError(f"input shape must be [n, features...] with n >= 1, not {shape}")
    if math.prod(shape[1:]) != n_features:
        raise ProtocolError(
            f"input shape {shape} gives {math.prod(shape[1:])} features per row; "
            f"the model expects {n_features}"
        )
    try:
        values = np.asarray(tensor.data)
    except ValueError as exc:
        raise ProtocolError("input data is ragged; nested lists must match the shape") from exc
    if values.dtype.kind not in "iuf":
        raise ProtocolError(f"input data must be numbers of datatype {tensor.datatype}")
    if values.size != math.prod(shape):
        raise ProtocolError(
            f"input data holds {values.size} values; shape {shape} needs {math.prod(shape)}"
        )
    if dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ProtocolError("input data contains NaN or infinite values")
    else:
        limits = np.iinfo(dtype)
        if values.dtype.kind == "f" and not (values == np.round(values)).all():
            raise ProtocolError(f"input data must be integers for datatype {tensor.datatype}")
        if values.min() < limits.min or values.max() > limits.max:
            raise ProtocolError(f"input data is out of range for datatype {tensor.datatype}")
    return values.astype(np.float64).reshape(shape[0], n_features)


def encode_outputs(
    model: Model, result: serving.Inference, requested: list[RequestOutput] | None
) -> list[dict[str, Any]]:
    specs = output_specs(model)
    arrays = {"predictions": result.predictions, "probabilities": result.probabilities}
    names = [output.name for output in requested] if requested else list(specs)
    unknown = [name for name in names if name not in specs]
    if unknown:
        raise ProtocolError(
            f"unknown output {unknown[0]!r}; model {model.name!r} has " + ", ".join(specs)
        )
    tensors = []
    for name in names:
        array = arrays[name]
        assert array is not None  # specs list probabilities only for classifiers
        tensors.append(
            {
                "name": name,
                "datatype": specs[name]["datatype"],
                "shape": list(array.shape),
                "data": array.reshape(-1).tolist(),
            }
        )
    return tensors


def _infer(
    model: Model,
    body: InferenceRequest,
    session: ReadSessionDep,
    cache: ModelCacheDep,
    max_rows: int,
) -> dict[str, Any]:
    if len(body.inputs) != 1 or body.inputs[0].name != INPUT_NAME:
        raise ProtocolError(f"model {model.name!r} takes exactly one input tensor, {INPUT_NAME!r}")
    network = cache.get(session, model)
    session.close()
    X = decode_input(body.inputs[0], network.n_features)
    result = serving.infer(network, X, max_rows=max_rows)
    response: dict[str, Any] = {
        "model_name": model.name,
        "model_version": str(model.version),
        "outputs": encode_outputs(model, result, body.outputs),
    }
    if body.id is not None:
        response["id"] = body.id
    return response


INFER_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": InferenceRequest.model_json_schema()}},
    }
}


InferenceBody = Annotated[InferenceRequest, Depends(inference_request)]


@router.post(
    "/models/{name}/infer", openapi_extra=INFER_BODY, summary="Infer with the latest version"
)
def infer(
    name: str,
    body: InferenceBody,
    session: ReadSessionDep,
    settings: SettingsDep,
    tenant: TenantDep,
    cache: ModelCacheDep,
) -> dict[str, Any]:
    model = lookup(session, tenant, name, None)
    return _infer(model, body, session, cache, settings.max_predict_rows)


@router.post(
    "/models/{name}/versions/{version}/infer",
    openapi_extra=INFER_BODY,
    summary="Infer with one version",
)
def infer_version(
    name: str,
    version: str,
    body: InferenceBody,
    session: ReadSessionDep,
    settings: SettingsDep,
    tenant: TenantDep,
    cache: ModelCacheDep,
) -> dict[str, Any]:
    model = lookup(session, tenant, name, version)
    return _infer(model, body, session, cache, settings.max_predict_rows)
