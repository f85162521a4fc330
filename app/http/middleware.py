"""ASGI middleware: a request body limit enforced while the body streams in; sendable headers."""

from __future__ import annotations

import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.asgi import HttpMiddleware
from app.v2.codec import is_protocol_path, protocol_error_body

log = logging.getLogger("app")


class BodyTooLarge(Exception):
    pass


def _error_body(limit: int, path: str) -> bytes:
    message = f"the request body exceeds this server's limit of {limit} bytes"
    if is_protocol_path(path):
        return json.dumps(protocol_error_body(message)).encode()
    return json.dumps(
        {"error": {"code": "payload_too_large", "message": message, "details": []}}
    ).encode()


class BodySizeLimit(HttpMiddleware):
    """413 when Content-Length is over the limit, or when a chunked body grows past it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        super().__init__(app)
        self.max_bytes = max_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
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


# RFC 9110: a field name is a token; a field value has no control character but HTAB.
_FIELD_NAME = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE_FORBIDDEN = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _bad_header(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if not _FIELD_NAME.match(name) or _FIELD_VALUE_FORBIDDEN.search(value):
            return name
    return None


class ResponseHeaderGuard(HttpMiddleware):
    """A response whose headers HTTP cannot carry becomes a 500 in the error shape.

    The server (h11 or httptools) refuses such a header only when it is sent, after the app's
    error handlers have let go: the client would see its keep-alive connection dropped with no
    response at all. Checked here, last before the server, it gets a proper answer instead.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return
            if message["type"] == "http.response.start":
                bad = _bad_header(list(message.get("headers", [])))
                if bad is not None:
                    replaced = True
                    log.error(
                        "response header %r cannot be sent; answering 500 instead",
                        bad.decode("latin-1")[:100],
                    )
                    await _send_internal_error(send)
                    return
            await send(message)

        await self.app(scope, receive, guarded_send)


async def _send_internal_error(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "code": "internal_error",
                "message": "the server hit an unexpected error",
                "details": [],
            }
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
