"""The Open Inference Protocol v2 over REST (KServe v2, as Triton and MLServer clients speak it).

A model name, a version or `NAME@alias` addresses a stored model as app/v2/addressing.py says.
Tensors travel as JSON or as binary data (the binary tensor data extension), which is what
tritonclient sends and asks for by default. Every answer under /v2 that is an error, from these
routes or from no route at all, carries the protocol's body {"error": "<message>"} (app/main.py
asks `is_protocol_path`).

This router gives the routes their tag and error responses; they live by concern in
server_routes.py (server metadata, health), model_routes.py (a model's metadata, configuration,
readiness and statistics, the repository index) and infer_routes.py (inference). Each of those
routers carries the /v2 prefix itself: a prefix given at inclusion is not part of the route's own
`path`, which is what request metrics label a request with (app/metrics.route_template).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.v2 import infer_routes, model_routes, server_routes
from app.v2.schemas import ProtocolErrorBody

PROTOCOL_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProtocolErrorBody} for code in (400, 401, 404, 409, 413, 415, 422)
}
router = APIRouter(tags=["inference protocol v2"], responses=PROTOCOL_ERRORS)
# Inclusion order is matching order (and the order of the OpenAPI document).
for routes in (server_routes, model_routes, infer_routes):
    router.include_router(routes.router)
