"""The Open Inference Protocol v2 on a live server, spoken by Triton's own HTTP client."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from live_server import LiveServer
from registry_helpers import npz_bytes
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.slow


def train(client: httpx.Client, name: str, features: np.ndarray, labels: list[Any]) -> str:
    return train_on(client, name, {"dataset": {"features": features.tolist(), "labels": labels}})


def train_on(client: httpx.Client, name: str, dataset: dict[str, Any], **changes: Any) -> str:
    """The model id of a finished job on dataset ({"dataset": ...} or {"dataset_id": ...})."""
    hyperparameters = {"hidden_layers": [6], "n_iterations": 150, "learning_rate": 0.05}
    body = {"name": name, **dataset, "hyperparameters": {**hyperparameters, **changes}}
    submitted = client.post("/train", json=body)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] == "succeeded":
            return str(job["model_id"])
        assert job["status"] in {"queued", "running"}, job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture
def data() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 60)
    X = rng.normal(size=(60, 3)) + np.where(y[:, None] == 1, 1.0, -1.0)
    return X, ["cat" if label else "dog" for label in y]


def test_triton_client_round_trips_predict(
    live_server: LiveServer, client: httpx.Client, data: tuple[np.ndarray, list[str]]
) -> None:
    X, labels = data
    first = train(client, "blobs", X, labels)
    second = train(client, "blobs", X, labels)
    triton_client = triton.InferenceServerClient(f"127.0.0.1:{live_server.port}")
    assert triton_client.is_server_live()
    assert triton_client.is_server_ready()
    assert triton_client.get_server_metadata()["name"] == "dnn-service"
    assert triton_client.is_model_ready("blobs")
    assert triton_client.is_model_ready("blobs", "1")

    metadata = triton_client.get_model_metadata("blobs")
    assert metadata["versions"] == ["1", "2"]
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3]}]
    assert {o["name"]: o["datatype"] for o in metadata["outputs"]} == {
        "predictions": "BYTES",
        "probabilities": "FP32",
    }

    rows = X[:7].astype(np.float32)
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=False)
    outputs = [
        triton.InferRequestedOutput("predictions", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=False),
    ]
    for version, model_id in (("", second), ("1", first)):
        result = triton_client.infer(
            "blobs", [tensor], model_version=version, outputs=outputs, request_id="r1"
        )
        response = result.get_response()
        assert response["model_version"] == ("2" if version == "" else "1")
        assert response["id"] == "r1"
        expected = client.post(
            "/predict", json={"model_id": model_id, "instances": rows.tolist()}
        ).json()
        assert result.as_numpy("predictions").tolist() == expected["predictions"]
        probabilities = result.as_numpy("probabilities")
        assert probabilities.shape == (7, 2)
        np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-6)

    only = triton_client.infer(
        "blobs", [tensor], outputs=[triton.InferRequestedOutput("predictions", binary_data=False)]
    )
    assert [o["name"] for o in only.get_response()["outputs"]] == ["predictions"]

    with pytest.raises(InferenceServerException) as missing:
        triton_client.get_model_metadata("nope")
    assert missing.value.status() == "404"
    assert "does not exist" in missing.value.message()


def test_nested_integer_data_and_protocol_errors(
    client: httpx.Client, data: tuple[np.ndarray, list[str]]
) -> None:
    X, labels = data
    model_id = train(client, "ints", np.round(X), labels)
    rows = np.round(X[:4]).astype(int)
    infer = client.post(
        "/v2/models/ints/versions/1/infer",
        json={
            "inputs": [
                {"name": "input", "shape": [4, 3], "datatype": "INT32", "data": rows.tolist()}
            ]
        },
    )
    assert infer.status_code == 200, infer.text
    predictions = next(o for o in infer.json()["outputs"] if o["name"] == "predictions")
    expected = client.post("/predict", json={"model_id": model_id, "instances": rows.tolist()})
    assert predictions["data"] == expected.json()["predictions"]
    assert predictions["shape"] == [4]

    def tensor(**changes: Any) -> dict[str, Any]:
        base = {"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}
        return {"inputs": [{**base, **changes}]}

    bad_requests: list[tuple[str, Any, int, str]] = [
        ("/v2/models/ints/infer", tensor(shape=[2, 4], data=[1] * 8), 422, "expects 3"),
        ("/v2/models/ints/infer", tensor(data=[1, 2, 3]), 400, "needs 6"),
        ("/v2/models/ints/infer", tensor(datatype="BYTES"), 400, "not supported"),
        ("/v2/models/ints/infer", tensor(datatype="INT8", data=[1, 2, 3, 4, 5, 300]), 400, "range"),
        ("/v2/models/ints/infer", tensor(datatype="INT32", data=[1.5] * 6), 400, "integers"),
        ("/v2/models/ints/infer", tensor(data=[[1, 2, 3], [4, 5]]), 400, "ragged"),
        # A 500: NumPy cannot reshape to more than 64 dimensions.
        ("/v2/models/ints/infer", tensor(shape=[1] * 65, data=[1]), 400, "65 dimensions"),
        ("/v2/models/ints/infer", tensor(data=["a"] * 6), 400, "numbers"),
        # A dimension of true or 2.0 was read as 1 or 2.
        ("/v2/models/ints/infer", tensor(shape=[True, 6], data=[1] * 6), 400, "shape.0"),
        ("/v2/models/ints/infer", tensor(shape=[2.0, 3]), 400, "valid integer"),
        ("/v2/models/ints/infer", tensor(name="x"), 400, "'input'"),
        (
            "/v2/models/ints/infer",
            {**tensor(), "outputs": [{"name": "logits"}]},
            400,
            "unknown output",
        ),
        ("/v2/models/ints/infer", {"inputs": []}, 400, "inputs"),
        ("/v2/models/ints/versions/9/infer", tensor(), 404, "version 9"),
        ("/v2/models/ints/versions/x/infer", tensor(), 400, "positive integer"),
        ("/v2/models/other/infer", tensor(), 404, "does not exist"),
    ]
    for path, body, status, message in bad_requests:
        response = client.post(path, json=body)
        assert response.status_code == status, (body, response.text)
        error = response.json()["error"]
        assert isinstance(error, str) and message in error, (body, error)

    not_json = client.post("/v2/models/ints/infer", content=b"{not json")
    assert not_json.status_code == 400 and isinstance(not_json.json()["error"], str)
    # The rest of the API keeps its structured error body.
    assert client.get("/models/nope").json()["error"]["code"] == "not_found"


def test_triton_client_with_its_default_arguments(
    live_server: LiveServer, client: httpx.Client, data: tuple[np.ndarray, list[str]]
) -> None:
    X, labels = data
    model_id = train(client, "defaults", X, labels)
    triton_client = triton.InferenceServerClient(f"127.0.0.1:{live_server.port}")

    assert triton_client.get_model_metadata("defaults")["versions"] == ["1"]
    config = triton_client.get_model_config("defaults")
    assert config["name"] == "defaults"
    assert config["input"] == [
        {"name": "input", "data_type": "TYPE_FP32", "format": "FORMAT_NONE", "dims": [-1, 3]}
    ]
    assert {o["name"]: o["data_type"] for o in config["output"]} == {
        "predictions": "TYPE_STRING",
        "probabilities": "TYPE_FP32",
    }
    assert triton_client.get_model_config("defaults", "1")["name"] == "defaults"
    assert triton_client.get_model_repository_index() == [
        {"name": "defaults", "version": "1", "state": "READY", "reason": ""}
    ]

    rows = X[:9].astype(np.float32)
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)  # binary tensor data: the default
    expected = client.post(
        "/predict", json={"model_id": model_id, "instances": rows.tolist()}
    ).json()
    requested = [triton.InferRequestedOutput(n) for n in ("predictions", "probabilities")]
    for outputs in (None, requested):  # no outputs named: every output, binary
        result = triton_client.infer("defaults", [tensor], outputs=outputs)
        response = result.get_response()
        assert all("binary_data_size" in o["parameters"] for o in response["outputs"])
        predictions = [label.decode() for label in result.as_numpy("predictions")]
        assert predictions == expected["predictions"]
        probabilities = result.as_numpy("probabilities")
        np.testing.assert_array_equal(probabilities, np.float32(expected["probabilities"]))

    stats = triton_client.get_inference_statistics("defaults")["model_stats"]
    assert [(s["name"], s["version"]) for s in stats] == [("defaults", "1")]
    # Every route's predictions count (the JSON /predict above, then the two infers).
    assert stats[0]["inference_count"] == 27
    assert stats[0]["execution_count"] == 3
    assert stats[0]["inference_stats"]["success"]["count"] == 3
    everything = triton_client.get_inference_statistics()["model_stats"]
    assert [s["name"] for s in everything] == ["defaults"]

    # Errors reach tritonclient as the protocol's string, so it reports them instead of crashing.
    with pytest.raises(InferenceServerException) as missing:
        triton_client.get_model_config("nope")
    assert missing.value.status() == "404" and "does not exist" in missing.value.message()

    # async_infer: concurrent requests, each answered under its own id, counted like the rest.
    pending = [
        triton_client.async_infer("defaults", [tensor], request_id=f"a{i}") for i in range(4)
    ]
    for i, handle in enumerate(pending):
        result = handle.get_result()
        assert result.get_response()["id"] == f"a{i}"
        np.testing.assert_array_equal(result.as_numpy("probabilities"), probabilities)
    with pytest.raises(InferenceServerException) as no_version:
        triton_client.async_infer("defaults", [tensor], model_version="2").get_result()
    assert no_version.value.status() == "404"
    counted = triton_client.get_inference_statistics("defaults", "1")["model_stats"][0]
    assert counted["execution_count"] == 3 + 4
    assert counted["inference_count"] == 27 + 4 * 9


def test_every_v2_path_answers_errors_in_the_protocols_shape(
    client: httpx.Client, data: tuple[np.ndarray, list[str]]
) -> None:
    X, labels = data
    train(client, "shape", X, labels)
    huge = {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP64", "data": [1e308] * 3}]}
    probes: list[tuple[httpx.Response, int]] = [
        (client.get("/v2/nowhere"), 404),
        (client.get("/v2/models/shape/versions/1/nothing"), 404),
        (client.delete("/v2/models/shape"), 405),
        (client.put("/v2/models/shape/infer", json={}), 405),
        (client.get("/v2/models/shape/versions/²"), 400),
        (client.get("/v2/models/shape/versions/²/ready"), 400),
        (client.post("/v2/models/shape/versions/²/infer", json=huge), 400),
        (
            client.post(
                "/v2/repository/index", content=b"[", headers={"content-type": "application/json"}
            ),
            422,
        ),
        (client.post("/v2/models/shape/infer", json=huge), 422),
        (
            client.post("/v2/models/shape/infer", json=huge, headers={"content-encoding": "gzip"}),
            415,
        ),
        (client.get("/v2/models/nope/stats"), 404),
    ]
    for response, status in probes:
        assert response.status_code == status, (response.request.url, response.text)
        body = response.json()
        assert set(body) == {"error"} and isinstance(body["error"], str), body
    overflow = probes[8][0].json()["error"]
    assert "float32" in overflow and "3.40282e+38" in overflow
    # Outside /v2 the service keeps its structured body.
    assert client.get("/nowhere").json()["error"]["code"] == "not_found"


def test_the_documented_version_pattern_is_what_the_routes_read(client: httpx.Client) -> None:
    """The schema said any string; schemathesis' "0" then got a 400 for a schema-valid request."""
    paths = client.get("/openapi.json").json()["paths"]
    parameters = paths["/v2/models/{name}/versions/{version}/infer"]["post"]["parameters"]
    pattern = next(p for p in parameters if p["name"] == "version")["schema"]["pattern"]
    for version, readable in (("1", True), ("123456789", True), ("0", False), ("01", False)):
        assert (re.fullmatch(pattern.strip("^$"), version) is not None) is readable, version
    assert client.get("/v2/models/nope/versions/1").status_code == 404
    assert client.get("/v2/models/nope/versions/0").status_code == 400
    # What the pattern refuses, the routes refuse: "01" was read as version 1.
    assert client.get("/v2/models/nope/versions/01").status_code == 400


