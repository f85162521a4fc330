"""Predict inputs that used to give 500s or be coerced silently, on a live server:
values beyond a float32 model's range, numeric strings and booleans, an unreadable stored model."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import blobs, submit, wait_for
from live_server import LiveServer

from app.store.models import sha256_hex

NPY = "application/x-npy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    folder = tmp_path_factory.mktemp("predict-hardening")
    with LiveServer.in_folder(folder) as live, live.client() as http:
        yield http, folder / "service.db"


def train(http: httpx.Client, name: str) -> str:
    # dedupe=false: the model takes the dataset's name, so each test needs its own dataset.
    dataset = http.post("/datasets", json={**blobs(n=60), "name": name}, params={"dedupe": "false"})
    assert dataset.status_code in (200, 201), dataset.text  # 200: the same rows, stored once
    job = wait_for(http, submit(http, dataset.json()["id"], n_iterations=10), {"succeeded"})
    model_id: str = job["model_id"]
    return model_id


@pytest.fixture(scope="module")
def model_id(server: tuple[httpx.Client, Path]) -> str:
    return train(server[0], "float32-model")


def npy(array: np.ndarray[Any, Any]) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


def assert_names_the_float32_limit(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert "float32" in error["message"] and "3.40282e+38" in error["message"]


@pytest.mark.parametrize("value", [1e39, -1e39, 1e308])
def test_values_beyond_float32_are_422_naming_the_limit(
    server: tuple[httpx.Client, Path], model_id: str, value: float
) -> None:
    http, _ = server
    row = [0.0, value, 0.0, 0.0]
    assert_names_the_float32_limit(
        http.post("/predict", json={"model_id": model_id, "instances": [row]})
    )
    assert_names_the_float32_limit(
        http.post(
            "/predict",
            params={"model_id": model_id},
            content=npy(np.array([row])),
            headers={"Content-Type": NPY},
        )
    )


@pytest.mark.parametrize("bad", ["1", True, False, None, [1.0], {"x": 1}])
def test_features_are_json_numbers_only(
    server: tuple[httpx.Client, Path], model_id: str, bad: Any
) -> None:
    http, _ = server
    response = http.post("/predict", json={"model_id": model_id, "instances": [[1.0, bad, 0, 2]]})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["details"][0]["loc"][-3:] == ["instances", 0, 1]


@pytest.mark.parametrize("version", ["1", True, 1.0])
def test_the_version_is_a_json_integer_only(
    server: tuple[httpx.Client, Path], model_id: str, version: Any
) -> None:
    """`"version": true` used to be read as version 1, and "1" as 1."""
    http, _ = server
    exact = {"model": "float32-model", "version": 1, "instances": [[1.0, 0, -2, 3]]}
    assert http.post("/predict", json=exact).json()["model_id"] == model_id
    body = {"model": "float32-model", "version": version, "instances": [[1.0, 0, -2, 3]]}
    response = http.post("/predict", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["version"]


def test_integers_are_numbers(server: tuple[httpx.Client, Path], model_id: str) -> None:
    http, _ = server
    response = http.post("/predict", json={"model_id": model_id, "instances": [[1, 0, -2, 3]]})
    assert response.status_code == 200, response.text


def test_a_body_that_is_not_json_is_named_the_body(server: tuple[httpx.Client, Path]) -> None:
    http, _ = server
    response = http.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message == "body: Invalid JSON: key must be a string at line 1 column 2"


def test_the_npy_body_is_in_the_openapi_document(server: tuple[httpx.Client, Path]) -> None:
    http, _ = server
    operation = http.get("/openapi.json").json()["paths"]["/predict"]["post"]
    content = operation["requestBody"]["content"]
    assert set(content) == {"application/json", NPY, "application/octet-stream"}
    assert content[NPY]["schema"] == {"type": "string", "format": "binary"}
    assert {p["name"] for p in operation["parameters"]} >= {"model_id", "model", "version"}


def test_npy_body_by_model_name_and_version(
    server: tuple[httpx.Client, Path], model_id: str
) -> None:
    http, _ = server
    rows = np.random.default_rng(2).normal(size=(3, 4))
    by_id = http.post("/predict", json={"model_id": model_id, "instances": rows.tolist()})
    by_name = http.post(
        "/predict",
        params={"model": "float32-model", "version": 1},
        content=npy(rows),
        headers={"Content-Type": NPY},
    )
    assert by_name.status_code == 200, by_name.text
    assert by_name.json() == by_id.json()
    both = http.post(
        "/predict",
        params={"model": "float32-model", "model_id": model_id},
        content=npy(rows),
        headers={"Content-Type": NPY},
    )
    assert both.status_code == 422, both.text
    query_with_json = http.post(
        "/predict",
        params={"model_id": model_id},
        json={"model_id": model_id, "instances": [[1] * 4]},
    )
    assert query_with_json.status_code == 422, query_with_json.text
    unsupported = http.post("/predict", content=b"1,2,3,4", headers={"Content-Type": "text/csv"})
    assert unsupported.status_code == 415, unsupported.text
    assert unsupported.json()["error"]["code"] == "unsupported_media_type"


def test_a_blob_that_matches_its_sha256_but_cannot_be_parsed_is_409(
    server: tuple[httpx.Client, Path],
) -> None:
    http, db_path = server
    broken = train(http, "broken")
    garbage = b"\x10\x00\x00\x00\x00\x00\x00\x00" + b'{"x": 1}' + b" " * 8 + b"not a model"
    with sqlite3.connect(db_path) as db:
        db.execute(
            "UPDATE models SET weights = ?, sha256 = ? WHERE id = ?",
            (garbage, sha256_hex(garbage), broken),
        )
    rows = np.zeros((1, 4))
    for response in (
        http.post("/predict", json={"model_id": broken, "instances": rows.tolist()}),
        http.post(
            "/predict",
            params={"model_id": broken},
            content=npy(rows),
            headers={"Content-Type": NPY},
        ),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "model_integrity_error"
    v2 = http.post(
        "/v2/models/broken/infer",
        json={"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [0] * 4}]},
    )
    assert v2.status_code == 409, v2.text
    assert "cannot be read" in v2.json()["error"]
    ready = http.get("/v2/models/broken/ready")
    assert ready.status_code == 409 and isinstance(ready.json()["error"], str)
