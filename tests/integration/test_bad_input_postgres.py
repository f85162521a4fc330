"""Bad input on a live server over PostgreSQL: a clear 422, never the 500 that a NUL character
used to get there (PostgreSQL text cannot hold one; SQLite stored it), and nothing stored."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer

pytestmark = pytest.mark.integration
NUL = "\\u0000"  # as a JSON encoder writes the character


@pytest.fixture
def http(postgres_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    with (
        LiveServer(postgres_url, tmp_path / "server.log", workers=1) as server,
        server.client() as client,
    ):
        yield client
    assert "Traceback" not in (tmp_path / "server.log").read_text()


def test_nul_anywhere_in_a_request_is_422_and_stores_nothing(http: httpx.Client) -> None:
    rows = '"features": [[1.0], [2.0]], "labels": [0, 1]'
    bodies = {
        "/datasets": f'{{"name": "a{NUL}", {rows}}}',
        "/train": f'{{"dataset": {{"name": "x{NUL}", {rows}}}}}',
        "/predict": f'{{"model": "m{NUL}", "instances": [[1.0]]}}',
    }
    for path, body in bodies.items():
        response = http.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)
    for url in ("/jobs/%00", "/datasets/a%00", "/models?name=a%00", "/v2/models/a%00"):
        assert http.get(url).status_code == 422, url
    upload = http.post(
        "/datasets", files={"file": ("d.csv", b"a,b\n1,x\n2,y\n")}, data={"name": "d\x00"}
    )
    assert upload.status_code == 422, upload.text
    assert http.get("/datasets").json()["items"] == []
    assert http.get("/jobs").json()["items"] == []


def test_a_lone_surrogate_anywhere_in_a_json_body_is_422_and_stores_nothing(
    http: httpx.Client,
) -> None:
    """PostgreSQL (like UTF-8) cannot hold a lone surrogate; POST /train's was a 500."""
    rows = '"features": [[1.0], [2.0]], "labels": [0, 1]'
    for path, body in [
        ("/train", '{"dataset_id": "\\ud800"}'),
        ("/train", f'{{"dataset": {{"name": "x", {rows}}}, "resume_from": "\\udc00"}}'),
        ("/datasets", '{"name": "n", "features": [[1.0], [2.0]], "labels": ["\\ud800", "a"]}'),
        ("/sweeps", '{"dataset_id": "\\udfff", "grid": {"seed": [1]}}'),
        ("/predict", '{"model": "m", "alias": "\\ud83d", "instances": [[1.0]]}'),
    ]:
        response = http.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert "surrogate" in response.json()["error"]["message"], (path, response.text)
    assert http.get("/datasets").json()["items"] == []
    assert http.get("/jobs").json()["items"] == []
