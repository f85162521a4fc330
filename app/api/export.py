"""GET /models/{id}/onnx: a trained model in a format other model servers load."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app import export_onnx
from app.api.deps import ReadSessionDep, TenantDep
from app.content_disposition import attachment
from app.errors import NotInstalled
from app.schemas.common import error_responses
from app.store import models
from core import Network

router = APIRouter(tags=["models"], responses=error_responses(401, 404, 409, 501))

ONNX_DESCRIPTION = (
    "An ONNX model (opset 17) computing what /predict computes. Input `input`: float32 "
    "[N, n_features], flat rows also for image models. Outputs: `probabilities` float32 "
    "[N, n_classes] and `class_index` int64 [N] for classifiers, `predictions` float32 "
    "[N, n_outputs] for regression. Metadata props: `classes` (JSON list that `class_index` "
    "indexes), `input_shape` (per-sample shape, JSON), `task`, `model_id`, `name`, `version`. "
    "501 when the server lacks the optional onnx package."
)


@router.get(
    "/models/{model_id}/onnx",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
    summary="Export the model as ONNX",
    description=ONNX_DESCRIPTION,
)
def get_onnx(model_id: str, session: ReadSessionDep, tenant: TenantDep) -> Response:
    model = models.get_model(session, tenant, model_id)
    if not export_onnx.onnx_available():
        raise NotInstalled(export_onnx.INSTALL_HINT)
    network = Network.from_bytes(models.verified_weights(session, model))
    metadata = {"model_id": model.id, "name": model.name, "version": str(model.version)}
    data = export_onnx.to_onnx(network, metadata=metadata)
    return Response(
        content=data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": attachment(f"{model.name}-v{model.version}.onnx")},
    )
