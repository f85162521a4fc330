"""ONNX export: onnxruntime on the exported graph gives what /predict gives, on a live server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from live_server import LiveServer
from registry_helpers import (
    classes_problem,
    create_key,
    json_dataset,
    npz_bytes,
    tenant_client,
    train_model,
)

from app.export_onnx import HIDDEN_ACTIVATIONS, OPSET, to_onnx
from core import Network
from core.activations import ACTIVATIONS
from core.outputs import ACTIVATE

TOLERANCE = 1e-5
# A float64 model's graph is float64 throughout: as /predict, to rounding in the last places.
FLOAT64_RTOL = 1e-9
INPUT_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


def run_onnx(data: bytes, X: np.ndarray) -> dict[str, np.ndarray]:
    """The graph's outputs for X, given in the graph's input dtype (X rounded to it)."""
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    rows = X.astype(INPUT_DTYPES[session.get_inputs()[0].type])
    return dict(zip(names, session.run(None, {"input": rows}), strict=True))


def assert_matches(actual: np.ndarray, expected: np.ndarray, dtype: str) -> None:
    assert actual.dtype == np.dtype(dtype)
    if dtype == "float64":
        np.testing.assert_allclose(actual, expected, rtol=FLOAT64_RTOL, atol=0)
    else:
        np.testing.assert_allclose(actual, expected, atol=TOLERANCE, rtol=0)


def test_every_core_activation_has_an_onnx_operator() -> None:
    assert set(HIDDEN_ACTIVATIONS) == set(ACTIVATIONS)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", sorted(ACTIVATE))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_graph_matches_the_core_forward_pass(activation: str, output: str, dtype: str) -> None:
    rng = np.random.default_rng(7)
    n_out = {"sigmoid": 1, "softmax": 3, "identity": 2}[output]
    net = Network([5, 7, 6, n_out], activation, output, init="xavier", seed=3, dtype=dtype)
    net.feature_mean = rng.normal(size=5).astype(dtype)
    net.feature_scale = (rng.random(5) + 0.5).astype(dtype)
    X = rng.normal(size=(100, 5)).astype(dtype)
    result = run_onnx(to_onnx(net), X)
    if output == "identity":
        expected = net.forward(net.prepare_inputs(X))
        assert_matches(result["predictions"], expected, dtype)
        return
    expected = net.predict_proba(X)
    assert_matches(result["probabilities"], expected, dtype)
    assert result["class_index"].dtype == np.int64
    np.testing.assert_array_equal(result["class_index"], expected.argmax(axis=1))


@pytest.mark.parametrize("standardized", [True, False])
@pytest.mark.parametrize("hidden", [[], [4]])
@pytest.mark.parametrize("output", sorted(ACTIVATE))
def test_batches_of_zero_and_one_rows(output: str, hidden: list[int], standardized: bool) -> None:
    rng = np.random.default_rng(11)
    n_out = {"sigmoid": 1, "softmax": 3, "identity": 1}[output]
    net = Network([5, *hidden, n_out], "tanh", output, init="xavier", seed=4)
    if standardized:
        net.feature_mean = rng.normal(size=5).astype(np.float32)
        net.feature_scale = (rng.random(5) + 0.5).astype(np.float32)
    data = to_onnx(net)
    onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    width = 2 if output == "sigmoid" else n_out

    empty = run_onnx(data, np.zeros((0, 5)))
    assert [value.shape[0] for value in empty.values()] == [0] * len(empty)
    assert next(iter(empty.values())).shape == (0, width)

    X = rng.normal(size=(1, 5))
    one = run_onnx(data, X)
    if output == "identity":
        expected = net.forward(net.prepare_inputs(X.astype(np.float32)))
        np.testing.assert_allclose(one["predictions"], expected, atol=TOLERANCE, rtol=0)
    else:
        expected = net.predict_proba(X.astype(np.float32))
        np.testing.assert_allclose(one["probabilities"], expected, atol=TOLERANCE, rtol=0)
        assert one["class_index"].shape == (1,)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_probability_of_one_half_is_class_one_as_in_predict(dtype: str) -> None:
    # All weights zero: p = 0.5 for every row, which the core's predict calls class 1.
    net = Network.from_parameters(
        [np.zeros((3, 1))], [np.zeros(1)], output="sigmoid", dtype=dtype, classes=["no", "yes"]
    )
    X = np.random.default_rng(1).normal(size=(4, 3))
    result = run_onnx(to_onnx(net), X)
    np.testing.assert_array_equal(result["probabilities"], np.full((4, 2), 0.5))
    assert list(net.predict(X)) == ["yes"] * 4
    np.testing.assert_array_equal(result["class_index"], [1, 1, 1, 1])
    # A softmax tie still goes to the first class, as the core's argmax does.
    tie = Network.from_parameters(
        [np.zeros((3, 3))], [np.zeros(3)], output="softmax", dtype=dtype, classes=["a", "b", "c"]
    )
    assert list(tie.predict(X)) == ["a"] * 4
    np.testing.assert_array_equal(run_onnx(to_onnx(tie), X)["class_index"], [0, 0, 0, 0])


@pytest.mark.parametrize("output", sorted(ACTIVATE))
def test_a_float64_model_with_large_outputs_is_exported_in_float64(output: str) -> None:
    # Outputs around 9,000: float32 holds them to about 5e-4, so a float32 graph differed from
    # /predict by more than 1e-5.
    rng = np.random.default_rng(5)
    n_out = {"sigmoid": 1, "softmax": 3, "identity": 2}[output]
    net = Network([4, 6, n_out], "leaky_relu", output, init="xavier", seed=2, dtype="float64")
    net.biases[-1] = net.biases[-1] + 9000.0
    # Rows of a wide spread for the regression; moderate logits for the classifiers, whose
    # softmax turns a logit's last-place difference into a relative one scaled by the logit.
    X = rng.normal(size=(50, 4)) * (1e3 if output == "identity" else 1.0)
    model = onnx.load_from_string(to_onnx(net))
    (graph_input,) = model.graph.input
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    assert not [node for node in model.graph.node if node.op_type == "Cast"]
    result = run_onnx(model.SerializeToString(), X)
    if output == "identity":
        expected = net.forward(net.prepare_inputs(X))
        assert np.abs(expected).min() > 8000
        np.testing.assert_allclose(result["predictions"], expected, rtol=FLOAT64_RTOL, atol=0)
    else:
        np.testing.assert_allclose(
            result["probabilities"], net.predict_proba(X), rtol=FLOAT64_RTOL, atol=0
        )


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("onnx")
    server = LiveServer.in_folder(folder)
    keys = {tenant: create_key(server.database_url, tenant) for tenant in ("alice", "bob")}
    with server.start(), tenant_client(server.url, keys["alice"]) as alice:
        X2, y2 = classes_problem(300, 2, seed=1)
        X3, y3 = classes_problem(300, 3, seed=2)
        rng = np.random.default_rng(3)
        Xr = rng.normal(size=(300, 4))
        yr = Xr @ np.array([1.5, -2.0, 0.5, 3.0]) + 0.1 * rng.normal(size=300)
        images = rng.random((200, 8, 8))
        y_images = (images[:, :4].mean(axis=(1, 2)) > images[:, 4:].mean(axis=(1, 2))).astype(int)
        uploads = {
            "binary": alice.post("/datasets", json=json_dataset(X2, y2, "binary")),
            "multiclass": alice.post("/datasets", json=json_dataset(X3, y3, "multi")),
            "regression": alice.post("/datasets", json=json_dataset(Xr, yr, "regression")),
            "image": alice.post(
                "/datasets",
                files={"file": ("digits.npz", npz_bytes(images, y_images), "application/zip")},
            ),
        }
        datasets = {}
        for kind, response in uploads.items():
            assert response.status_code == 201, response.text
            datasets[kind] = response.json()
        assert datasets["image"]["input_shape"] == [8, 8]
        activation = {
            "binary": "relu",
            "multiclass": "tanh",
            "regression": "sigmoid",
            "image": "leaky_relu",
        }
        trained = {
            kind: train_model(alice, dataset["id"], f"onnx-{kind}", activation=activation[kind])
            for kind, dataset in datasets.items()
        }
        yield {
            "server": server,
            "alice": alice,
            "keys": keys,
            "models": trained,
            "rows": {
                "binary": X2[:100],
                "multiclass": X3[:100],
                "regression": Xr[:100],
                "image": images[:100].reshape(100, 64),
            },
        }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression", "image"])
def test_onnxruntime_equals_predict(service: dict[str, Any], kind: str) -> None:
    alice: httpx.Client = service["alice"]
    model_id = service["models"][kind]
    rows = np.asarray(service["rows"][kind], dtype=np.float32)
    exported = alice.get(f"/models/{model_id}/onnx")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/octet-stream"
    assert ".onnx" in exported.headers["content-disposition"]

    body = {"model_id": model_id, "instances": rows.astype(float).tolist()}
    answer = alice.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    predicted = answer.json()
    result = run_onnx(exported.content, rows)

    model = onnx.load_from_string(exported.content)
    assert any(op.domain == "" and op.version >= OPSET for op in model.opset_import)
    props = {prop.key: prop.value for prop in model.metadata_props}
    assert props["model_id"] == model_id
    assert json.loads(props["input_shape"]) == ([8, 8] if kind == "image" else [4])
    (graph_input,) = model.graph.input
    dims = [d.dim_value or d.dim_param for d in graph_input.type.tensor_type.shape.dim]
    assert dims == ["N", 64 if kind == "image" else 4]
    assert graph_input.type.tensor_type.elem_type == onnx.TensorProto.FLOAT

    if kind == "regression":
        assert json.loads(props["classes"]) is None
        expected = np.asarray(predicted["predictions"]).reshape(100, -1)
        np.testing.assert_allclose(result["predictions"], expected, atol=TOLERANCE, rtol=0)
        return
    classes = json.loads(props["classes"])
    assert classes == sorted(set(classes)) and len(classes) == (3 if kind == "multiclass" else 2)
    np.testing.assert_allclose(
        result["probabilities"], predicted["probabilities"], atol=TOLERANCE, rtol=0
    )
    labels = [classes[index] for index in result["class_index"]]
    assert labels == predicted["predictions"]


@pytest.mark.slow
def test_a_float64_model_matches_predict_on_float64_rows(service: dict[str, Any]) -> None:
    """/predict reads float64 rows in full; a float64 model's graph takes and answers float64."""
    alice: httpx.Client = service["alice"]
    X, y = classes_problem(200, 3, seed=5)
    upload = alice.post("/datasets", json=json_dataset(X, y, "wide"))
    assert upload.status_code == 201, upload.text
    model_id = train_model(alice, upload.json()["id"], "onnx-wide", dtype="float64")
    exported = alice.get(f"/models/{model_id}/onnx")
    assert exported.status_code == 200, exported.text
    model = onnx.load_from_string(exported.content)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    props = {p.key: p.value for p in model.metadata_props}
    assert props["dtype"] == "float64"
    for rows in (X[:1], X[:50] * 3):
        body = {"model_id": model_id, "instances": rows.tolist()}
        predicted = alice.post("/predict", json=body).json()
        result = run_onnx(exported.content, rows)
        np.testing.assert_allclose(
            result["probabilities"], predicted["probabilities"], rtol=FLOAT64_RTOL, atol=0
        )
        classes = json.loads(props["classes"])
        assert [classes[i] for i in result["class_index"]] == predicted["predictions"]


