"""Open Inference Protocol v2 tensors: the codec between its bodies and NumPy arrays.

Tensors travel as JSON data or, with the binary tensor data extension, as raw little-endian
bytes after the JSON header (whose length the `Inference-Header-Content-Length` header gives):
an input with `"parameters": {"binary_data_size": k}` takes the next k bytes; an output goes
binary when it asks for `"binary_data": true`, or when the request asks
`"binary_data_output": true` for every output it does not set itself. BYTES elements are a
4-byte little-endian length and the UTF-8 bytes.

Pure functions over bytes, pydantic bodies and NumPy arrays; the routes (app/v2/infer_routes.py,
model_routes.py) call them and app/main.py turns ProtocolError into the protocol's
{"error": message} body. What the values must be for a model (rows, feature count, finite,
within its dtype) is the inference service's to decide.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from pydantic import StrictFloat, StrictInt, TypeAdapter, ValidationError
from typing_extensions import TypeAliasType

from app.schemas.common import MAX_ARRAY_DIMS
from app.serving import Inference
from app.v2.schemas import InferenceRequest, RequestInput
from app.validation import error_details, summarize

PROTOCOL_PREFIX = "/v2"
INPUT_NAME = "input"
PLATFORM = "dnn-service_numpy"
# Inputs may come in any of these; the inference service casts them to the network's dtype.
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    **{f"INT{bits}": np.dtype(f"<i{bits // 8}") for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": np.dtype(f"<u{bits // 8}") for bits in (8, 16, 32, 64)},
}
FLOAT_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}
OUTPUT_DTYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "INT64": np.dtype("<i8"),
}
# Tensor data in JSON: numbers only, nested to any depth ("1" and true are refused).
TensorData = TypeAliasType("TensorData", "list[StrictInt | StrictFloat] | list[TensorData]")
TENSOR_DATA: TypeAdapter[Any] = TypeAdapter(TensorData)


class ProtocolError(Exception):
    """An error answered with the protocol's {"error": message} body."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def is_protocol_path(path: str) -> bool:
    """Whether a request path is the protocol's, whose errors are {"error": "<message>"}."""
    return path == PROTOCOL_PREFIX or path.startswith(PROTOCOL_PREFIX + "/")


def protocol_error_body(message: str) -> dict[str, str]:
    return {"error": message}


def label_datatype(classes: Sequence[Any]) -> str:
    if any(isinstance(label, str) for label in classes):
        return "BYTES"
    if all(isinstance(label, int) and not isinstance(label, bool) for label in classes):
        return "INT64"
    return "FP64"


