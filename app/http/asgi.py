"""The shape every middleware of this service shares: HTTP requests are its work, and every
other ASGI scope (lifespan, websocket) passes through untouched."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it would buffer streamed responses and
    run the app in another task) that handles ``http`` scopes in :meth:`handle`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError
