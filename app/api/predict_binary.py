"""POST /predict with a NumPy .npy body: the compact encoding for large batches.

A request whose Content-Type is application/x-npy carries one float32/float64 array of shape
(n, n_features); the model comes from the `model_id` query parameter. The answer is the JSON
/predict body, or a .npy of the predictions when the client sends `Accept: application/x-npy`.
The .npy header is parsed and checked before any data is read, and only plain float arrays are
taken, so no pickled object can ever be loaded.
"""

from __future__ import annotations

import io
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Match
from starlette.types import Scope

from app import serving
from app.api.deps import ModelCacheDep, SettingsDep, TenantDep
from app.errors import InvalidInput
from app.store import models

NPY_MEDIA_TYPE = "application/x-npy"
FLOAT_DTYPES = (np.dtype("<f4"), np.dtype("<f8"), np.dtype(">f4"), np.dtype(">f8"))
# A .npy header for a 2-D float array is about 100 bytes; anything near this is not one.
MAX_HEADER_BYTES = 1024


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


class NpyRoute(APIRoute):
    """Matches only requests whose body is a .npy, so JSON /predict keeps the same path."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match == Match.NONE:
            return match, child_scope
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").decode("latin-1")
        if _media_type(content_type) != NPY_MEDIA_TYPE:
            return Match.NONE, {}
        return match, child_scope


router = APIRouter(tags=["models"], route_class=NpyRoute)


def read_npy(body: bytes, *, n_features: int, max_rows: int) -> np.ndarray[Any, Any]:
    """The (n, n_features) float array in body; InvalidInput for anything else."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(
                stream, max_header_size=MAX_HEADER_BYTES
            )
        else:
            raise InvalidInput(f"unsupported .npy format version {version[0]}.{version[1]}")
    except (ValueError, EOFError) as exc:
        raise InvalidInput(f"the body is not a valid .npy file: {exc}") from None
    if dtype not in FLOAT_DTYPES:
        raise InvalidInput(f"the array must be float32 or float64, not {dtype}")
    if len(shape) != 2 or shape[0] < 1:
        raise InvalidInput(f"the array must have shape (n, {n_features}) with n >= 1, not {shape}")
    serving.check_row_limit(shape[0], max_rows)
    if shape[1] != n_features:
        raise InvalidInput(f"the array has {shape[1]} features; the model expects {n_features}")
    data = body[stream.tell() :]
    expected = shape[0] * shape[1] * dtype.itemsize
    if len(data) != expected:
        raise InvalidInput(f"the .npy data holds {len(data)} bytes; its header promises {expected}")
    X = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    if not np.isfinite(X).all():
        raise InvalidInput("the array holds NaN or infinite values")
    return X


def _predict(
    factory: sessionmaker[Session],
    cache: serving.ModelCache,
    tenant: str,
    model_id: str,
    body: bytes,
    max_rows: int,
    want_npy: bool,
) -> Response:
    network = cache.recent(tenant, model_id)
    if network is None:
        with factory() as session:
            network = cache.get(session, models.get_model(session, tenant, model_id))
    X = read_npy(body, n_features=network.n_features, max_rows=max_rows)
    result = serving.infer(network, X, max_rows=max_rows)
    if want_npy:
        out = io.BytesIO()
        np.save(out, result.predictions, allow_pickle=False)
        return Response(out.getvalue(), media_type=NPY_MEDIA_TYPE)
    probabilities = None if result.probabilities is None else result.probabilities.tolist()
    return JSONResponse(
        {
            "model_id": model_id,
            "predictions": result.predictions.tolist(),
            "probabilities": probabilities,
        }
    )


@router.post(
    "/predict",
    include_in_schema=False,
    summary="Predict for a .npy batch (Content-Type: application/x-npy, ?model_id=...)",
)
async def predict_npy(
    request: Request,
    model_id: Annotated[str, Query(min_length=1, max_length=64)],
    settings: SettingsDep,
    tenant: TenantDep,
    cache: ModelCacheDep,
) -> Response:
    body = await request.body()
    want_npy = _media_type(request.headers.get("accept")) == NPY_MEDIA_TYPE
    # The lookup and the forward pass are blocking work: keep them off the event loop.
    return await run_in_threadpool(
        _predict,
        request.app.state.read_session_factory,
        cache,
        tenant,
        model_id,
        body,
        settings.max_predict_rows,
        want_npy,
    )