def test_image_models_take_their_sample_shape_or_flat_rows_and_nothing_else(
    live_server: LiveServer, client: httpx.Client
) -> None:
    rng = np.random.default_rng(2)
    images = rng.normal(size=(60, 3, 3, 2))
    y = np.array(["x", "y", "z"])[np.arange(60) % 3]
    upload = client.post(
        "/datasets", files={"file": ("img.npz", npz_bytes(images, y), "application/zip")}
    )
    assert upload.status_code == 201, upload.text
    model_id = train_on(client, "pictures", {"dataset_id": upload.json()["id"]})
    triton_client = triton.InferenceServerClient(f"127.0.0.1:{live_server.port}")
    assert triton_client.get_model_metadata("pictures")["inputs"][0]["shape"] == [-1, 3, 3, 2]

    batch = images[:4].astype(np.float32)
    expected = client.post(
        "/predict", json={"model_id": model_id, "instances": batch.reshape(4, -1).tolist()}
    ).json()
    for shape in ([4, 3, 3, 2], [4, 18]):
        tensor = triton.InferInput("input", shape, "FP32")
        tensor.set_data_from_numpy(batch.reshape(shape))
        result = triton_client.infer("pictures", [tensor])
        assert [p.decode() for p in result.as_numpy("predictions")] == expected["predictions"]
        np.testing.assert_array_equal(
            result.as_numpy("probabilities"), np.float32(expected["probabilities"])
        )
    # 18 values per sample, but not a 3x3x2 image: refused like any input the model cannot take.
    for shape in ([4, 3, 6], [4, 2, 3, 3], [4, 18, 1]):
        tensor = triton.InferInput("input", shape, "FP32")
        tensor.set_data_from_numpy(batch.reshape(shape))
        with pytest.raises(InferenceServerException) as refused:
            triton_client.infer("pictures", [tensor])
        assert refused.value.status() == "422"
        assert "do not match the model's input shape [3, 3, 2]" in refused.value.message()


