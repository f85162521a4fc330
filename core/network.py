"""The fully connected network: parameters, inference and (de)serialization.

Layout is row-major, as in NumPy and PyTorch: ``X`` has shape (n_samples, n_features), layer
``l`` maps ``A_prev`` of shape (n_samples, n_in) to ``Z = A_prev @ W + b`` with ``W`` of shape
(n_in, n_out) and ``b`` of shape (n_out,). The seed recipe's column-major ``Z = W A + b`` is the
same computation transposed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core import serialization
from core.activations import ACTIVATIONS, Array
from core.choices import DTYPES, HIDDEN_ACTIVATIONS, OUTPUTS, TASK_OF_OUTPUT, Task, check_choice
from core.errors import ModelFormatError
from core.initialization import init_weights
from core.outputs import ACTIVATE
from core.preprocessing import as_feature_matrix, standardize


class Network:
    """An L-layer fully connected network.

    Parameters
    ----------
    layer_dims : sequence of int
        ``(n_features, hidden_1, ..., n_outputs)``; at least an input and an output width.
    hidden_activation : str
        One of ``core.choices.HIDDEN_ACTIVATIONS``.
    output : str
        ``"sigmoid"``: binary classification (one unit), ``"softmax"``: multiclass (one unit
        per class), ``"identity"``: regression; each comes with its cost (see
        :mod:`core.outputs`), and ``core.choices.OUTPUT_FOR_TASK`` maps tasks to them.
    init : str
        Weight initialization, one of ``core.choices.INITS``; see :func:`core.initialization.init_weights`.
    seed : int or None
        Seed of the initialization; the same seed gives the same weights (None: fresh entropy).
    dtype : {"float32", "float64"}
    input_shape : tuple of int, optional
        Per-sample input shape (e.g. ``(8, 8)`` for images); defaults to ``(layer_dims[0],)``
        and is otherwise set by training from the data.

    Attributes
    ----------
    weights : list of ndarray, ``weights[l]`` of shape (layer_dims[l], layer_dims[l+1])
    biases : list of ndarray, ``biases[l]`` of shape (layer_dims[l+1],)
    layer_dims : tuple of int
    dtype : str
        ``"float32"`` or ``"float64"``.
    classes : list or None
        The label of each class (sorted), set by training; ``None`` for regression or before
        training, when :meth:`predict` returns class indices.
    input_shape : tuple of int
        Shape of one sample, set by training from ``X.shape[1:]``.
    feature_mean, feature_scale : ndarray of shape (n_features,) or None
        Standardization ``(x - mean) / scale`` applied before the first layer, set by training
        when ``TrainConfig.standardize``.
    """

    def __init__(
        self,
        layer_dims: Sequence[int],
        hidden_activation: str = "relu",
        output: str = "sigmoid",
        init: str = "he",
        seed: int | None = 0,
        dtype: str = "float32",
        input_shape: tuple[int, ...] | None = None,
    ) -> None:
        dims = tuple(int(d) for d in layer_dims)
        if len(dims) < 2 or min(dims) < 1:
            raise ValueError(f"layer_dims needs at least two positive widths, got {layer_dims}")
        check_choice("hidden_activation", hidden_activation, HIDDEN_ACTIVATIONS)
        check_choice("output", output, OUTPUTS)
        check_choice("dtype", dtype, DTYPES)
        if output == "sigmoid" and dims[-1] != 1:
            raise ValueError(f"a sigmoid output has one unit, got {dims[-1]}")
        if input_shape is not None and int(np.prod(input_shape)) != dims[0]:
            raise ValueError(f"input_shape {input_shape} does not hold {dims[0]} features")
        self.layer_dims = dims
        self.hidden_activation = hidden_activation
        self.output = output
        self.dtype = dtype
        self.input_shape = tuple(input_shape) if input_shape is not None else (dims[0],)
        self.weights = init_weights(dims, init, np.random.default_rng(seed), self.dtype)
        self.biases = [np.zeros(n, dtype=self.dtype) for n in dims[1:]]
        self._packed: Array | None = None
        self._packed_views: list[Array] = []
        self.classes: list[Any] | None = None
        self.feature_mean: Array | None = None
        self.feature_scale: Array | None = None

    @classmethod
    def from_parameters(
        cls,
        weights: Sequence[ArrayLike],
        biases: Sequence[ArrayLike],
        hidden_activation: str = "relu",
        output: str = "sigmoid",
        dtype: str | None = None,
        input_shape: tuple[int, ...] | None = None,
        classes: Sequence[Any] | None = None,
        feature_mean: ArrayLike | None = None,
        feature_scale: ArrayLike | None = None,
    ) -> Network:
        """Build a network from given parameters (all copied).

        Parameters
        ----------
        weights : sequence of array-like, ``weights[l]`` of shape (n_in, n_out)
        biases : sequence of array-like, ``biases[l]`` of shape (n_out,)
        dtype : {"float32", "float64"}, optional
            Defaults to the dtype of ``weights[0]`` when that is float32 or float64, else float32.
        input_shape, classes, feature_mean, feature_scale
            As the attributes of the same names.
        """
        arrays = [np.asarray(W) for W in weights]
        if not arrays or len(arrays) != len(biases):
            raise ValueError("need one bias vector per weight matrix, and at least one layer")
        if dtype is None:
            dtype = arrays[0].dtype.name if arrays[0].dtype.name in DTYPES else "float32"
        dims = [arrays[0].shape[0]] + [W.shape[1] for W in arrays]
        net = cls(dims, hidden_activation, output, "normal", 0, dtype, input_shape)
        for layer, (W, b) in enumerate(zip(arrays, biases, strict=True)):
            expected = (dims[layer], dims[layer + 1])
            if W.shape != expected or np.shape(b) != expected[1:]:
                raise ValueError(
                    f"layer {layer}: weights {W.shape} and biases {np.shape(b)} do not chain; "
                    f"expected {expected} and {expected[1:]}"
                )
            net.weights[layer] = np.array(W, dtype=net.dtype, order="C")
            net.biases[layer] = np.array(b, dtype=net.dtype)
        net.classes = None if classes is None else list(classes)
        if (feature_mean is None) != (feature_scale is None):
            raise ValueError("feature_mean and feature_scale go together")
        if feature_mean is not None and feature_scale is not None:
            net.feature_mean = np.array(feature_mean, dtype=net.dtype)
            net.feature_scale = np.array(feature_scale, dtype=net.dtype)
            if net.feature_mean.shape != (dims[0],) or net.feature_scale.shape != (dims[0],):
                raise ValueError(f"feature scaling must have shape ({dims[0]},)")
        return net

    @property
    def task(self) -> Task:
        """``"binary"``, ``"multiclass"`` or ``"regression"``, from the output layer."""
        return TASK_OF_OUTPUT[self.output]

    @property
    def n_features(self) -> int:
        """Number of input values per sample (the product of ``input_shape``)."""
        return self.layer_dims[0]

    def prepare_inputs(self, X: ArrayLike) -> Array:
        """Check, flatten and standardize ``X`` of shape (n_samples, *input_shape) or
        (n_samples, n_features)."""
        X2d = as_feature_matrix(X, self.n_features, self.dtype)
        if self.feature_mean is None or self.feature_scale is None:
            return X2d
        return standardize(X2d, self.feature_mean, self.feature_scale)

    def logits(self, X2d: Array) -> Array:
        """Output pre-activations for prepared inputs of shape (n_samples, n_features).

        Each hidden activation is applied in place to its fresh pre-activation, so inference
        allocates one array per layer and nothing else.
        """
        activate = ACTIVATIONS[self.hidden_activation]
        A = X2d
        for W, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            A = A @ W
            A += b
            activate(A)
        Z = A @ self.weights[-1]
        Z += self.biases[-1]
        return Z

    def forward(self, X2d: Array) -> Array:
        """Output activations of shape (n_samples, n_outputs) for prepared inputs."""
        A = self.logits(X2d)
        ACTIVATE[self.output](A)
        return A

    def predict_proba(self, X: ArrayLike) -> Array:
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, *input_shape)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Column ``k`` is the probability of ``classes[k]`` (for a sigmoid output, the
            columns are ``1 - p`` and ``p``); rows sum to one.

        Raises
        ------
        ValueError
            For a regression network, or inputs of the wrong shape or with non-finite values.
        """
        if self.output == "identity":
            raise ValueError("a regression network predicts values, not probabilities")
        return self._probabilities(self.forward(self.prepare_inputs(X)))

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted labels (classification) or values (regression).

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Labels taken from ``classes`` (class indices before training); regression with one
            output gives shape (n_samples,).
        """
        A = self.forward(self.prepare_inputs(X))
        if self.output == "identity":
            return A[:, 0] if A.shape[1] == 1 else A
        return self._labels(A)

    def predict_with_proba(self, X: ArrayLike) -> tuple[NDArray[Any], Array]:
        """:meth:`predict` and :meth:`predict_proba` of a classifier from one forward pass.

        Returns
        -------
        y : ndarray of shape (n_samples,)
            Exactly what :meth:`predict` returns (a sigmoid output at ``p = 0.5`` is class 1).
        proba : ndarray of shape (n_samples, n_classes)
            Exactly what :meth:`predict_proba` returns.

        Raises
        ------
        ValueError
            For a regression network, or inputs of the wrong shape or with non-finite values.
        """
        if self.output == "identity":
            raise ValueError("a regression network predicts values, not probabilities")
        A = self.forward(self.prepare_inputs(X))
        return self._labels(A), self._probabilities(A)

    def _probabilities(self, A: Array) -> Array:
        """Class probabilities from output activations: a sigmoid's ``p`` becomes the two
        columns ``1 - p`` and ``p``."""
        return np.concatenate((1 - A, A), axis=1) if self.output == "sigmoid" else A

    def _labels(self, A: Array) -> NDArray[Any]:
        """The class of each row of output activations: the one place the choice is made."""
        indices = (A[:, 0] >= 0.5).astype(np.intp) if self.output == "sigmoid" else A.argmax(1)
        return indices if self.classes is None else np.asarray(self.classes)[indices]

    def get_parameters(self) -> list[Array]:
        """Copies of all parameters, ``[W_0, b_0, W_1, b_1, ...]``."""
        return [p.copy() for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def set_parameters(self, parameters: Sequence[Array]) -> None:
        """Copy ``parameters`` (as from :meth:`get_parameters`) into the network in place."""
        for target, source in zip(self.parameters(), parameters, strict=True):
            np.copyto(target, source)

    def parameters(self) -> list[Array]:
        """The live parameter arrays, ``[W_0, b_0, W_1, b_1, ...]``; optimizers update these."""
        return [p for pair in zip(self.weights, self.biases, strict=True) for p in pair]

    def packed_parameters(self) -> Array:
        """All parameters in one contiguous buffer, of which ``weights``/``biases`` are views.

        Layer ``l`` takes ``(n_in + 1) * n_out`` values: ``W_l`` then ``b_l``, so that
        ``packed[o:o + (n_in + 1) * n_out].reshape(n_in + 1, n_out)`` is ``W_l`` stacked on
        ``b_l``. Training relies on both: one elementwise update covers every parameter, and
        a hidden layer's bias enters its matrix product as a row of weights for a constant
        input of 1 (see :class:`core.backprop.Workspace`). The buffer is built on the first
        call (copying the values; ``weights``/``biases`` become the views) and rebuilt if a
        parameter array has been replaced since.

        Returns
        -------
        packed : ndarray of shape (n_parameters,)
        """
        live = self.parameters()
        if self._packed is not None and all(
            a is b for a, b in zip(live, self._packed_views, strict=True)
        ):
            return self._packed
        packed = np.empty(sum(p.size for p in live), dtype=self.dtype)
        offset = 0
        for layer, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            n_in, n_out = W.shape
            block = packed[offset : offset + (n_in + 1) * n_out].reshape(n_in + 1, n_out)
            block[:n_in] = W
            block[n_in] = b
            self.weights[layer], self.biases[layer] = block[:n_in], block[n_in]
            offset += block.size
        self._packed, self._packed_views = packed, self.parameters()
        return packed

    def to_bytes(self) -> bytes:
        """Serialize parameters, architecture, scaling, classes and input shape (safetensors)."""
        tensors = {f"weights.{i}": W for i, W in enumerate(self.weights)}
        tensors |= {f"biases.{i}": b for i, b in enumerate(self.biases)}
        if self.feature_mean is not None and self.feature_scale is not None:
            tensors["feature_mean"] = self.feature_mean
            tensors["feature_scale"] = self.feature_scale
        metadata = {
            "layer_dims": list(self.layer_dims),
            "hidden_activation": self.hidden_activation,
            "output": self.output,
            "dtype": self.dtype,
            "input_shape": list(self.input_shape),
            "classes": self.classes,
        }
        return serialization.dump(tensors, metadata)

    @classmethod
    def from_bytes(cls, data: bytes) -> Network:
        """Inverse of :meth:`to_bytes`.

        Raises
        ------
        ModelFormatError
            (a ``ValueError``) for malformed or inconsistent bytes.
        """
        tensors, meta = serialization.restore(data)
        try:
            n_layers = len(meta["layer_dims"]) - 1
            net = cls.from_parameters(
                [tensors[f"weights.{i}"] for i in range(n_layers)],
                [tensors[f"biases.{i}"] for i in range(n_layers)],
                hidden_activation=meta["hidden_activation"],
                output=meta["output"],
                dtype=meta["dtype"],
                input_shape=tuple(meta["input_shape"]),
                classes=meta["classes"],
                feature_mean=tensors.get("feature_mean"),
                feature_scale=tensors.get("feature_scale"),
            )
            if list(net.layer_dims) != meta["layer_dims"]:
                raise ValueError("layer_dims disagree with the weights")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFormatError(f"inconsistent model: {exc}") from None
        return net
