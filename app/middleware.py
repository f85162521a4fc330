"""ASGI middleware: a request body limit enforced while the body streams in."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.protocol_v2 import is_protocol_path, protocol_error_body


class BodyTooLarge(Exception):
    pass


def _error_body(limit: int, path: str) -> bytes:
    message = f"the request body exceeds this server's limit of {limit} bytes"
    if is_protocol_path(path):
        return json.dumps(protocol_error_body(message)).encode()
    return json.dumps(
        {"error": {"code": "payload_too_large", "message": message, "details": []}}
    ).encode()


class BodySizeLimit:
    """413 when Content-Length is over the limit, or when a chunked body grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        # bytes.isdigit() is ASCII-only, so int() below cannot fail ("²" is a str trap only).
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            response_started = response_started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        body = _error_body(self.max_bytes, scope.get("path", ""))
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
