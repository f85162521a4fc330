"""Model names: one character set, defaults made valid, and a download header safe for any name."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
import uvicorn
from job_helpers import TERMINAL, blobs, submit, wait_for
from live_server import LiveServer, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from app.http.content_disposition import attachment
from app.http.middleware import ResponseHeaderGuard
from app.names import is_valid, to_model_name


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer.in_folder(tmp_path_factory.mktemp("names"), workers=1) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.mark.parametrize(
    "name", ["模型", "a@b", "a/b", "x\r\ny", " lead", "trail ", "-x", "n" * 101, "tab\tname"]
)
def test_names_outside_the_set_are_refused(http: httpx.Client, name: str) -> None:
    body = {"dataset": blobs(20), "name": name, "hyperparameters": {"n_iterations": 1}}
    error = error_of(http.post("/train", json=body), 422)
    assert error["details"][0]["loc"] == ["body", "name"]


def test_the_name_v2_lists_statistics_at_is_refused(http: httpx.Client) -> None:
    body = {"dataset": blobs(20), "name": "stats", "hyperparameters": {"n_iterations": 1}}
    error = error_of(http.post("/train", json=body), 422)
    assert error["details"][0]["loc"] == ["body", "name"]
    assert "/v2/models/stats" in error["details"][0]["msg"]
    assert not is_valid("stats") and is_valid("Stats") and is_valid("stats2")
    assert to_model_name("stats") == "stats-model"


def test_a_default_name_is_made_valid_not_refused(http: httpx.Client) -> None:
    rows = b"a,b,label\n" + b"".join(f"{i},{i % 3},{i % 2}\n".encode() for i in range(20))
    for filename, expected in [
        ("my data.csv", "my data.csv"),
        ("模型 données@v2/x.csv", "donnees_v2_x.csv"),
    ]:
        # dedupe=false: the same rows under another file name must be a dataset of that name.
        dataset = http.post(
            "/datasets", files={"file": (filename, rows)}, params={"dedupe": "false"}
        )
        assert dataset.status_code == 201, dataset.text
        job = http.post(
            "/train",
            json={"dataset_id": dataset.json()["id"], "hyperparameters": {"n_iterations": 2}},
        )
        assert job.status_code == 202, job.text
        done = wait_for(http, job.json()["job_id"], TERMINAL)
        assert done["status"] == "succeeded", done
        assert done["model_name"] == expected
    named = {"dataset": blobs(20), "name": "Net v1.2_b-3", "hyperparameters": {"n_iterations": 1}}
    assert http.post("/train", json=named).status_code == 202


@pytest.mark.parametrize(
    "stored",
    ["模型", 'quote " and \\ backslash', "line\r\nX-Injected: 1", "tab\tnul\x00", "plain"],
)
def test_weights_download_header_is_safe_for_any_stored_name(
    server: LiveServer, http: httpx.Client, stored: str
) -> None:
    # Rows written before names were checked can hold anything: write one straight to the table.
    dataset = http.post("/datasets", json=blobs(30)).json()
    job = wait_for(http, submit(http, dataset["id"], n_iterations=2), TERMINAL)
    assert job["status"] == "succeeded", job
    database = Path(server.database_url.removeprefix("sqlite:///"))
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE models SET name = ? WHERE id = ?", (stored, job["model_id"]))
    response = http.get(f"/models/{job['model_id']}/weights")
    assert response.status_code == 200, response.text
    header = response.headers["content-disposition"]
    assert header.isascii()
    assert "X-Injected" not in response.headers
    fallback = header.split('filename="', 1)[1].split('";', 1)[0]
    assert '"' not in fallback and "\\" not in fallback
    assert fallback.isprintable()
    encoded = header.split("filename*=UTF-8''", 1)[1]
    version = http.get(f"/models/{job['model_id']}").json()["version"]
    assert unquote(encoded, errors="strict") == f"{stored}-v{version}.safetensors"
    # The same keep-alive connection still answers.
    assert http.get("/healthz").status_code == 200


def test_name_rules_are_one_definition() -> None:
    for name in ["my data.csv", "a", "Net v1.2_b-3", "x" * 100]:
        assert is_valid(name)
        assert to_model_name(name) == name
    for text in ["模型", "", "@@@", "a\r\nb", " x ", "x" * 300, "Café"]:
        assert is_valid(to_model_name(text)), text
    assert attachment('a"b').startswith('attachment; filename="a_b"; ')


def _serve(app: ASGIApp) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, thread, f"http://127.0.0.1:{port}"


def test_an_unsendable_header_becomes_a_500_not_a_dropped_connection() -> None:
    async def bad(_request: Request) -> Response:
        return Response(b"x", headers={"x-bad": "a\r\nb"})

    async def good(_request: Request) -> Response:
        return Response(b"ok")

    app = Starlette(routes=[Route("/bad", bad), Route("/good", good)])
    for guarded in (False, True):
        server, thread, url = _serve(ResponseHeaderGuard(app) if guarded else app)
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                if not guarded:
                    # What the guard is for: the server drops the connection without an answer.
                    with pytest.raises(httpx.RemoteProtocolError):
                        client.get("/bad")
                    continue
                error = error_of(client.get("/bad"), 500)
                assert error["code"] == "internal_error"
                assert client.get("/good").text == "ok"
        finally:
            server.should_exit = True
            thread.join(10)
