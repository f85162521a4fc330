"""POST /predict with an application/x-npy body, against a live server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import blobs, submit, wait_for
from live_server import LiveServer

NPY = "application/x-npy"
MAX_ROWS = 50


@pytest.fixture(scope="module")
def npy_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder = tmp_path_factory.mktemp("npy-server")
    with (
        LiveServer.in_folder(folder, DNN_MAX_PREDICT_ROWS=str(MAX_ROWS)) as server,
        server.client() as http,
    ):
        yield http


@pytest.fixture(scope="module")
def model_id(npy_client: httpx.Client) -> str:
    dataset = npy_client.post("/datasets", json=blobs(n=80))
    assert dataset.status_code in (200, 201), dataset.text  # 200: the same rows, stored once
    job_id = submit(npy_client, dataset.json()["id"], hidden_layers=[4], n_iterations=20)
    job = wait_for(npy_client, job_id, {"succeeded", "failed"})
    assert job["status"] == "succeeded", job
    found: str = job["model_id"]
    return found


def npy_bytes(array: np.ndarray[Any, Any], allow_pickle: bool = False) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=allow_pickle)
    return out.getvalue()


def post_npy(
    client: httpx.Client, model_id: str, body: bytes, accept: str = "application/json"
) -> httpx.Response:
    return client.post(
        "/predict",
        params={"model_id": model_id},
        content=body,
        headers={"Content-Type": NPY, "Accept": accept},
    )


def rows(n: int = 12) -> np.ndarray[Any, Any]:
    return np.random.default_rng(1).normal(size=(n, 4)) * 2.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_npy_body_gives_the_json_routes_answer(
    npy_client: httpx.Client, model_id: str, dtype: str
) -> None:
    X = rows().astype(dtype)
    expected = npy_client.post("/predict", json={"model_id": model_id, "instances": X.tolist()})
    assert expected.status_code == 200, expected.text

    response = post_npy(npy_client, model_id, npy_bytes(X))

    assert response.status_code == 200, response.text
    got, want = response.json(), expected.json()
    assert got["model_id"] == want["model_id"] == model_id
    assert got["predictions"] == want["predictions"]
    np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-6)


def test_npy_answer_when_asked_for(npy_client: httpx.Client, model_id: str) -> None:
    X = rows()
    expected = npy_client.post("/predict", json={"model_id": model_id, "instances": X.tolist()})

    response = post_npy(npy_client, model_id, npy_bytes(X), accept=NPY)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NPY
    predictions = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert predictions.tolist() == expected.json()["predictions"]


@pytest.mark.parametrize(
    ("accept", "answer"),
    [
        (f"{NPY};q=0", "application/json"),  # .npy not acceptable: it was answered anyway
        (f"{NPY};q=0.5, application/json;q=0.9", "application/json"),
        (f"application/json;q=0, {NPY}", NPY),  # JSON not acceptable: it was answered anyway
        (f"{NPY}, */*", "application/json"),
        ("APPLICATION/X-NPY; q=1", NPY),
        (f"{NPY};q=nonsense", "application/json"),
    ],
)
def test_the_answer_follows_the_accept_header_and_its_weights(
    npy_client: httpx.Client, model_id: str, accept: str, answer: str
) -> None:
    response = post_npy(npy_client, model_id, npy_bytes(rows()), accept=accept)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == answer


def test_fortran_ordered_array_reads_as_the_same_rows(
    npy_client: httpx.Client, model_id: str
) -> None:
    X = rows()
    c_order = post_npy(npy_client, model_id, npy_bytes(X)).json()
    f_order = post_npy(npy_client, model_id, npy_bytes(np.asfortranarray(X))).json()
    assert f_order == c_order


def refused_bodies() -> dict[str, bytes]:
    good = npy_bytes(rows())
    with_nan = rows()
    with_nan[3, 2] = np.nan
    return {
        "not npy": b"instances=1,2,3,4",
        "empty": b"",
        "header only": good[:60],
        "truncated data": good[:-8],
        "trailing bytes": good + b"\x00" * 8,
        "object array (a pickle inside)": npy_bytes(
            np.array([[1.0, "x", None, 2.0]], dtype=object), allow_pickle=True
        ),
        "integers": npy_bytes(np.ones((3, 4), dtype=np.int64)),
        "strings": npy_bytes(np.array([["a", "b", "c", "d"]])),
        "one dimension": npy_bytes(np.ones(4)),
        "three dimensions": npy_bytes(np.ones((2, 2, 4))),
        "no rows": npy_bytes(np.ones((0, 4))),
        "wrong feature count": npy_bytes(np.ones((3, 5))),
        "NaN": npy_bytes(with_nan),
    }


@pytest.mark.parametrize("case", sorted(refused_bodies()))
def test_bad_bodies_are_refused_with_the_error_body(
    npy_client: httpx.Client, model_id: str, case: str
) -> None:
    response = post_npy(npy_client, model_id, refused_bodies()[case])

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"]


def test_too_many_rows_is_413(npy_client: httpx.Client, model_id: str) -> None:
    response = post_npy(npy_client, model_id, npy_bytes(np.ones((MAX_ROWS + 1, 4))))
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"


def test_unknown_or_missing_model(npy_client: httpx.Client) -> None:
    body = npy_bytes(rows())
    unknown = post_npy(npy_client, "nosuchmodel", body)
    assert unknown.status_code == 404, unknown.text
    assert unknown.json()["error"]["code"] == "not_found"

    missing = npy_client.post("/predict", content=body, headers={"Content-Type": NPY})
    assert missing.status_code == 422, missing.text
    assert missing.json()["error"]["code"] == "invalid_input"


def test_other_content_types_still_reach_the_json_route(
    npy_client: httpx.Client, model_id: str
) -> None:
    response = npy_client.post(
        "/predict",
        content=b"not json",
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
