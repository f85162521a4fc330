"""POST /predict: one route for both encodings of the request, chosen by its Content-Type.

- application/json (or no Content-Type): `{"model_id"} | {"model", "version"? | "alias"}` +
  `"instances"`
- application/x-npy or application/octet-stream: a .npy array of shape (n, n_features), the
  model named by the `model_id` query parameter (or `model`, and `version` or `alias`)

Either way the body is read once, decoded into a matrix, and handed to the inference service;
the answer is JSON, or a .npy of the predictions when the client sends `Accept: application/x-npy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from app.api.deps import get_auth_gate, get_caller, get_inference, get_read_session_factory
from app.api.direct_route import DirectRoute
from app.api.predict_binary import (
    BINARY_SCHEMA,
    NPY_MEDIA_TYPE,
    NPY_MEDIA_TYPES,
    npy_response,
    read_npy,
    wants_npy,
)
from app.errors import InvalidInput, UnsupportedMediaType
from app.model_cache import ModelRef
from app.parsing import ParsePool
from app.schemas.common import MAX_INDEX, error_responses
from app.schemas.models import PredictRequest, PredictResponse
from app.serving import parse_version
from app.validation import invalid_input_from

JSON_MEDIA_TYPES = frozenset({"", "application/json"})


def media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


# Read by hand in the route (no FastAPI parameter to solve), documented here, checked in npy_ref.
QUERY_PARAMETERS: dict[str, dict[str, Any]] = {
    "model_id": _query_parameter(
        "model_id", {"type": "string", "minLength": 1, "maxLength": 64}, "for a .npy body"
    ),
    "model": _query_parameter(
        "model",
        {"type": "string", "minLength": 1, "maxLength": 200},
        "for a .npy body: a model name, its latest version unless version is given",
    ),
    "version": _query_parameter(
        "version",
        {"type": "integer", "minimum": 1, "maximum": MAX_INDEX},
        "for a .npy body, with model",
    ),
    "alias": _query_parameter(
        "alias",
        {"type": "string", "minLength": 1, "maxLength": 64},
        "for a .npy body, with model instead of version: the version this alias names",
    ),
}
PREDICT_OPENAPI: dict[str, Any] = {
    "parameters": list(QUERY_PARAMETERS.values()),
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictRequest.model_json_schema()},
            NPY_MEDIA_TYPE: {"schema": BINARY_SCHEMA},
            "application/octet-stream": {"schema": BINARY_SCHEMA},
        },
    },
}

router = APIRouter(
    tags=["models"],
    responses=error_responses(401, 404, 409, 413, 415, 422),
    route_class=DirectRoute,
)


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
    ref = ModelRef(
        model_id=request.model_id,
        name=request.model,
        version=request.version,
        alias=request.alias,
    )
    return ref, matrix(request.instances)


def _query_text(query: QueryParams, name: str) -> str | None:
    value = query.get(name)
    limit = QUERY_PARAMETERS[name]["schema"]["maxLength"]
    if value is not None and not 1 <= len(value) <= limit:
        raise InvalidInput(
            f"the query parameter {name} must be 1 to {limit} characters",
            [{"loc": ["query", name], "msg": f"1 to {limit} characters"}],
        )
    return value


def npy_ref(query: QueryParams) -> ModelRef:
    """The model a .npy body is for, from the query (as PREDICT_OPENAPI documents it)."""
    model_id, model = _query_text(query, "model_id"), _query_text(query, "model")
    alias = _query_text(query, "alias")
    version_text = query.get("version")
    version = None if version_text is None else parse_version(version_text, MAX_INDEX)
    if version_text is not None and version is None:
        raise InvalidInput(
            f"the query parameter version must be an integer from 1 to {MAX_INDEX}",
            [{"loc": ["query", "version"], "msg": "a positive integer"}],
        )
    if (model_id is None) == (model is None):
        raise InvalidInput(
            "a .npy body names its model with exactly one of the query parameters "
            "model_id and model",
            [{"loc": ["query", "model_id"], "msg": "give exactly one of model_id and model"}],
        )
    if version is not None and model is None:
        raise InvalidInput("the version query parameter goes with model (a name), not model_id")
    # As in the JSON body: an alias names a version of a model name, instead of version.
    if alias is not None and (model is None or version is not None):
        raise InvalidInput(
            "the alias query parameter goes with model (a name), instead of version",
            [{"loc": ["query", "alias"], "msg": "with model, without version"}],
        )
    return ModelRef(model_id=model_id, name=model, version=version, alias=alias)


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
async def predict(request: Request) -> Response:
    # The fast path: no parameter FastAPI has to solve. The caller and the service come from
    # the same dependency functions every other route uses, called directly; the query is
    # read below with the constraints PREDICT_OPENAPI documents.
    caller = await get_caller(
        await get_auth_gate(request),
        await get_read_session_factory(request),
        request.headers.get("authorization"),
    )
    inference = await get_inference(request)
    content_type = media_type(request.headers.get("content-type"))
    body = await request.body()
    query = request.query_params
    if content_type in NPY_MEDIA_TYPES:
        ref, X = npy_ref(query), read_npy(body)
    elif content_type in JSON_MEDIA_TYPES or content_type.endswith("+json"):
        if any(name in query for name in QUERY_PARAMETERS):
            raise InvalidInput(
                "the model_id, model, version and alias query parameters go with a .npy body; "
                "a JSON body names its model itself"
            )
        pool: ParsePool = request.app.state.parse_pool
        if pool.offloads(len(body)):  # a 100k-row body: parsed off the loop and its GIL
            ref, X = await pool.run("predict", len(body), json_request, body)
        else:
            ref, X = json_request(body)
    else:
        raise UnsupportedMediaType(
            f"POST /predict takes application/json or {NPY_MEDIA_TYPE}, not {content_type!r}"
        )
    result = await inference.predict(caller.tenant_id, ref, X)
    if wants_npy(request.headers.get("accept")):
        return npy_response(result.predictions)
    return Response(result.json_bytes(), media_type="application/json")
