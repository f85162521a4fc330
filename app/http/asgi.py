"""The shape every middleware of this service shares: HTTP requests are its work, and every
other ASGI scope (lifespan, websocket) passes through untouched."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware(ABC):
    """Pure ASGI middleware that handles ``http`` scopes in :meth:`handle` (not Starlette's
    BaseHTTPMiddleware, which runs the app in a task of its own and re-wraps every response,
    streamed ones included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    @abstractmethod
    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one HTTP request, calling ``self.app`` to pass it on."""
