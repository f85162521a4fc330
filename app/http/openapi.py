"""The OpenAPI document, completed: the Bearer scheme, per-route errors and examples.

FastAPI derives paths and schemas from the routes; what it cannot know is kept here, in one
place: which routes take an API key (read off their dependencies, so it cannot drift), the
errors each route really answers (from the code paths it calls), and an example request and
response for every operation, which Swagger UI pre-fills and ReDoc shows beside each route.
Routes under /v2 follow the inference protocol's own error shape: they get the security
scheme only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from app.api.deps import get_caller
from app.errors import ServiceError
from app.http.openapi_examples import (
    AUTHENTICATED_BY_HAND,
    ERRORS,
    EXAMPLES,
    EXTRA_DESCRIPTION,
    EXTRA_REQUEST_CONTENT,
    EXTRA_RESPONSE_CONTENT,
    REQUEST_EXAMPLES,
)

BEARER = "bearerAuth"
BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "An API key from `dnn-service keys create --tenant NAME`. Not needed while the server "
        "has no keys (open single-tenant mode); from the first key on, every route marked "
        "with a lock needs one."
    ),
}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
STATUS_TEXT = {
    400: "Bad request",
    401: "No API key, or a key that is not valid or revoked",
    403: "The route needs an admin API key",
    404: "No such resource for this tenant",
    409: "Conflict",
    413: "Request body or declared size beyond the server's limits",
    415: "A compressed body (a Content-Encoding other than identity)",
    422: "Invalid input: the details list every field at fault",
    429: "Too many active jobs for this tenant; see Retry-After",
    503: "A dependency (the job queue) is unreachable; see Retry-After",
}


def _uses(dependant: Dependant, target: Callable[..., Any]) -> bool:
    return any(dep.call is target or _uses(dep, target) for dep in dependant.dependencies)


def _error_codes() -> dict[int, str]:
    """Each status's general error code, read from the error classes that define them."""
    codes: dict[int, str] = {}
    pending: list[type[ServiceError]] = [ServiceError]
    while pending:
        error = pending.pop(0)
        codes.setdefault(error.status_code, error.code)
        pending.extend(error.__subclasses__())
    return codes


ERROR_CODES = _error_codes()


def _error_response(status: int, reason: str) -> dict[str, Any]:
    example = {"error": {"code": ERROR_CODES[status], "message": reason, "details": []}}
    return {
        "description": reason,
        "content": {"application/json": {"schema": ERROR_REF, "example": example}},
    }


def _complete_operation(
    operation: dict[str, Any], key: tuple[str, str], authenticated: bool
) -> None:
    if authenticated:
        # The empty requirement: in open mode (no keys configured) no key is needed.
        operation["security"] = [{BEARER: []}, {}]
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if key in ERRORS:
        for declared in [code for code in responses if code[0] in "45"]:
            del responses[declared]
        errors = dict(ERRORS[key])
        if authenticated:
            errors.setdefault(401, STATUS_TEXT[401])
        # The request guard refuses a compressed body on every route that takes one.
        if key[0] in ("POST", "PUT", "PATCH"):
            errors.setdefault(415, STATUS_TEXT[415])
        for code, reason in sorted(errors.items()):
            responses[str(code)] = _error_response(code, reason)
    example = EXAMPLES.get(key)
    if example is not None:
        status, media_type, body = example
        content = responses.setdefault(status, {"description": "OK"}).setdefault("content", {})
        content.setdefault(media_type, {})["example"] = body
    for media_type, body in REQUEST_EXAMPLES.get(key, {}).items():
        request_body = operation.setdefault("requestBody", {"content": {}})
        request_body["content"].setdefault(media_type, {})["example"] = body
    for media_type, content in EXTRA_REQUEST_CONTENT.get(key, {}).items():
        operation.setdefault("requestBody", {"content": {}})["content"][media_type] = content
    for success, extra in EXTRA_RESPONSE_CONTENT.get(key, {}).items():
        responses.setdefault(success, {"description": "OK"}).setdefault("content", {}).update(extra)
    if key in EXTRA_DESCRIPTION:
        operation["description"] = EXTRA_DESCRIPTION[key]


def _routes(app: FastAPI) -> Iterable[tuple[str, set[str], Dependant]]:
    """(path template, methods, dependencies) of every documented route, prefixes applied."""
    try:  # FastAPI >= 0.160 keeps included routers lazily; older ones list APIRoutes.
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI
        for route in app.routes:
            if isinstance(route, APIRoute) and route.include_in_schema:
                yield route.path_format, set(route.methods or ()), route.dependant
        return
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema:
            methods: set[str] = set(context.methods or ())
            yield str(context.path_format), methods, route.dependant


def _hoist_local_defs(node: Any, schemas: dict[str, Any]) -> None:
    """Move pydantic's nested `$defs` (from hand-written bodies) into components/schemas.

    A `#/$defs/X` reference is resolved from the document's root, where there is no `$defs`:
    ReDoc refuses the whole document over one ("Invalid reference token: $defs").
    """
    if isinstance(node, dict):
        for name, definition in node.pop("$defs", {}).items():
            schemas.setdefault(name, definition)
            _hoist_local_defs(definition, schemas)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
        for value in node.values():
            _hoist_local_defs(value, schemas)
    elif isinstance(node, list):
        for value in node:
            _hoist_local_defs(value, schemas)


def build_schema(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[BEARER] = BEARER_SCHEME
    for path, methods, dependant in _routes(app):
        by_dependency = _uses(dependant, get_caller)
        for method in methods:
            operation = schema["paths"].get(path, {}).get(method.lower())
            if operation is not None:
                authenticated = by_dependency or (method, path) in AUTHENTICATED_BY_HAND
                _complete_operation(operation, (method, path), authenticated)
    _hoist_local_defs(schema["paths"], components.setdefault("schemas", {}))
    return schema


def install_openapi(app: FastAPI) -> None:
    """Replace app.openapi with the completed document, built once on first use."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_schema(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