def output_specs(architecture: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The output tensors a model produces, by name, with their datatype and shape.

    architecture: a stored model's architecture (task, dtype, layer_dims, classes).
    """
    float_type = FLOAT_DATATYPES[np.dtype(architecture["dtype"])]
    n_outputs = int(architecture["layer_dims"][-1])
    if architecture["task"] == "regression":
        shape = [-1] if n_outputs == 1 else [-1, n_outputs]
        return {"predictions": {"datatype": float_type, "shape": shape}}
    classes = list(architecture["classes"])
    return {
        "predictions": {"datatype": label_datatype(classes), "shape": [-1]},
        "probabilities": {"datatype": float_type, "shape": [-1, len(classes)]},
    }


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
    """The JSON header and the binary tensor data after it."""
    if header_length is None:
        return body, memoryview(b"")
    text = header_length.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length must be a byte count within the body's "
            f"{len(body)} bytes, not {header_length!r}"
        )
    length = int(text)
    return body[:length], memoryview(body)[length:]


def parse_request(body: bytes, header_length: str | None) -> tuple[InferenceRequest, np.ndarray]:
    """The request and its one input, in the shape its header declares."""
    header, binary = split_body(body, header_length)
    try:
        request = InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        raise ProtocolError(_header_problem(exc, header_length)) from None
    if len(request.inputs) != 1 or request.inputs[0].name != INPUT_NAME:
        raise ProtocolError(f"the model takes exactly one input tensor, {INPUT_NAME!r}")
    tensor = request.inputs[0]
    size = (tensor.parameters or {}).get("binary_data_size")
    if size is None:
        chunk = None
    elif not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
        raise ProtocolError(
            f"binary_data_size must be a byte count within the {len(binary)} bytes "
            f"after the JSON header, not {size!r}"
        )
    else:
        chunk, binary = binary[:size], binary[size:]
    if len(binary):
        raise ProtocolError(f"{len(binary)} bytes of binary data belong to no input")
    return request, decode_input(tensor, chunk)


def _header_problem(exc: ValidationError, header_length: str | None) -> str:
    details = error_details(exc.errors())
    if details[0]["loc"]:  # a field of the header
        return summarize(details)
    message = f"the request's JSON header is not valid: {details[0]['msg']}"
    if header_length is None and "trailing characters" in details[0]["msg"]:
        # Likely binary tensor data sent without the header that says where the JSON ends.
        message += (
            "; binary tensor data after the JSON needs an Inference-Header-Content-Length "
            "header giving the JSON's length in bytes"
        )
    return message


def decode_input(tensor: RequestInput, binary: memoryview | None) -> np.ndarray:
    """The tensor's values in its declared shape, [n, features...], checked against its header.

    Whether that shape is the model's (rows, or the model's sample shape) is the inference
    service's to decide: (n, 3, 6) holds as many values as (n, 3, 3, 2) but is not that image.
    """
    dtype = INPUT_DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise ProtocolError(
            f"input datatype {tensor.datatype!r} is not supported; use one of "
            + ", ".join(INPUT_DATATYPES)
        )
    shape = tensor.shape
    if len(shape) > MAX_ARRAY_DIMS:
        raise ProtocolError(
            f"input shape has {len(shape)} dimensions; a tensor has at most {MAX_ARRAY_DIMS}"
        )
    if len(shape) < 2 or shape[0] < 1 or any(size < 0 for size in shape):
        raise ProtocolError(f"input shape must be [n, features...] with n >= 1, not {shape}")
    count = math.prod(shape)
    if binary is not None:
        if tensor.data is not None:
            raise ProtocolError("an input has either JSON data or binary_data_size, not both")
        if len(binary) != count * dtype.itemsize:
            raise ProtocolError(
                f"input binary data holds {len(binary)} bytes; shape {shape} of "
                f"{tensor.datatype} needs {count * dtype.itemsize}"
            )
        values = np.frombuffer(binary, dtype=dtype)
    else:
        values = _json_values(tensor, dtype, count)
    return values.reshape(shape)


def _json_values(tensor: RequestInput, dtype: np.dtype[Any], count: int) -> np.ndarray:
    if tensor.data is None:
        raise ProtocolError("the input has no data (and no binary_data_size parameter)")
    try:
        TENSOR_DATA.validate_python(tensor.data)
    except ValidationError:
        raise ProtocolError(
            f"input data must be a list (nested or flat) of numbers of datatype "
            f"{tensor.datatype}: not strings or booleans, not a bare number or an object, not "
            "numbers beside lists in one list"
        ) from None
    depth = _depth(tensor.data)
    if depth > MAX_ARRAY_DIMS:
        raise ProtocolError(
            f"input data is nested {depth} lists deep; a tensor has at most "
            f"{MAX_ARRAY_DIMS} dimensions"
        )
    try:
        values = np.asarray(tensor.data)
    except ValueError:
        raise ProtocolError("input data is ragged; nested lists must match the shape") from None
    if values.dtype.kind not in "iuf":
        # Every element is a number (checked above): NumPy keeps objects for ints beyond 64 bits.
        values = _wide_integers(tensor, dtype)
    if values.size != count:
        raise ProtocolError(f"input data holds {values.size} values; {tensor.shape} needs {count}")
    if dtype.kind in "iu":
        return _integers(tensor, values, dtype)
    _check_float_range(tensor, values, dtype)
    # JSON data means what the same values sent as binary data mean: 0.1 as FP16 is 0.0999755.
    return values.astype(dtype)


def _wide_integers(tensor: RequestInput, dtype: np.dtype[Any]) -> np.ndarray:
    """Data with integers beyond 64 bits as float64, which a float datatype may hold (1e30
    written out in digits is an FP32 value); refused for integer datatypes and beyond float64."""
    if dtype.kind == "f":
        try:
            return np.asarray(tensor.data, dtype=np.float64)
        except OverflowError:
            pass
    raise ProtocolError(
        f"input {tensor.name!r} data holds an integer beyond 64 bits, out of range for "
        f"datatype {tensor.datatype}"
    )


def _integers(tensor: RequestInput, values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """The values in the integer datatype, refused unless each is an integer it holds."""
    if values.dtype.kind == "f" and not (np.isfinite(values) & (values == np.round(values))).all():
        raise ProtocolError(
            f"input {tensor.name!r} data must be integers for datatype {tensor.datatype}"
        )
    if not values.size:
        return values.astype(dtype)
    # Floats, and ints beyond int64, arrive as float64, which rounds 2**64 - 1 up to 2**64 and
    # 2**63 down to a float equal to 2**63 - 1: range and cast read the exact values then.
    exact = values if values.dtype.kind in "iu" else np.asarray(tensor.data, dtype=object)
    limits = np.iinfo(dtype)
    if int(exact.min()) < limits.min or int(exact.max()) > limits.max:
        raise ProtocolError(
            f"input {tensor.name!r} data is out of range for datatype {tensor.datatype} "
            f"[{limits.min}, {limits.max}]"
        )
    return exact.astype(dtype)


def _check_float_range(tensor: RequestInput, values: np.ndarray, dtype: np.dtype[Any]) -> None:
    """Refuse finite values the datatype cannot hold: cast, 70000 as FP16 would be infinity.

    NaN and infinities pass; the inference service refuses them for every datatype alike.
    """
    limit = float(np.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        beyond = np.flatnonzero(np.isfinite(values) & (np.abs(values) > limit))
    if len(beyond):
        index = int(beyond[0])
        raise ProtocolError(
            f"input {tensor.name!r} element {index} (row-major) is "
            f"{values.reshape(-1)[index]:g}, beyond the range of datatype {tensor.datatype} "
            f"(±{limit:g})"
        )


def _depth(data: Any) -> int:
    """How many lists deep the first element lies (validated data nests evenly or is ragged)."""
    depth = 0
    while isinstance(data, list):
        depth += 1
        data = data[0] if data else None
    return depth


@dataclass(frozen=True)
class WantedOutput:
    name: str
    binary: bool


def _flag(parameters: dict[str, Any] | None, key: str, default: bool) -> bool:
    value = (parameters or {}).get(key, default)
    if not isinstance(value, bool):
        raise ProtocolError(f"parameter {key!r} must be true or false, not {value!r}")
    return value


def wanted_outputs(request: InferenceRequest, specs: dict[str, Any]) -> list[WantedOutput]:
    """Which outputs to answer, in order, and which of them as binary data."""
    all_binary = _flag(request.parameters, "binary_data_output", False)
    if not request.outputs:
        return [WantedOutput(name, all_binary) for name in specs]
    wanted: list[WantedOutput] = []
    for output in request.outputs:
        if output.name not in specs:
            raise ProtocolError(
                f"unknown output {output.name!r}; the model has " + ", ".join(specs)
            )
        # As Triton: a second copy would be answered twice, and clients read only the first.
        if any(earlier.name == output.name for earlier in wanted):
            raise ProtocolError(f"output {output.name!r} is requested more than once")
        if (output.parameters or {}).get("classification"):
            raise ProtocolError("the classification extension is not supported; ask for outputs")
        wanted.append(
            WantedOutput(output.name, _flag(output.parameters, "binary_data", all_binary))
        )
    return wanted


def to_binary(array: np.ndarray, datatype: str) -> bytes:
    """A tensor's raw bytes as the binary extension lays them out (row-major, little-endian)."""
    if datatype == "BYTES":
        parts = []
        for item in array.reshape(-1).tolist():
            encoded = str(item).encode()
            parts.append(struct.pack("<I", len(encoded)) + encoded)
        return b"".join(parts)
    return bytes(np.ascontiguousarray(array, dtype=OUTPUT_DTYPES[datatype]).tobytes())


