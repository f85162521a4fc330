"""Export a trained network as an ONNX model that other servers (onnxruntime, Triton) can load.

The graph computes what `/predict` computes, in the network's own dtype (DTYPE below: float32,
or float64 for a float64 network, input and outputs included):

    input  "input"          DTYPE [N, n_features]     flat rows, also for image models
    (standardisation)       Sub(mean), Div(scale)      when the model was trained with it
    hidden layers           Gemm + the layer's activation
    output, by task:
      binary                "probabilities" DTYPE [N, 2] (1 - p, p), "class_index" int64 [N]
      multiclass            "probabilities" DTYPE [N, k] (softmax), "class_index" int64 [N]
      regression            "predictions"   DTYPE [N, n_outputs]

`class_index` indexes the JSON list in the metadata prop `classes`; the per-sample shape of the
training data (e.g. [8, 8]) is in `input_shape`. `onnx` is an optional dependency
(`pip install dnn-service[onnx]`), imported only when a model is exported.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from core import Network
from core.activations import LEAKY_RELU_SLOPE

if TYPE_CHECKING:
    from onnx import NodeProto, TensorProto

OPSET = 17
# IR version 8 is the one that introduced opset 17: the oldest runtimes that can run it load it.
IR_VERSION = 8
INPUT_NAME = "input"
PROBABILITIES = "probabilities"
CLASS_INDEX = "class_index"
PREDICTIONS = "predictions"
INSTALL_HINT = (
    "ONNX export needs the optional onnx package: pip install 'dnn-service[onnx]' "
    "(from a checkout: pip install -e '.[onnx]')"
)

# Each hidden activation of the core as an ONNX operator and its attributes. A test checks that
# this covers core.activations.ACTIVATIONS, so a new activation cannot be exported silently wrong.
HIDDEN_ACTIVATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "relu": ("Relu", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_RELU_SLOPE}),
    "tanh": ("Tanh", {}),
    "sigmoid": ("Sigmoid", {}),
}


class OnnxUnavailable(ImportError):
    """The optional onnx package is not installed."""


def onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def output_names(task: str) -> list[str]:
    return [PREDICTIONS] if task == "regression" else [PROBABILITIES, CLASS_INDEX]


def to_onnx(network: Network, *, metadata: dict[str, Any] | None = None) -> bytes:
    """The network as a serialized, checked ONNX ModelProto.

    Parameters
    ----------
    network : Network
        A trained network.
    metadata : dict, optional
        Extra metadata props (model id, name, version); values are JSON-encoded unless strings.

    Raises
    ------
    OnnxUnavailable
        When the optional onnx package is not installed.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as exc:
        raise OnnxUnavailable(INSTALL_HINT) from exc

    compute = TensorProto.DOUBLE if network.dtype == "float64" else TensorProto.FLOAT
    nodes: list[NodeProto] = []
    initializers: list[TensorProto] = []

    def constant(name: str, value: np.ndarray[Any, Any]) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value, network.dtype), name))
        return name

    # Input and outputs in the network's dtype, not float32 around a float64 graph: rounding
    # the rows (or the answers) to float32 put a regression's outputs around 9,000 off /predict's
    # by more than 1e-5. onnxruntime's CPU provider runs every operator used here in double.
    current = INPUT_NAME
    if network.feature_mean is not None and network.feature_scale is not None:
        mean = constant("feature_mean", network.feature_mean)
        scale = constant("feature_scale", network.feature_scale)
        nodes.append(helper.make_node("Sub", [current, mean], ["centred"]))
        nodes.append(helper.make_node("Div", ["centred", scale], ["standardized"]))
        current = "standardized"

    n_layers = len(network.weights)
    slope = None
    if network.hidden_activation == "leaky_relu" and compute == TensorProto.DOUBLE and n_layers > 1:
        # LeakyRelu's alpha attribute is a float32 (0.01 becomes 0.00999999978): in float64
        # the slope is a float64 constant, and the layer the core's max(z, 0.01 * z).
        slope = constant("leaky_relu_slope", np.asarray(LEAKY_RELU_SLOPE))
    for layer, (W, b) in enumerate(zip(network.weights, network.biases, strict=True)):
        weight, bias = constant(f"W{layer}", W), constant(f"b{layer}", b)
        logits = f"Z{layer}"
        nodes.append(helper.make_node("Gemm", [current, weight, bias], [logits]))
        current = logits
        if layer < n_layers - 1:
            current = f"A{layer}"
            if slope is not None:
                nodes.append(helper.make_node("Mul", [logits, slope], [f"{logits}_sloped"]))
                nodes.append(helper.make_node("Max", [logits, f"{logits}_sloped"], [current]))
                continue
            op, attributes = HIDDEN_ACTIVATIONS[network.hidden_activation]
            nodes.append(helper.make_node(op, [logits], [current], **attributes))

    outputs = _output_nodes(network, current, nodes, constant)
    n_out = network.layer_dims[-1]
    width = 2 if network.output == "sigmoid" else n_out
    graph_outputs = [
        helper.make_tensor_value_info(
            PREDICTIONS if network.task == "regression" else PROBABILITIES,
            compute,
            ["N", width],
        )
    ]
    if network.task != "regression":
        graph_outputs.append(helper.make_tensor_value_info(CLASS_INDEX, TensorProto.INT64, ["N"]))
    assert [o.name for o in graph_outputs] == outputs

    graph = helper.make_graph(
        nodes,
        "dnn_service_network",
        [helper.make_tensor_value_info(INPUT_NAME, compute, ["N", network.n_features])],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="dnn-service",
    )
    props = {
        "task": network.task,
        "classes": json.dumps(network.classes),
        "input_shape": json.dumps(list(network.input_shape)),
        "n_features": str(network.n_features),
        "hidden_activation": network.hidden_activation,
        "output_activation": network.output,
        "outputs": json.dumps(outputs),
        "dtype": network.dtype,
    }
    for key, value in (metadata or {}).items():
        props[key] = value if isinstance(value, str) else json.dumps(value)
    helper.set_model_props(model, props)
    onnx.checker.check_model(model, full_check=True)
    data: bytes = model.SerializeToString()
    return data


