"""DirectRoute: an endpoint served alone, and refused where a dependency would go unsolved."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response

from app.api.direct_route import DirectRoute


def _tenant() -> str:
    return "t"


def test_the_endpoint_gets_the_request_and_its_response_is_sent_as_is() -> None:
    router = APIRouter(route_class=DirectRoute)

    @router.post("/echo", openapi_extra={"requestBody": {"content": {"text/plain": {}}}})
    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="text/plain", status_code=201)

    app = FastAPI()
    app.include_router(router)

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/echo", content=b"as sent")

    answer = asyncio.run(post())
    assert (answer.status_code, answer.content) == (201, b"as sent")
    assert "text/plain" in app.openapi()["paths"]["/echo"]["post"]["requestBody"]["content"]


def test_a_dependency_it_would_skip_is_refused_when_the_route_is_built() -> None:
    router = APIRouter(route_class=DirectRoute, dependencies=[Depends(_tenant)])

    async def endpoint(request: Request) -> Response:
        return Response()

    with pytest.raises(TypeError, match="no dependencies"):
        router.add_api_route("/guarded", endpoint, methods=["POST"])


def test_a_parameter_it_would_leave_unread_is_refused_when_the_route_is_built() -> None:
    router = APIRouter(route_class=DirectRoute)

    async def endpoint(request: Request, limit: int = 10) -> Response:
        return Response(str(limit))

    with pytest.raises(TypeError, match="no parameters"):
        router.add_api_route("/listed", endpoint, methods=["GET"])
