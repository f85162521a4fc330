"""Open Inference Protocol v2 inference: JSON or binary tensor data in, the same out.

Tensors travel as JSON or as binary data (the binary tensor data extension), which is what
tritonclient sends and asks for by default; app/v2/codec.py reads and writes both.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.api.deps import InferenceDep, TenantDep
from app.model_cache import ModelRef
from app.serving import InferenceService
from app.v2.addressing import VersionPath, model_ref
from app.v2.codec import (
    PROTOCOL_PREFIX,
    encode_response,
    output_specs,
    parse_request,
)
from app.v2.schemas import InferenceRequest

router = APIRouter(prefix=PROTOCOL_PREFIX)

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
    name: str, version: VersionPath, request: Request, tenant: TenantDep, inference: InferenceDep
) -> Response:
    return await _infer(request, tenant, inference, model_ref(name, version))
