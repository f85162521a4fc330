"""/models: list, show, delete, download weights; POST /predict."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from app import serving
from app.api.deps import ModelCacheDep, ReadSessionDep, SessionDep, TenantDep
from app.content_disposition import attachment
from app.db.tables import Model
from app.schemas.common import Limit, Offset, error_responses
from app.schemas.models import ModelList, ModelOut, PredictRequest, PredictResponse
from app.settings import Settings
from app.store import models

# Predictions up to this many rows take well under a millisecond: not worth a thread hop.
INLINE_ROWS = 64
router = APIRouter(tags=["models"], responses=error_responses(400, 401, 404, 409, 413, 422))


def to_out(model: Model) -> ModelOut:
    return ModelOut.model_validate(model, from_attributes=True)


@router.get("/models", response_model=ModelList)
def list_models(
    session: ReadSessionDep,
    tenant: TenantDep,
    name: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> ModelList:
    items = models.list_models(session, tenant, name=name, limit=limit, offset=offset)
    return ModelList(items=[to_out(m) for m in items], limit=limit, offset=offset)


@router.get("/models/{model_id}", response_model=ModelOut)
def get_model(model_id: str, session: ReadSessionDep, tenant: TenantDep) -> ModelOut:
    return to_out(models.get_model(session, tenant, model_id))


@router.delete("/models/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(
    model_id: str, session: SessionDep, tenant: TenantDep, cache: ModelCacheDep
) -> None:
    with session.begin():
        models.delete_model(session, tenant, model_id)
    cache.forget(model_id)


@router.get(
    "/models/{model_id}/weights",
    responses={200: {"content": {"application/octet-stream": {}}}},
    response_class=Response,
    summary="The model's safetensors file (weights plus JSON metadata in its header)",
)
def get_weights(model_id: str, session: ReadSessionDep, tenant: TenantDep) -> Response:
    model = models.get_model(session, tenant, model_id)
    data = models.verified_weights(session, model)
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": attachment(f"{model.name}-v{model.version}.safetensors"),
            "X-Content-SHA256": model.sha256,
        },
    )


@router.post("/predict", response_model=PredictResponse)
async def predict(body: PredictRequest, request: Request, tenant: TenantDep) -> PredictResponse:
    # A few rows cost less to predict than a trip through the threadpool, so they are answered
    # on the event loop when the model is cached; anything larger, or a lookup, goes to a thread.
    settings: Settings = request.app.state.settings
    cache: serving.ModelCache = request.app.state.model_cache
    network = cache.recent(tenant, body.model_id) if body.model_id is not None else None
    if network is not None and body.model_id is not None and len(body.instances) <= INLINE_ROWS:
        return serving.predict(
            network, body.model_id, body.instances, max_rows=settings.max_predict_rows
        )
    return await run_in_threadpool(_predict, request, tenant, body, settings)


def _predict(
    request: Request, tenant: str, body: PredictRequest, settings: Settings
) -> PredictResponse:
    cache: serving.ModelCache = request.app.state.model_cache
    network = cache.recent(tenant, body.model_id) if body.model_id is not None else None
    model_id = body.model_id
    if network is None or model_id is None:
        factory: sessionmaker[Session] = request.app.state.read_session_factory
        with factory() as session:
            model = serving.resolve_model(session, tenant, body)
            network, model_id = cache.get(session, model), model.id
    return serving.predict(network, model_id, body.instances, max_rows=settings.max_predict_rows)
