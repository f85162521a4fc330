"""ASGI middleware: a request body limit enforced while the body streams in; a body read
timeout; sendable headers."""

from __future__ import annotations

import asyncio
import json
import logging
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.http.asgi import HttpMiddleware
from app.v2.codec import is_protocol_path, protocol_error_body

log = logging.getLogger("app")


class BodyTooLarge(Exception):
    pass


class _TrackedSend:
    """`send`, noting whether the response has started: an error can be answered only before."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        self.started = self.started or message["type"] == "http.response.start"
        await self._send(message)


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

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        tracked = _TrackedSend(send)
        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge:
            if not tracked.started:
                await self._reject(scope, send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        message = f"the request body exceeds this server's limit of {self.max_bytes} bytes"
        await _send_error(send, 413, "payload_too_large", message, scope.get("path", ""))


class BodyStalled(Exception):
    pass


class BodyReadTimeout(HttpMiddleware):
    """408 when a request body stops arriving: no bytes for `seconds` before its end.

    uvicorn times out idle connections between requests, never a body that stalls (a
    Content-Length larger than what is sent, a chunked body that stops): the route awaiting it
    held its task and connection forever. The wait is bounded only until the body has ended;
    after that, receive() waits for the client to leave, which a streamed answer (the event
    streams) listens for as long as it runs.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        super().__init__(app)
        self.seconds = seconds

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        body_ended = False

        async def timed_receive() -> Message:
            nonlocal body_ended
            if body_ended:
                return await receive()
            try:
                # asyncio.timeout arms one timer; wait_for ran receive() in a task of its own,
                # which cost a quarter of a single-row prediction's time on the event loop.
                async with asyncio.timeout(self.seconds):
                    message = await receive()
            except TimeoutError:
                raise BodyStalled from None
            body_ended = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        tracked = _TrackedSend(send)
        try:
            await self.app(scope, timed_receive, tracked)
        except BodyStalled:
            log.info(
                "request body stalled for %s s on %s %s",
                self.seconds,
                scope.get("method"),
                scope.get("path"),
            )
            if not tracked.started:
                message = f"no request body bytes arrived for {self.seconds:g} s; send it again"
                await _send_error(send, 408, "request_timeout", message, scope.get("path", ""))


async def _send_error(send: Send, status: int, code: str, message: str, path: str) -> None:
    """An error answer in the path's error shape; the connection closes after it, since the
    rest of the request's body was never read."""
    error = (
        protocol_error_body(message)
        if is_protocol_path(path)
        else {"error": {"code": code, "message": message, "details": []}}
    )
    body = json.dumps(error).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
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