@pytest.mark.slow
def test_a_float64_regression_with_large_outputs_matches_predict(service: dict[str, Any]) -> None:
    # Targets around 9,000: a float32 graph's answers were rounded to about 5e-4 of /predict's.
    alice: httpx.Client = service["alice"]
    rng = np.random.default_rng(8)
    X = rng.normal(size=(200, 3))
    y = 9000.0 + 50.0 * X @ np.array([1.0, -2.0, 0.5])
    upload = alice.post("/datasets", json=json_dataset(X, y, "large-targets"))
    assert upload.status_code == 201, upload.text
    model_id = train_model(
        alice,
        upload.json()["id"],
        "onnx-large",
        dtype="float64",
        hidden_layers=[4],
        learning_rate=0.1,
        n_iterations=300,
    )
    exported = alice.get(f"/models/{model_id}/onnx")
    assert exported.status_code == 200, exported.text
    body = {"model_id": model_id, "instances": X[:100].tolist()}
    answer = alice.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    expected = np.asarray(answer.json()["predictions"]).reshape(100, -1)
    assert np.abs(expected).min() > 1000  # where float32 rounds by more than 1e-5
    result = run_onnx(exported.content, X[:100])["predictions"]
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=FLOAT64_RTOL, atol=0)


@pytest.mark.slow
def test_export_is_tenant_scoped(service: dict[str, Any]) -> None:
    server: LiveServer = service["server"]
    with tenant_client(server.url, service["keys"]["bob"]) as bob:
        refused = bob.get(f"/models/{service['models']['binary']}/onnx")
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "not_found"
    missing = service["alice"].get("/models/no-such-model/onnx")
    assert missing.status_code == 404


