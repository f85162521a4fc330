"""The Open Inference Protocol v2 over REST (KServe v2, as Triton and MLServer clients speak it).

A model name resolves to its latest version; its versions are the trained models of that name.
`NAME@alias` resolves to the version the alias names (see app/store/aliases.py).
Tensors travel as JSON (row-major data, flat or nested). Every error on these routes carries the
protocol's body, {"error": "<message>"}, instead of the rest of the API's structured one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app import serving
from app.api.deps import ExecutorDep, ModelCacheDep, ReadSessionDep, SettingsDep, TenantDep
from app.db.tables import Model
from app.errors import InvalidInput, ServiceError
from app.protocol_v2 import (
    FLOAT_DATATYPES,
    INPUT_NAME,
    PLATFORM,
    ProtocolError,
    decode_input,
    encode_outputs,
    output_specs,
)
from app.schemas.common import MAX_INDEX
from app.schemas.inference_v2 import InferenceRequest, ProtocolErrorBody
from app.store import models
from app.validation import error_details, summarize


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


PROTOCOL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProtocolErrorBody} for code in (400, 401, 404, 409, 413)
}
router = APIRouter(
    prefix="/v2",
    tags=["inference protocol v2"],
    route_class=ProtocolRoute,
    responses=PROTOCOL_ERRORS,
)


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


def lookup(session: ReadSessionDep, tenant: str, name: str, version: str | None) -> Model:
    if "@" in name:  # NAME@alias: the version the alias names
        if version is not None:
            raise ProtocolError("a model named NAME@alias takes no version; the alias names one")
        base, alias = name.rsplit("@", 1)
        return serving.find_by_alias(session, tenant, base, alias)
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
