"""Open Inference Protocol v2 tensors: decoding the input, describing and encoding the outputs.

Pure functions over pydantic bodies, NumPy arrays and stored model metadata; the routes in
app/api/v2.py call them and turn ProtocolError into the protocol's {"error": ...} body.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from app import serving
from app.db.tables import Model
from app.schemas.inference_v2 import RequestInput, RequestOutput

INPUT_NAME = "input"
PLATFORM = "dnn-service_numpy"
# Inputs may come in any of these; they are converted to the network's float dtype.
INPUT_DATATYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    **{f"INT{bits}": np.dtype(f"int{bits}") for bits in (8, 16, 32, 64)},
    **{f"UINT{bits}": np.dtype(f"uint{bits}") for bits in (8, 16, 32, 64)},
}
FLOAT_DATATYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64"}


class ProtocolError(Exception):
    """An error answered with the protocol's {"error": message} body."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


def label_datatype(classes: list[Any]) -> str:
    if any(isinstance(label, str) for label in classes):
        return "BYTES"
    if all(isinstance(label, int) and not isinstance(label, bool) for label in classes):
        return "INT64"
    return "FP64"


def output_specs(model: Model) -> dict[str, dict[str, Any]]:
    """The output tensors a model produces, by name, with their datatype and shape."""
    arch = model.architecture
    float_type = FLOAT_DATATYPES[np.dtype(arch["dtype"])]
    n_outputs = int(arch["layer_dims"][-1])
    if arch["task"] == "regression":
        shape = [-1] if n_outputs == 1 else [-1, n_outputs]
        return {"predictions": {"datatype": float_type, "shape": shape}}
    classes = list(arch["classes"])
    return {
        "predictions": {"datatype": label_datatype(classes), "shape": [-1]},
        "probabilities": {"datatype": float_type, "shape": [-1, len(classes)]},
    }


def decode_input(tensor: RequestInput, n_features: int) -> np.ndarray[Any, Any]:
    """The input tensor as a float64 matrix of shape (n, n_features), checked against its header."""
    dtype = INPUT_DATATYPES.get(tensor.datatype)
    if dtype is None:
        raise ProtocolError(
            f"input datatype {tensor.datatype!r} is not supported; use one of "
            + ", ".join(INPUT_DATATYPES)
        )
    shape = tensor.shape
    if len(shape) < 2 or any(size < 0 for size in shape) or shape[0] == 0:
        raise ProtocolError(f"input shape must be [n, features...] with n >= 1, not {shape}")
    if math.prod(shape[1:]) != n_features:
        raise ProtocolError(
            f"input shape {shape} gives {math.prod(shape[1:])} features per row; "
            f"the model expects {n_features}"
        )
    try:
        values = np.asarray(tensor.data)
    except ValueError as exc:
        raise ProtocolError("input data is ragged; nested lists must match the shape") from exc
    if values.dtype.kind not in "iuf":
        raise ProtocolError(f"input data must be numbers of datatype {tensor.datatype}")
    if values.size != math.prod(shape):
        raise ProtocolError(
            f"input data holds {values.size} values; shape {shape} needs {math.prod(shape)}"
        )
    if dtype.kind == "f":
        if not np.isfinite(values).all():
            raise ProtocolError("input data contains NaN or infinite values")
    else:
        limits = np.iinfo(dtype)
        if values.dtype.kind == "f" and not (values == np.round(values)).all():
            raise ProtocolError(f"input data must be integers for datatype {tensor.datatype}")
        if values.min() < limits.min or values.max() > limits.max:
            raise ProtocolError(f"input data is out of range for datatype {tensor.datatype}")
    return values.astype(np.float64).reshape(shape[0], n_features)


def encode_outputs(
    model: Model, result: serving.Inference, requested: list[RequestOutput] | None
) -> list[dict[str, Any]]:
    specs = output_specs(model)
    arrays = {"predictions": result.predictions, "probabilities": result.probabilities}
    names = [output.name for output in requested] if requested else list(specs)
    unknown = [name for name in names if name not in specs]
    if unknown:
        raise ProtocolError(
            f"unknown output {unknown[0]!r}; model {model.name!r} has " + ", ".join(specs)
        )
    tensors = []
    for name in names:
        array = arrays[name]
        assert array is not None  # specs list probabilities only for classifiers
        tensors.append(
            {
                "name": name,
                "datatype": specs[name]["datatype"],
                "shape": list(array.shape),
                "data": array.reshape(-1).tolist(),
            }
        )
    return tensors
