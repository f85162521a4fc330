"""The v2 tensor codec on its own, with tritonclient's own request writer and response reader
as the oracle for the binary tensor data extension (no server)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import deserialize_bytes_tensor

from app.model_cache import LoadedModel
from app.serving import Inference
from app.v2.codec import (
    ProtocolError,
    encode_response,
    is_protocol_path,
    output_specs,
    parse_request,
    split_body,
)
from app.v2.schemas import InferenceRequest
from core import Network

CLASSIFIER = {"task": "binary", "dtype": "float32", "layer_dims": [3, 1], "classes": ["a", "b"]}


def triton_body(
    array: np.ndarray, datatype: str, binary: bool, outputs: list[Any] | None = None
) -> tuple[bytes, str | None]:
    tensor = triton.InferInput("input", list(array.shape), datatype)
    tensor.set_data_from_numpy(array, binary_data=binary)
    body, json_size = triton.InferenceServerClient.generate_request_body(
        [tensor], outputs=outputs, request_id="r7"
    )
    return body, None if json_size is None else str(json_size)


@pytest.mark.parametrize("binary", [True, False])
@pytest.mark.parametrize(
    ("datatype", "dtype"),
    [("FP32", np.float32), ("FP64", np.float64), ("INT16", np.int16), ("UINT8", np.uint8)],
)
def test_tritonclient_requests_decode_to_the_same_rows(
    binary: bool, datatype: str, dtype: Any
) -> None:
    array = (np.arange(12).reshape(4, 3) * 3).astype(dtype)

    request, X = parse_request(*triton_body(array, datatype, binary))

    assert request.id == "r7"
    np.testing.assert_array_equal(X, array)
    assert X.shape == (4, 3)


def test_image_shaped_inputs_keep_their_shape() -> None:
    # The inference service checks it against the model's: a flat row or its sample shape.
    array = np.arange(12, dtype=np.float32).reshape(2, 2, 3)
    _, X = parse_request(*triton_body(array, "FP32", True))
    np.testing.assert_array_equal(X, array)


def raw(header: dict[str, Any], data: bytes = b"") -> tuple[bytes, str | None]:
    text = json.dumps(header).encode()
    return text + data, str(len(text)) if data else None


def tensor(**changes: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [2, 3], "datatype": "FP32", **changes}]}


SIX_FLOATS = np.ones(6, dtype="<f4").tobytes()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (raw(tensor(parameters={"binary_data_size": 24}), SIX_FLOATS[:-4]), "binary_data_size"),
        (raw(tensor(parameters={"binary_data_size": 20}), SIX_FLOATS[:-4]), "needs 24"),
        (raw(tensor(parameters={"binary_data_size": 24}), SIX_FLOATS + b"x"), "belong to no"),
        (raw(tensor(parameters={"binary_data_size": True}), SIX_FLOATS), "binary_data_size"),
        (raw(tensor(parameters={"binary_data_size": 24}, data=[1] * 6), SIX_FLOATS), "not both"),
        (raw(tensor()), "no data"),
        (raw(tensor(data=[1, 2, 3, 4, 5, True])), "not strings or booleans"),
        (raw(tensor(data=["1"] * 6)), "not strings or booleans"),
        # Said "not strings or booleans" too, though it held neither.
        (raw(tensor(data=5, shape=[1, 1])), "not a bare number"),
        (raw(tensor(data={"a": 1}, shape=[1, 1])), "or an object"),
        (raw(tensor(data=[[1, 2, 3], 4, 5, 6])), "numbers beside lists"),
        (raw(tensor(data=[[1, 2, 3], [4, 5]])), "ragged"),
        (raw(tensor(data=[1] * 5)), "needs 6"),
        (raw(tensor(datatype="INT8", data=[1, 2, 3, 4, 5, 300])), "range"),
        (raw(tensor(datatype="BYTES", data=[1] * 6)), "not supported"),
        (raw(tensor(shape=[0, 3], data=[])), "n >= 1"),
        (raw(tensor(name="x", data=[1] * 6)), "'input'"),
        ((b"{not json", None), "json"),
    ],
)
def test_malformed_requests_are_protocol_errors(
    body: tuple[bytes, str | None], message: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_request(*body)
    assert refused.value.status_code == 400
    assert message.lower() in refused.value.message.lower()


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        # These became infinity in the float32 cast (or passed unchanged to a float64 model).
        ("FP16", [70000, 0, 0, 0, 0, 0], "element 0 (row-major) is 70000, beyond the range of "),
        ("FP16", [0, 0, 0, 0, 0, -65520], "element 5 (row-major) is -65520"),
        ("FP32", [[0, 0, 0], [0, 1e39, 0]], "element 4 (row-major) is 1e+39"),
        # float64(2**63) equals float64(2**63 - 1): the limit was compared after rounding.
        ("INT64", [2**63, 0, 0, 0, 0, 0], "out of range for datatype INT64"),
        ("INT64", [2**63, 0.5, 0, 0, 0, 0], "must be integers"),
        ("INT32", [1e400, 0, 0, 0, 0, 0], "must be integers"),
        ("UINT64", [2**64, 0, 0, 0, 0, 0], "out of range for datatype UINT64"),
        ("FP64", [10**400, 0, 0, 0, 0, 0], "out of range for datatype FP64"),
        ("FP16", [10**30, 0, 0, 0, 0, 0], "element 0 (row-major) is 1e+30, beyond the range of"),
    ],
)
def test_json_values_beyond_their_datatype_are_refused_naming_the_input(
    datatype: str, data: list[Any], message: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_request(*raw(tensor(datatype=datatype, data=data)))
    assert refused.value.status_code == 400
    assert "input 'input'" in refused.value.message
    assert message in refused.value.message
    assert datatype in refused.value.message


@pytest.mark.parametrize(
    ("datatype", "dtype", "data"),
    [
        ("FP16", "<f2", [65504, -65504, 0.1, 1e-8, 0, 1]),
        ("FP32", "<f4", [3.4e38, 0.1, 0, 0, 0, 1]),
        # An integer beyond 64 bits is still a float: it was refused as "not numbers".
        ("FP32", "<f4", [10**30, -(10**38), 0, 0, 0, 1]),
        ("FP64", "<f8", [10**300, 2**64, 0, 0, 0, 1]),
        ("INT64", "<i8", [2**63 - 1, -(2**63), 0, 0, 0, 1.0]),
        # Beyond int64 the JSON numbers arrive as float64, whose 2**64 - 1 is 2**64.
        ("UINT64", "<u8", [2**64 - 1, 2**63, 0, 0, 0, 1.0]),
        ("UINT8", "<u1", [255, 0, 0, 0, 0, 1]),
    ],
)
def test_json_values_mean_what_the_same_binary_values_mean(
    datatype: str, dtype: str, data: list[Any]
) -> None:
    exact = np.array(data, dtype=object).astype(dtype).reshape(2, 3)
    binary = tensor(datatype=datatype, parameters={"binary_data_size": exact.nbytes})

    _, from_json = parse_request(*raw(tensor(datatype=datatype, data=data)))
    _, from_binary = parse_request(*raw(binary, exact.tobytes()))

    assert from_json.dtype == from_binary.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(from_json, from_binary)


def nested(depth: int) -> Any:
    data: Any = 1
    for _ in range(depth):
        data = [data]
    return data


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # NumPy holds at most 64 dimensions: reshaping to these raised a ValueError, a 500.
        (raw(tensor(shape=[1] * 65, data=[1])), "input shape has 65 dimensions; a tensor has"),
        (
            raw(tensor(shape=[1] * 100, parameters={"binary_data_size": 4}), SIX_FLOATS[:4]),
            "input shape has 100 dimensions",
        ),
        # Was "input data is ragged".
        (raw(tensor(shape=[1, 1], data=nested(65))), "input data is nested 65 lists deep"),
    ],
)
def test_tensors_numpy_cannot_hold_are_protocol_errors(
    body: tuple[bytes, str | None], message: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_request(*body)
    assert refused.value.status_code == 400
    assert message in refused.value.message


def test_a_tensor_of_64_dimensions_is_read() -> None:
    _, X = parse_request(*raw(tensor(shape=[1] * 64, data=nested(64))))
    assert X.shape == (1,) * 64


def test_binary_data_without_the_header_length_says_what_is_missing() -> None:
    """It said ": Invalid JSON: trailing characters at line 1 column 98"."""
    body, _ = raw(tensor(parameters={"binary_data_size": 24}), SIX_FLOATS)
    with pytest.raises(ProtocolError) as refused:
        parse_request(body, None)
    message = refused.value.message
    assert message.startswith("the request's JSON header is not valid: Invalid JSON: trailing")
    assert "needs an Inference-Header-Content-Length header" in message
    with pytest.raises(ProtocolError) as not_json:
        parse_request(b"{not json", None)
    assert not_json.value.message.startswith("the request's JSON header is not valid: ")
    assert "Inference-Header-Content-Length" not in not_json.value.message


@pytest.mark.parametrize("header", ["²", "-1", "99999", "x"])
def test_a_header_length_outside_the_body_is_refused(header: str) -> None:
    with pytest.raises(ProtocolError, match="Inference-Header-Content-Length"):
        split_body(b"{}", header)


def inference(classes: list[Any]) -> Inference:
    network = Network.from_parameters(
        [np.full((3, 1), 0.5, dtype=np.float32)],
        [np.zeros(1, dtype=np.float32)],
        output="sigmoid",
        classes=classes,
    )
    X = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]], dtype=np.float32)
    labels, proba = network.predict_with_proba(X)
    return Inference(LoadedModel("id", "net", 3, network), labels, proba)


def read(request: dict[str, Any], result: Inference, specs: dict[str, Any]) -> triton.InferResult:
    body, header_length = encode_response(InferenceRequest.model_validate(request), result, specs)
    return triton.InferenceServerClient.parse_response_body(body, header_length=header_length)


def test_binary_outputs_read_back_with_tritonclient() -> None:
    result = inference(["cat", "dog"])
    specs = output_specs(CLASSIFIER)
    request = {**tensor(data=[1] * 6), "parameters": {"binary_data_output": True}, "id": "q"}

    answer = read(request, result, specs)

    assert answer.get_response()["id"] == "q"
    assert answer.get_response()["model_version"] == "3"
    labels = answer.as_numpy("predictions")
    assert [label.decode() for label in labels] == ["dog", "cat"]
    assert result.probabilities is not None
    np.testing.assert_array_equal(answer.as_numpy("probabilities"), result.probabilities)


def test_each_output_chooses_binary_or_json() -> None:
    result = inference([0, 1])
    specs = output_specs({**CLASSIFIER, "classes": [0, 1]})
    request = {
        **tensor(data=[1] * 6),
        "parameters": {"binary_data_output": True},
        "outputs": [
            {"name": "probabilities", "parameters": {"binary_data": False}},
            {"name": "predictions"},
        ],
    }

    answer = read(request, result, specs)

    outputs = answer.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["probabilities", "predictions"]
    assert "data" in outputs[0] and "data" not in outputs[1]
    assert answer.as_numpy("predictions").tolist() == [1, 0]
    assert answer.as_numpy("predictions").dtype == np.int64


def test_json_only_answers_carry_no_header_length() -> None:
    body, header_length = encode_response(
        InferenceRequest.model_validate(tensor(data=[1] * 6)),
        inference(["a", "b"]),
        output_specs(CLASSIFIER),
    )
    assert header_length is None
    assert json.loads(body)["outputs"][0]["data"] == ["b", "a"]


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([{"name": "logits"}], "unknown output"),
        ([{"name": "predictions", "parameters": {"classification": 2}}], "classification"),
        ([{"name": "predictions", "parameters": {"binary_data": "yes"}}], "true or false"),
        # Was answered twice, once as JSON and once as binary data.
        (
            [{"name": "predictions"}, {"name": "predictions", "parameters": {"binary_data": True}}],
            "'predictions' is requested more than once",
        ),
    ],
)
def test_unanswerable_outputs_are_protocol_errors(outputs: list[Any], message: str) -> None:
    request = InferenceRequest.model_validate({**tensor(data=[1] * 6), "outputs": outputs})
    with pytest.raises(ProtocolError, match=message):
        encode_response(request, inference(["a", "b"]), output_specs(CLASSIFIER))


def test_bytes_serialization_matches_tritonclients_reader() -> None:
    from app.v2.codec import to_binary

    labels = np.array(["", "é", "longer label"], dtype=object)
    decoded = deserialize_bytes_tensor(to_binary(labels, "BYTES"))
    assert [item.decode() for item in decoded] == ["", "é", "longer label"]


def test_protocol_paths() -> None:
    assert is_protocol_path("/v2") and is_protocol_path("/v2/models/x")
    assert not is_protocol_path("/v2x") and not is_protocol_path("/predict")
