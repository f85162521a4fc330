"""HEAD wherever GET is served (RFC 9110 9.3.2): the GET's status and headers, no body.

FastAPI's routes take only the methods they name, so HEAD on any GET route but the health
probes was a 405. Here a HEAD that no route takes is served as the GET of its path, and the
answer stops at its headers: the route runs once, as for GET, and a streamed answer (an event
stream) ends there instead of streaming into a body no one reads. OpenAPI is left as it is:
HEAD is what HTTP gives every GET, not an operation of its own.
"""

from __future__ import annotations

import contextlib

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.asgi import HttpMiddleware


class _HeadersSent(Exception):
    """Stops the GET's route once its headers are sent: no body is owed to a HEAD."""


def takes(routes: list[BaseRoute], scope: Scope, method: str) -> bool:
    return any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)


class HeadAsGet(HttpMiddleware):
    def __init__(self, app: ASGIApp, routes: list[BaseRoute]) -> None:
        super().__init__(app)
        # The router's own list: routes included after this middleware count too.
        self.routes = routes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["method"] != "HEAD"
            or takes(self.routes, scope, "HEAD")
            or not takes(self.routes, scope, "GET")
        ):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.start":
                return
            # Content-Length stays: it is the length the GET's body has (RFC 9110 8.6).
            await send(message)
            await send({"type": "http.response.body", "body": b""})
            raise _HeadersSent

        as_get = {**scope, "method": "GET"}
        try:
            with contextlib.suppress(_HeadersSent):
                await self.app(as_get, receive, headers_only)
        finally:
            # The router records the matched route in the scope it is handed; the metrics
            # around this middleware read it from theirs, under the method that came (HEAD).
            scope.update({key: value for key, value in as_get.items() if key != "method"})