def encode_response(
    request: InferenceRequest, result: Inference, specs: dict[str, Any]
) -> tuple[bytes, int | None]:
    """The response body and, when it carries binary data, the length of its JSON header."""
    arrays = {"predictions": result.predictions, "probabilities": result.probabilities}
    tensors: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for output in wanted_outputs(request, specs):
        array = arrays[output.name]
        assert array is not None  # specs list probabilities only for classifiers
        datatype = specs[output.name]["datatype"]
        tensor: dict[str, Any] = {"name": output.name, "datatype": datatype}
        tensor["shape"] = list(array.shape)
        if output.binary:
            chunks.append(to_binary(array, datatype))
            tensor["parameters"] = {"binary_data_size": len(chunks[-1])}
        elif array.dtype.kind in "fiu":
            tensor["data"] = np.ascontiguousarray(array.reshape(-1))  # orjson writes it whole
        else:
            tensor["data"] = array.reshape(-1).tolist()
        tensors.append(tensor)
    answer: dict[str, Any] = {
        "model_name": result.model.name,
        "model_version": str(result.model.version),
        "outputs": tensors,
    }
    if request.id is not None:
        answer["id"] = request.id
    header = orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY)
    if not chunks:
        return header, None
    return header + b"".join(chunks), len(header)
