"""create_app(): routers, error handlers, middleware, and the executor's lifetime."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.types import Scope

from app.api import (
    admin,
    curves,
    datasets,
    events,
    export,
    health,
    jobs,
    models,
    predict,
    registry,
    sweeps,
)
from app.api import metrics as metrics_api
from app.api.dashboard import install_dashboard
from app.api.docs import install_docs
from app.api.health import ReadinessCache
from app.auth import AuthGate, AuthMode
from app.db.engine import make_engine, make_read_session_factory, make_session_factory
from app.errors import ServiceError
from app.http.head import HeadAsGet, takes
from app.http.middleware import BodyReadTimeout, BodySizeLimit, ResponseHeaderGuard
from app.http.openapi import install_openapi
from app.http.request_guard import RequestGuard
from app.http.request_id import RequestId
from app.jobs.dispatch import make_executor
from app.jobs.polling import PollingExecutor
from app.metrics import API_PROCESS_STARTS, HttpMetrics, ModelSeries, register_default_collectors
from app.model_cache import ModelCache
from app.parsing import ParsePool
from app.serving import InferenceService
from app.settings import Settings, get_settings
from app.v2 import routes as inference_v2
from app.v2.codec import ProtocolError, is_protocol_path, protocol_error_body
from app.validation import error_details, summarize

log = logging.getLogger("app")

HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    415: "unsupported_media_type",
}
ROUTE_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def answer_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The error body for this path: the service's, or under /v2 the inference protocol's."""
    if is_protocol_path(request.url.path):
        return JSONResponse(protocol_error_body(message), status_code=status, headers=headers)
    return error_response(status, code, message, details, headers)


def allowed_methods(app: FastAPI, scope: Scope) -> str:
    """Every method some route takes at this path, for a 405's Allow header; HEAD wherever
    GET is (app/http/head.py).

    Starlette's own 405 names only the first route whose path matched: `PATCH /datasets` said
    `Allow: POST`, though GET /datasets exists too.
    """
    routes = app.router.routes
    taken = {method for method in ROUTE_METHODS if takes(routes, scope, method)}
    if "GET" in taken:
        taken.add("HEAD")
    return ", ".join(method for method in ROUTE_METHODS if method in taken)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return answer_error(
            request, exc.status_code, exc.code, exc.message, exc.details, exc.headers
        )

    @app.exception_handler(ProtocolError)
    async def _protocol_error(request: Request, exc: ProtocolError) -> JSONResponse:
        return answer_error(
            request, exc.status_code, HTTP_CODES.get(exc.status_code, "bad_request"), exc.message
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = error_details(exc.errors())
        return answer_error(request, 422, "invalid_input", summarize(details), details)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(app, request.scope)}
        return answer_error(request, exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _client_gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client left before its body ended (a Content-Length it never sent, a broken
        # chunk): not the server's fault, and no traceback to log; no one reads this answer.
        log.info("client left mid-body on %s %s", request.method, request.url.path)
        return answer_error(request, 400, "bad_request", "the request body ended early")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer_error(request, 500, "internal_error", "the server hit an unexpected error")


def create_app(
    settings: Settings | None = None,
    auth_mode: AuthMode = AuthMode.KEYS,
    *,
    run_executor: bool = True,
) -> FastAPI:
    """The app; `auth_mode` is the start-up decision (app/auth.py decide_mode), closed by default.

    `run_executor=False`: this process only serves HTTP and another one runs the training
    workers (the `serve --api-workers N` parent).
    """
    settings = settings or get_settings()
    register_default_collectors()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        app.state.settings = settings
        app.state.session_factory = make_session_factory(engine)
        app.state.read_session_factory = make_read_session_factory(engine)
        app.state.inference = InferenceService(
            ModelCache(settings.model_cache_size),
            app.state.read_session_factory,
            max_rows=settings.max_predict_rows,
            series=ModelSeries(settings.metrics_model_series),
        )
        app.state.auth = AuthGate(auth_mode, settings.metrics_token)
        app.state.parse_pool = ParsePool(settings.parse_workers, settings.parse_offload_bytes)
        app.state.readiness = ReadinessCache()
        # An API process under `serve --api-workers N` serves HTTP only: the serve parent owns
        # the training workers and the reconciler (see app/cli/main.py).
        app.state.executor = make_executor(settings) if run_executor else PollingExecutor()
        app.state.executor.start()
        API_PROCESS_STARTS.inc()
        # Everything built so far lives as long as the server: keep it out of the cyclic
        # collector's full passes, whose pauses would otherwise show in request tail latency.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.state.executor.stop()
            app.state.parse_pool.shutdown()
            engine.dispose()

    app = FastAPI(
        title="dnn-service",
        summary="Train NumPy deep neural networks over REST and serve their predictions.",
        version="0.1.0",
        lifespan=lifespan,
        # Served by install_docs from vendored assets, so the pages work offline.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # POST /predict first: the router tries routes in order, and it is the hottest one.
    # registry before models: /models/{id}/weights would otherwise claim /models/names/weights.
    routers = (predict.router, registry.router, datasets.router, jobs.router, models.router)
    for router in (*routers, health.router, admin.router):
        app.include_router(router)
    app.include_router(export.router)
    app.include_router(sweeps.router)
    # Innermost: the middleware around it (metrics, request ids) see the HEAD as it came.
    app.add_middleware(HeadAsGet, routes=app.router.routes)
    # Inside the body limit: a JSON body it reads whole has been bounded already.
    app.add_middleware(RequestGuard)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Outside both: the guard, too, waits for the body it reads whole.
    app.add_middleware(BodyReadTimeout, seconds=settings.body_timeout_seconds)
    app.include_router(inference_v2.router)
    app.include_router(metrics_api.router)
    app.include_router(events.router)
    app.include_router(curves.router)
    install_dashboard(app)
    install_docs(app)
    install_openapi(app)
    # Outermost, so requests refused by the inner middleware are counted and timed too.
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestId)
    # Outermost of all: it sees the headers exactly as the server will be asked to send them.
    app.add_middleware(ResponseHeaderGuard)
    return app