def _output_nodes(
    network: Network,
    logits: str,
    nodes: list[NodeProto],
    constant: Any,
) -> list[str]:
    """Append the output activation (and the class index); return the graph's output names."""
    from onnx import helper

    final = PREDICTIONS if network.task == "regression" else PROBABILITIES
    if network.output == "sigmoid":
        # /predict answers (1 - p, p) for the classes (classes[0], classes[1]).
        one = constant("one", np.ones((1, 1)))
        nodes.append(helper.make_node("Sigmoid", [logits], ["p"]))
        nodes.append(helper.make_node("Sub", [one, "p"], ["one_minus_p"]))
        nodes.append(helper.make_node("Concat", ["one_minus_p", "p"], ["activated"], axis=1))
    elif network.output == "softmax":
        nodes.append(helper.make_node("Softmax", [logits], ["activated"], axis=-1))
    else:
        nodes.append(helper.make_node("Identity", [logits], ["activated"]))
    nodes.append(helper.make_node("Identity", ["activated"], [final]))
    if network.task == "regression":
        return [PREDICTIONS]
    # Ties go as /predict's (the core's predict): a softmax tie to the first class, a sigmoid's
    # p = 0.5 to class 1 (p >= 0.5), which is the last of (1 - p, p): 1 - p is exact for
    # p >= 0.5 and rounds to no less than 0.5 below it, so the comparison is the core's exactly.
    last = 1 if network.output == "sigmoid" else 0
    nodes.append(
        helper.make_node(
            "ArgMax", ["activated"], [CLASS_INDEX], axis=1, keepdims=0, select_last_index=last
        )
    )
    return [PROBABILITIES, CLASS_INDEX]
