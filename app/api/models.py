"""/models: list, show, delete, download weights (POST /predict is app/api/predict.py)."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from app.api.deps import InferenceDep, ReadSessionDep, SessionDep, TenantDep
from app.content_disposition import attachment
from app.db.tables import Model
from app.schemas.common import Limit, Offset, error_responses
from app.schemas.models import ModelList, ModelOut
from app.store import models

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
    model_id: str, session: SessionDep, tenant: TenantDep, inference: InferenceDep
) -> None:
    with session.begin():
        models.delete_model(session, tenant, model_id)
    inference.forget(model_id)


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