def test_probes_may_ask_with_head(client: httpx.Client) -> None:
    for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/healthz", "/readyz"):
        got = client.get(path)
        head = client.head(path)
        assert (head.status_code, head.content) == (got.status_code, b""), path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
    # The document lists the GETs only.
    paths = client.get("/openapi.json").json()["paths"]
    assert not any("head" in paths[path] for path in ("/v2", "/v2/health/live", "/healthz"))


def test_json_values_beyond_their_datatype_are_refused_naming_the_input(
    live_server: LiveServer, client: httpx.Client, data: tuple[np.ndarray, list[str]]
) -> None:
    """A float64 model held 1e39 sent as FP32 and 70000 as FP16: it answered for values the
    declared datatype cannot hold (a float32 model turned the FP16 one into 70000 too)."""
    X, labels = data
    train_on(
        client, "wide", {"dataset": {"features": X.tolist(), "labels": labels}}, dtype="float64"
    )

    for datatype, value, limit in (("FP32", 1e39, "3.40282e+38"), ("FP16", 70000, "65504")):
        tensor = {"name": "input", "shape": [1, 3], "datatype": datatype, "data": [0, value, 0]}
        refused = client.post("/v2/models/wide/infer", json={"inputs": [tensor]})
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error == (
            f"input 'input' element 1 (row-major) is {value:g}, beyond the range of datatype "
            f"{datatype} (±{limit})"
        )

    # What tritonclient sends as JSON now means what it sends as binary data.
    rows = np.array([[0.1, -1.3, 2.7]], dtype=np.float16)
    triton_client = triton.InferenceServerClient(f"127.0.0.1:{live_server.port}")
    answers = []
    for binary in (True, False):
        tensor = triton.InferInput("input", [1, 3], "FP16")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        answers.append(triton_client.infer("wide", [tensor]).as_numpy("probabilities"))
    np.testing.assert_array_equal(answers[0], answers[1])
