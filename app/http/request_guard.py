"""Requests whose text is ambiguous or cannot be stored are refused here, before any route.

- NUL, in the URL or in a JSON body. No id, name, label or parameter of this service holds one,
  and PostgreSQL text cannot store or even compare one: a `%00` in a path or a `"\\u0000"` in
  a JSON string reached the database and came back as a 500 there (SQLite stored it; NumPy
  silently drops a label's trailing NUL). Refused once, here, the answer is the same clear 422
  on every route and every backend.
- A lone UTF-16 surrogate escape in a JSON body (`"\\ud800"`): no UTF-8 text holds one, and
  the str it decodes to failed as a 500 wherever it was encoded (hashing, the database).
- A body with a Content-Encoding (gzip, deflate...): no route decodes one, and read as it is a
  compressed body was parsed as garbage ("Invalid JSON", a CSV of nonsense) or, under a false
  "br", silently accepted. 415, naming the one coding accepted, is the answer RFC 9110 gives.
- A header that must appear once, sent twice (two Authorization headers): the app reads the
  first, a proxy in front of it may check the last; which one counts must never be a guess.
"""

from __future__ import annotations

import json
import re
from collections import deque

from starlette.types import Message, Receive, Scope, Send

from app.http.asgi import HttpMiddleware
from app.v2.codec import is_protocol_path, protocol_error_body

# A JSON string writes NUL as the escape \u0000 and a UTF-16 surrogate as \uD800-\uDFFF (a
# raw NUL byte is not valid JSON, raw surrogate bytes are not valid UTF-8: both fail to parse).
_ESCAPE = re.compile(rb"u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
_ESCAPE_LENGTH = 5
# What may follow a high surrogate's escape: the start of its low surrogate's, \uDC00-\uDFFF.
_LOW_SURROGATE_PREFIX = re.compile(rb"(?:\\(?:u(?:[dD](?:[c-fC-F][0-9a-fA-F]{0,2})?)?)?)?")
_LOW_SURROGATE_LENGTH = 6
_BACKSLASH = ord("\\")

NUL_MESSAGE = "the JSON body holds a NUL character (\\u0000); no text here holds one"
SURROGATE_MESSAGE = (
    "the JSON body holds a lone UTF-16 surrogate (an unpaired \\uD800-\\uDFFF escape); "
    "text must be valid Unicode"
)


def _is_json(scope: Scope) -> bool:
    """Bodies routes read as JSON: application/json, +json, or no Content-Type at all."""
    value = dict(scope["headers"]).get(b"content-type", b"")
    media_type = value.split(b";", 1)[0].strip().lower().decode("latin-1")
    return media_type in ("", "application/json") or media_type.endswith("+json")


class EscapeScanner:
    """Finds a JSON `\\u0000` escape, or a surrogate escape that is not half of a high-low
    pair, in a body fed chunk by chunk, wherever the chunks split it.

    Python's json module decodes a lone surrogate into a str that no UTF-8 encoder accepts:
    it passed validation and failed later as a 500 (hashing the request, or in the database).
    An escape is a `u` after an odd run of backslashes (`\\\\u0000` is a backslash, then the
    text u0000), so the scanner keeps the last bytes of the stream, and the length of the
    backslash run just before them; a high surrogate at the end of a chunk is kept until the
    next chunk says whether its low half follows.
    """

    def __init__(self) -> None:
        self._tail = b""
        self._backslashes_before_tail = 0

    def feed(self, chunk: bytes) -> str | None:
        """The problem with the stream so far (a message for the client), or None."""
        data = self._tail + chunk
        # Fewer bytes than an escape at the end: they may begin one that the next chunk ends.
        keep_from = max(len(data) - (_ESCAPE_LENGTH - 1), 0)
        start = 0
        while (match := _ESCAPE.search(data, start)) is not None:
            index, end = match.start(), match.end()
            if not self._escaped(data, index):
                start = index + 1
                continue
            if data[index + 1 : end] == b"0000":
                return NUL_MESSAGE
            if data[index + 2] not in b"89abAB":
                return SURROGATE_MESSAGE  # a low half with no high half just before it
            following = data[end : end + _LOW_SURROGATE_LENGTH]
            pairs = _LOW_SURROGATE_PREFIX.fullmatch(following) is not None
            if not pairs:
                return SURROGATE_MESSAGE
            if len(following) < _LOW_SURROGATE_LENGTH:
                keep_from = min(keep_from, index)
                break
            start = end + _LOW_SURROGATE_LENGTH
        head, self._tail = data[:keep_from], data[keep_from:]
        run = len(head) - len(head.rstrip(b"\\"))
        self._backslashes_before_tail = (
            self._backslashes_before_tail + run if run == len(head) else run
        )
        return None

    def _escaped(self, data: bytes, index: int) -> bool:
        first = index
        while first > 0 and data[first - 1] == _BACKSLASH:
            first -= 1
        run = index - first + (self._backslashes_before_tail if first == 0 else 0)
        return run % 2 == 1


# Request headers that carry one value (RFC 9110 singletons) and that this service reads.
SINGLETONS = (b"authorization", b"content-type", b"idempotency-key", b"last-event-id")


def _repeated_header(scope: Scope) -> str | None:
    names = [name.lower() for name, _ in scope["headers"]]
    return next((n.decode() for n in SINGLETONS if names.count(n) > 1), None)


class RequestGuard(HttpMiddleware):
    """400 for a singleton header sent twice; 422 for a NUL in the path or query, or a NUL or
    lone surrogate escape in a JSON body; 415 for a compressed body.

    A JSON body is read whole before the route runs (every JSON route reads it whole anyway);
    the chunks are then handed on one by one, so the body is not held twice.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        repeated = _repeated_header(scope)
        if repeated is not None:
            await _refuse(send, f"send the {repeated} header once, not twice", path, 400)
            return
        if "\x00" in path or b"%00" in scope.get("query_string", b""):
            await _refuse(
                send,
                "the URL holds a NUL character (%00); no id, name or parameter holds one",
                path,
            )
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        coding = dict(scope["headers"]).get(b"content-encoding", b"identity").strip().lower()
        if coding not in (b"", b"identity"):
            await _refuse(
                send,
                f"Content-Encoding {coding.decode('latin-1')[:40]!r} is not supported: "
                "send the body uncompressed",
                path,
                415,
            )
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        scanner = EscapeScanner()
        messages: deque[Message] = deque()
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            problem = scanner.feed(message.get("body", b""))
            if problem is not None:
                await _refuse(send, problem, path)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.popleft() if messages else await receive()

        await self.app(scope, replay, send)


_CODES = {400: "bad_request", 415: "unsupported_media_type", 422: "invalid_input"}


async def _refuse(send: Send, message: str, path: str, status: int = 422) -> None:
    """422 (the status every route with an id, a parameter or a JSON body documents), 415 or
    400."""
    code = _CODES[status]
    error = (
        protocol_error_body(message)
        if is_protocol_path(path)
        else {"error": {"code": code, "message": message, "details": []}}
    )
    body = json.dumps(error, separators=(",", ":")).encode()
    # The rest of a refused body is never read: the connection closes after this answer.
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    if status == 415:
        headers.append((b"accept-encoding", b"identity"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
