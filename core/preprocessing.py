"""Data preparation: input flattening, feature standardization, target encoding, splitting."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from core.activations import Array


def as_feature_matrix(X: ArrayLike, n_features: int, dtype: DTypeLike) -> Array:
    """Check the inputs and flatten each sample to one row.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Samples of any shape, e.g. (n, n_features) or images (n, h, w[, c]).
    n_features : int
        The network's input width; each sample must hold exactly this many values.
    dtype : numpy dtype
        The network's floating dtype.

    Returns
    -------
    X2d : ndarray of shape (n_samples, n_features)
        C-contiguous, of ``dtype`` (a view of ``X`` when no conversion is needed).

    Raises
    ------
    ValueError
        Wrong shape or feature count, no samples, non-numeric or non-finite values.
    """
    array = np.asarray(X)
    if array.ndim < 2 or array.shape[0] == 0:
        raise ValueError(f"expected an array of shape (n_samples, ...), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise ValueError(f"features must be numeric, got dtype {array.dtype}")
    X2d = np.ascontiguousarray(array.reshape(array.shape[0], -1), dtype=dtype)
    if X2d.shape[1] != n_features:
        raise ValueError(f"expected {n_features} features per sample, got {X2d.shape[1]}")
    if not np.isfinite(X2d).all():
        raise ValueError("features contain NaN or infinite values")
    return X2d


def fit_standardization(X: Array) -> tuple[Array, Array]:
    """Per-feature ``mean`` and ``scale`` of ``X`` (n_samples, n_features), in its dtype.

    ``scale`` is the standard deviation, with 1 where a feature is constant (so that feature
    maps to 0, not NaN).
    """
    mean = X.mean(axis=0, dtype=np.float64)
    std = X.std(axis=0, dtype=np.float64)
    std[std == 0.0] = 1.0
    return mean.astype(X.dtype), std.astype(X.dtype)


def standardize(X: Array, mean: Array, scale: Array) -> Array:
    """Return ``(X - mean) / scale`` as a new array of shape (n_samples, n_features)."""
    out = X - mean
    out /= scale
    return out


def encode_targets(
    y: ArrayLike, output: str, n_outputs: int, dtype: DTypeLike
) -> tuple[Array, list[Any] | None]:
    """Turn targets into the matrix ``Y`` the output layer is trained against.

    Parameters
    ----------
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Class labels (any values ``np.unique`` can sort) for ``"sigmoid"`` and ``"softmax"``
        outputs; real targets for ``"identity"``.
    output : str
        The network's output layer, one of ``core.choices.OUTPUTS``.
    n_outputs : int
        Width of the network's output layer.
    dtype : numpy dtype

    Returns
    -------
    Y : ndarray of shape (n_samples, n_outputs)
        Indicator column (sigmoid), one-hot rows (softmax) or the targets (identity).
    classes : list or None
        The sorted distinct labels as Python values (JSON-able); ``None`` for regression.

    Raises
    ------
    ValueError
        Labels that do not fit the output layer.
    """
    labels = np.asarray(y)
    if output == "identity":
        if labels.dtype.kind not in "biuf":
            raise ValueError(
                f"regression targets must be numbers, got labels of dtype {labels.dtype}"
            )
        if labels.ndim == 1:
            labels = labels[:, None]
        if labels.ndim != 2 or labels.shape[1] != n_outputs:
            raise ValueError(
                f"expected targets of shape (n_samples, {n_outputs}), got {labels.shape}"
            )
        Y = np.ascontiguousarray(labels, dtype=dtype)
        if not np.isfinite(Y).all():
            raise ValueError("targets contain NaN or infinite values")
        return Y, None
    if labels.ndim != 1:
        raise ValueError(f"class labels must have shape (n_samples,), got {labels.shape}")
    distinct, indices = np.unique(labels, return_inverse=True)
    classes = distinct.tolist()
    if output == "sigmoid":
        if len(classes) != 2 or n_outputs != 1:
            raise ValueError(
                f"a sigmoid output with one unit needs exactly 2 classes, got {len(classes)}"
            )
        return indices.astype(dtype)[:, None], classes
    if len(classes) != n_outputs:
        raise ValueError(
            f"the softmax output has {n_outputs} units but the labels hold {len(classes)} classes"
        )
    Y = np.zeros((labels.shape[0], n_outputs), dtype=dtype)
    Y[np.arange(labels.shape[0]), indices] = 1
    return Y, classes


def split_indices(
    n_samples: int, validation_fraction: float, rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Shuffle ``range(n_samples)`` and cut off ``validation_fraction`` of it for validation.

    Returns
    -------
    train : ndarray of int, sorted
    validation : ndarray of int, sorted (empty when the fraction is 0)
    """
    if validation_fraction == 0.0:
        return np.arange(n_samples), np.empty(0, dtype=np.intp)
    n_validation = round(n_samples * validation_fraction)
    if not 1 <= n_validation < n_samples:
        raise ValueError(
            f"validation_fraction={validation_fraction} leaves no samples for training or "
            f"validation out of {n_samples}"
        )
    order = rng.permutation(n_samples)
    # Sorted indices keep the rows in their original order, which helps memory locality.
    return np.sort(order[n_validation:]), np.sort(order[:n_validation])
