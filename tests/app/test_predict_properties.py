"""Property-based: generated JSON, .npy and v2 predict bodies thrown at a live server.

Whatever arrives, the answer is 2xx or a 4xx in the error shape (the service's on /predict,
the protocol's string on /v2), never a 5xx. Fixed seed, bounded examples, so a failure
reproduces and CI time stays bounded.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st
from job_helpers import blobs, submit, wait_for
from live_server import LiveServer

pytestmark = pytest.mark.slow

SEED = 20261127
EXAMPLES = 80
BOUNDED = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    folder = tmp_path_factory.mktemp("predict-properties")
    with (
        LiveServer.in_folder(folder, DNN_MAX_PREDICT_ROWS="20") as server,
        server.client() as http,
    ):
        dataset = http.post("/datasets", json={**blobs(n=60), "name": "props"})
        assert dataset.status_code in (200, 201), dataset.text  # 200: the same rows, stored once
        job = wait_for(http, submit(http, dataset.json()["id"], n_iterations=10), {"succeeded"})
        yield http, job["model_id"]


def assert_answered(response: httpx.Response, protocol: bool = False) -> None:
    event(f"status {response.status_code}")
    assert response.status_code < 500, response.text
    if response.status_code < 400:
        return
    body = response.json()
    if protocol:
        assert set(body) == {"error"} and isinstance(body["error"], str), body
    else:
        error = body["error"]
        assert set(error) == {"code", "message", "details"}, body
        assert isinstance(error["message"], str) and isinstance(error["details"], list)


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e6, max_value=1e6),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([1e39, -1e39, 1e308, 3.4e38, 3.5e38, 5e-324, 0.0, -0.0]),
)
scalars = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=5))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=12,
)
rows = st.lists(st.one_of(numbers, scalars), min_size=0, max_size=6)
# Rows the model can take (four features of a sane size), so the 2xx path is exercised too.
moderate = st.floats(min_value=-1e4, max_value=1e4) | st.integers(-100, 100)
valid_rows = st.lists(st.lists(moderate, min_size=4, max_size=4), min_size=1, max_size=25)
instances = st.one_of(valid_rows, st.lists(rows, min_size=0, max_size=25), json_values)


@st.composite
def predict_bodies(draw: st.DrawFn, model_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    which = draw(st.sampled_from(["id", "id", "name", "both", "none", "junk"]))
    if which in ("id", "both"):
        body["model_id"] = model_id
    if which in ("name", "both"):
        body["model"] = "props"
        if draw(st.booleans()):
            body["version"] = draw(st.one_of(st.integers(), st.text(max_size=3)))
    if which == "junk":
        body["model_id"] = draw(json_values)
    if draw(st.integers(0, 9)):
        body["instances"] = draw(instances)
    if not draw(st.integers(0, 9)):
        body[draw(st.text(max_size=6))] = draw(json_values)
    return body


def test_generated_json_bodies_never_get_a_5xx(served: tuple[httpx.Client, str]) -> None:
    http, model_id = served

    @seed(SEED)
    @BOUNDED
    @given(body=predict_bodies(model_id), raw=st.booleans())
    def check(body: dict[str, Any], raw: bool) -> None:
        content = json.dumps(body, allow_nan=True).encode()
        if raw:  # the same bytes, damaged
            content = content[: len(content) // 2]
        response = http.post(
            "/predict", content=content, headers={"Content-Type": "application/json"}
        )
        assert_answered(response)

    check()


DTYPES = ["<f4", "<f8", ">f4", ">f8", "<f2", "<i8", "|u1", "|b1", "<U3", "<c8"]


@st.composite
def npy_bodies(draw: st.DrawFn) -> bytes:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=0, max_size=3)))
    valid = draw(st.booleans())
    if valid:
        dtype = np.dtype(draw(st.sampled_from(DTYPES[:4])))
        shape = (draw(st.integers(1, 25)), 4)
    size = int(np.prod(shape))
    values = draw(st.lists(moderate if valid else numbers, min_size=size, max_size=size))
    with np.errstate(all="ignore"):
        array = np.array(values, dtype=np.float64).reshape(shape).astype(dtype)
    out = io.BytesIO()
    np.save(out, np.asfortranarray(array) if draw(st.booleans()) else array)
    data = out.getvalue()
    damage = draw(st.sampled_from(["none", "none", "none", "truncate", "append", "flip"]))
    if damage == "truncate" and data:
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    elif damage == "flip" and data:
        at = draw(st.integers(0, len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    return data


def test_generated_npy_bodies_never_get_a_5xx(served: tuple[httpx.Client, str]) -> None:
    http, model_id = served

    @seed(SEED)
    @BOUNDED
    @given(
        body=npy_bodies(),
        media=st.sampled_from(["application/x-npy", "application/octet-stream"]),
        accept=st.sampled_from(["application/json", "application/x-npy"]),
    )
    def check(body: bytes, media: str, accept: str) -> None:
        response = http.post(
            "/predict",
            params={"model_id": model_id},
            content=body,
            headers={"Content-Type": media, "Accept": accept},
        )
        assert_answered(response)

    check()


V2_TYPES = ["FP16", "FP32", "FP64", "INT8", "INT64", "UINT8", "BYTES", "BOOL", "x"]


@st.composite
def v2_bodies(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    shape = draw(st.lists(st.integers(-1, 5), min_size=0, max_size=3))
    datatype = draw(st.sampled_from(V2_TYPES))
    tensor: dict[str, Any] = {"name": draw(st.sampled_from(["input", "input", "other"]))}
    binary = b""
    if draw(st.booleans()):  # well-formed rows the model can take, as JSON or binary
        datatype = draw(st.sampled_from(["FP32", "FP64"]))
        data = draw(valid_rows)
        shape = [len(data), 4]
        if draw(st.booleans()):
            tensor["data"] = data
        else:
            dtype = "<f4" if datatype == "FP32" else "<f8"
            binary = np.array(data, dtype=dtype).tobytes()
            tensor["parameters"] = {"binary_data_size": len(binary)}
    elif draw(st.booleans()):
        binary = draw(st.binary(max_size=64))
        tensor["parameters"] = {
            "binary_data_size": draw(st.integers(-2, 70) | st.just(len(binary)))
        }
    else:
        tensor["data"] = draw(instances)
    tensor |= {"shape": shape, "datatype": datatype}
    request: dict[str, Any] = {"inputs": [tensor]}
    if draw(st.booleans()):
        request["outputs"] = [
            {"name": draw(st.sampled_from(["predictions", "probabilities", "logits"]))}
        ]
    if draw(st.booleans()):
        request["parameters"] = {"binary_data_output": draw(st.booleans() | json_values)}
    header = json.dumps(request).encode()
    headers = {"Content-Type": "application/octet-stream"}
    if binary or draw(st.booleans()):
        headers["Inference-Header-Content-Length"] = str(
            draw(st.sampled_from([len(header), len(header), len(header) + 3, -1]))
        )
    return header + binary, headers


def test_generated_v2_bodies_never_get_a_5xx(served: tuple[httpx.Client, str]) -> None:
    http, _ = served

    @seed(SEED)
    @BOUNDED
    @given(request=v2_bodies())
    def check(request: tuple[bytes, dict[str, str]]) -> None:
        body, headers = request
        response = http.post("/v2/models/props/infer", content=body, headers=headers)
        assert_answered(response, protocol=True)

    check()
