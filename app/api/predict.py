"""POST /predict: one route for both encodings of the request, chosen by its Content-Type.

- application/json (or no Content-Type): `{"model_id"} | {"model", "version"?}` + `"instances"`
- application/x-npy or application/octet-stream: a .npy array of shape (n, n_features), the
  model named by the `model_id` query parameter (or `model` and `version`)

Either way the body is read once, decoded into a matrix, and handed to the inference service;
the answer is JSON, or a .npy of the predictions when the client sends `Accept: application/x-npy`.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.deps import InferenceDep, TenantDep
from app.api.predict_binary import (
    BINARY_SCHEMA,
    NPY_MEDIA_TYPE,
    NPY_MEDIA_TYPES,
    npy_response,
    read_npy,
)
from app.errors import InvalidInput, UnsupportedMediaType
from app.schemas.common import MAX_INDEX, error_responses
from app.schemas.models import PredictRequest, PredictResponse
from app.serving import ModelRef
from app.validation import invalid_input_from

JSON_MEDIA_TYPES = frozenset({"", "application/json"})


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


PREDICT_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictRequest.model_json_schema()},
            NPY_MEDIA_TYPE: {"schema": BINARY_SCHEMA},
            "application/octet-stream": {"schema": BINARY_SCHEMA},
        },
    }
}

router = APIRouter(tags=["models"], responses=error_responses(401, 404, 409, 413, 415, 422))


def matrix(instances: list[list[float]]) -> np.ndarray[Any, Any]:
    """JSON rows as one float64 matrix; rows of different lengths are refused by index."""
    width = len(instances[0])
    for index, row in enumerate(instances):
        if len(row) != width:
            raise InvalidInput(
                f"instance {index} has {len(row)} features, instance 0 has {width}; "
                "every row needs the model's feature count",
                [{"loc": ["instances", index], "msg": f"expected {width} features"}],
            )
    return np.array(instances, dtype=np.float64)


def json_request(body: bytes) -> tuple[ModelRef, np.ndarray[Any, Any]]:
    try:
        request = PredictRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_input_from(exc) from None
    ref = ModelRef(model_id=request.model_id, name=request.model, version=request.version)
    return ref, matrix(request.instances)


def npy_ref(model_id: str | None, model: str | None, version: int | None) -> ModelRef:
    if (model_id is None) == (model is None):
        raise InvalidInput(
            "a .npy body names its model with exactly one of the query parameters "
            "model_id and model",
            [{"loc": ["query", "model_id"], "msg": "give exactly one of model_id and model"}],
        )
    if version is not None and model is None:
        raise InvalidInput("the version query parameter goes with model (a name), not model_id")
    return ModelRef(model_id=model_id, name=model, version=version)


@router.post(
    "/predict",
    response_model=PredictResponse,
    openapi_extra=PREDICT_OPENAPI,
    responses={
        200: {
            "content": {NPY_MEDIA_TYPE: {"schema": BINARY_SCHEMA}},
            "description": "JSON, or a .npy of the predictions with Accept: application/x-npy",
        }
    },
    summary="Predict with a stored model (JSON instances or a .npy array)",
)
async def predict(
    request: Request,
    tenant: TenantDep,
    inference: InferenceDep,
    model_id: Annotated[
        str | None, Query(min_length=1, max_length=64, description="for a .npy body")
    ] = None,
    model: Annotated[
        str | None, Query(min_length=1, max_length=200, description="for a .npy body")
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INDEX, description="for a .npy body, with model")
    ] = None,
) -> Response:
    content_type = media_type(request.headers.get("content-type"))
    body = await request.body()
    if content_type in NPY_MEDIA_TYPES:
        ref, X = npy_ref(model_id, model, version), read_npy(body)
    elif content_type in JSON_MEDIA_TYPES or content_type.endswith("+json"):
        if model_id is not None or model is not None or version is not None:
            raise InvalidInput(
                "the model_id, model and version query parameters go with a .npy body; "
                "a JSON body names its model itself"
            )
        ref, X = json_request(body)
    else:
        raise UnsupportedMediaType(
            f"POST /predict takes application/json or {NPY_MEDIA_TYPE}, not {content_type!r}"
        )
    result = await inference.predict(tenant, ref, X)
    if media_type(request.headers.get("accept")) == NPY_MEDIA_TYPE:
        return npy_response(result.predictions)
    return JSONResponse(result.as_json())