@pytest.mark.slow
def test_cli_export_writes_the_same_model(service: dict[str, Any], tmp_path: Path) -> None:
    server: LiveServer = service["server"]
    model_id = service["models"]["multiclass"]
    target = tmp_path / "model.onnx"
    command = [
        sys.executable,
        "-m",
        "app.cli.main",
        "export",
        "onnx-multiclass",
        "--format",
        "onnx",
    ]
    connection = ["--url", server.url, "--api-key", service["keys"]["alice"]]
    done = subprocess.run(
        [*command, "-o", str(target), *connection],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(target)
    assert target.read_bytes() == service["alice"].get(f"/models/{model_id}/onnx").content


@pytest.mark.slow
def test_without_onnx_the_route_answers_501_with_the_hint(tmp_path: Path) -> None:
    # A module named onnx that fails to import stands for a server installed without the extra.
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "onnx.py").write_text("raise ImportError('onnx is not installed here')\n")
    with LiveServer.in_folder(tmp_path, PYTHONPATH=str(shadow)) as server, server.client() as http:
        dataset = http.post("/datasets", json=json_dataset(*classes_problem(60, 2, 4), "small"))
        model_id = train_model(http, dataset.json()["id"], "no-onnx", n_iterations=5)
        answer = http.get(f"/models/{model_id}/onnx")
    assert answer.status_code == 501
    error = answer.json()["error"]
    assert error["code"] == "not_implemented"
    assert "pip install 'dnn-service[onnx]'" in error["message"]
    assert "pip install -e '.[onnx]'" in error["message"]  # the form that works from a checkout
