"""A request body that stops arriving is answered 408 (app/http/middleware.py BodyReadTimeout):
uvicorn has no body read timeout, and a route awaiting the rest held its task forever."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
from job_helpers import blobs, submit
from live_server import LiveServer

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("body-timeout")
    with LiveServer.in_folder(folder, workers=1, DNN_BODY_TIMEOUT_SECONDS=str(TIMEOUT)) as live:
        yield live


def stall(server: LiveServer, head: str, body: bytes) -> tuple[bytes, float]:
    """Send the head and part of the body, then nothing: what comes back, and when."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 10) as sock:
        started = time.monotonic()
        sock.sendall(head.encode() + body)
        received = b""
        # The server closes the connection after its answer.
        while chunk := sock.recv(65536):
            received += chunk
        return received, time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        # Read whole by the request guard before the route runs.
        ("/datasets", "application/json", b'{"name": "d", "features": [[1'),
        ("/datasets", "multipart/form-data; boundary=b", b"--b\r\nContent-Dispo"),
        ("/predict", "application/json", b'{"model_id": "m", "instances": [[1'),
        ("/v2/models/m/infer", "application/json", b'{"inputs": [{"na'),
    ],
)
def test_a_body_shorter_than_its_content_length_is_408(
    server: LiveServer, path: str, content_type: str, body: bytes
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) + 100}\r\n\r\n"
    )
    reply, elapsed = stall(server, head, body)
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT * 5
    answer = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    message = answer["error"] if path.startswith("/v2") else answer["error"]["message"]
    assert "no request body bytes arrived" in message
    if not path.startswith("/v2"):
        assert answer["error"]["code"] == "request_timeout"


def test_a_chunked_body_that_stalls_is_408(server: LiveServer) -> None:
    head = (
        "POST /datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    reply, _ = stall(server, head, b'5\r\n{"nam\r\n')
    assert reply.startswith(b"HTTP/1.1 408"), reply


def test_a_slow_body_that_keeps_arriving_is_read(server: LiveServer) -> None:
    """The limit is on silence, not on the whole body: each piece restarts it."""
    body = json.dumps({"name": "slow", "features": [[1.0], [2.0]], "labels": [0, 1]}).encode()
    head = (
        "POST /datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT * 10) as sock:
        sock.sendall(head.encode())
        for piece in (body[:10], body[10:30], body[30:]):
            time.sleep(TIMEOUT * 0.6)
            sock.sendall(piece)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 201"), received


def test_an_event_stream_outlives_the_body_timeout(server: LiveServer) -> None:
    """After its (empty) body, a request may wait on receive() as long as it likes: a stream
    listens there for its client to leave."""
    with server.client() as http:
        dataset = http.post("/datasets", json=blobs()).json()
        job_id = submit(http, dataset["id"], n_iterations=1_000_000)
        try:
            with http.stream("GET", f"/jobs/{job_id}/events") as stream:
                assert stream.status_code == 200
                started = time.monotonic()
                for _ in stream.iter_raw():
                    if time.monotonic() - started > TIMEOUT * 3:
                        return
            raise AssertionError(f"the stream ended after {time.monotonic() - started:.1f} s")
        finally:
            http.post(f"/jobs/{job_id}/cancel")
