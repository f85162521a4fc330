"""Output layers: each pairs an output activation with its matching cost.

All three pairs (sigmoid + binary cross-entropy, softmax + cross-entropy, identity + half mean
squared error) are canonical links, so the gradient of the cost with respect to the output
pre-activation is ``(A - Y) / m`` for every one of them; the backward pass relies on that.

Costs are computed from the logits ``Z`` rather than from the probabilities ``A``: that never
takes ``log(0)`` nor exponentiates a large positive number, so the cost stays finite and exact to
rounding for any finite logit, including ``|z| > 700`` in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.activations import Array, sigmoid, zero_of


def binary_cross_entropy(Z: Array, Y: Array, scratch: Array) -> float:
    """Mean binary cross-entropy from logits; overwrites ``Z`` with ``sigmoid(Z)``.

    ``-[y log a + (1-y) log(1-a)]`` with ``a = sigmoid(z)`` equals ``softplus(z) - y z``, which
    is summed here as ``softplus(-|z|) + (max(z, 0) - y z)``. Both parts are ``>= 0`` element by
    element for ``y`` in [0, 1], also after rounding, so the cost can never come out negative.
    (``sum(softplus(z)) - vdot(y, z)`` subtracts two large sums that cancel in float32 when the
    fit is near perfect and ``|z|`` is large: it recorded costs below zero.)

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs)
        Logits; on return, the predicted probabilities.
    Y : ndarray of shape (n_samples, n_outputs)
        Targets in [0, 1] (in practice {0, 1}).
    scratch : ndarray of shape (n_samples, n_outputs)
        Work space, overwritten.

    Returns
    -------
    cost : float
        ``sum(softplus(z) - y z) / n_samples``.
    """
    # max(z, 0) - y z: -y z where z <= 0, and z - y z where z > 0. Rounding is monotonic and
    # y z lies between 0 and z, so each computed term is >= 0 exactly as the true one is.
    np.multiply(Y, Z, out=scratch)
    np.negative(scratch, out=scratch)
    np.add(scratch, Z, out=scratch, where=Z > 0)
    hinge = float(scratch.sum(dtype=np.float64))
    # softplus(-|z|) = log1p(exp(-|z|)), in (0, log 2]. exp then log1p, where exp cannot
    # overflow, is what np.logaddexp(0, -|z|) computes, 7-15x faster (SIMD loops).
    np.abs(Z, out=scratch)
    np.negative(scratch, out=scratch)
    np.exp(scratch, out=scratch)
    np.log1p(scratch, out=scratch)
    smooth = float(scratch.sum(dtype=np.float64))
    # sigmoid(z) = exp(-softplus(-z)) = exp(min(z, 0) - softplus(-|z|)), from what is at hand.
    np.minimum(Z, zero_of(Z), out=Z)
    np.subtract(Z, scratch, out=Z)
    np.exp(Z, out=Z)
    return (smooth + hinge) / int(Z.shape[0])


def _log_softmax(Z: Array, out: Array) -> None:
    """Row-wise ``log(softmax(Z))`` into ``out``, shifted by the row maximum for stability."""
    np.subtract(Z, Z.max(axis=1, keepdims=True), out=out)
    out -= np.log(np.exp(out).sum(axis=1, keepdims=True))


def cross_entropy(Z: Array, Y: Array, scratch: Array) -> float:
    """Mean categorical cross-entropy from logits; overwrites ``Z`` with ``softmax(Z)``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_classes)
        Logits; on return, the class probabilities (rows sum to one).
    Y : ndarray of shape (n_samples, n_classes)
        One-hot targets.
    scratch : ndarray of shape (n_samples, n_classes)
        Work space, overwritten with the log-probabilities.

    Returns
    -------
    cost : float
        ``-sum(y log softmax(z)) / n_samples``.
    """
    _log_softmax(Z, scratch)
    cost = -float(np.vdot(Y, scratch)) / int(Z.shape[0])
    np.exp(scratch, out=Z)
    return cost


def half_squared_error(Z: Array, Y: Array, scratch: Array) -> float:
    """Half mean squared error ``sum((z - y)**2) / (2 m)``; the identity output leaves ``Z``.

    Parameters
    ----------
    Z : ndarray of shape (n_samples, n_outputs)
        Predictions (the identity output's activations equal its logits).
    Y : ndarray of shape (n_samples, n_outputs)
        Targets.
    scratch : ndarray of shape (n_samples, n_outputs)
        Work space, overwritten with the residuals.
    """
    np.subtract(Z, Y, out=scratch)
    return float(np.vdot(scratch, scratch)) / (2 * int(Z.shape[0]))


def softmax(Z: Array) -> None:
    """Row-wise softmax, in place."""
    _log_softmax(Z, Z)
    np.exp(Z, out=Z)


def identity(Z: Array) -> None:
    """The identity output: activations equal the logits."""


def binary_accuracy(A: Array, Y: Array) -> float:
    """Fraction of outputs on the right side of 0.5."""
    return float(np.mean((A >= 0.5) == (Y >= 0.5)))


def multiclass_accuracy(A: Array, Y: Array) -> float:
    """Fraction of rows whose most probable class is the target class."""
    return float(np.mean(A.argmax(axis=1) == Y.argmax(axis=1)))


def r2_score(A: Array, Y: Array) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot``, pooled over the outputs.

    A constant target (``SS_tot == 0``) scores 1.0 when predicted exactly and 0.0 otherwise,
    as in scikit-learn.
    """
    residual = float(np.square(Y - A, dtype=np.float64).sum())
    total = float(np.square(Y - Y.mean(axis=0), dtype=np.float64).sum())
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


CostAndActivate = Callable[[Array, Array, Array], float]
Activate = Callable[[Array], None]
Accuracy = Callable[[Array, Array], float]

COSTS: dict[str, CostAndActivate] = {
    "sigmoid": binary_cross_entropy,
    "softmax": cross_entropy,
    "identity": half_squared_error,
}

ACTIVATE: dict[str, Activate] = {
    "sigmoid": sigmoid,
    "softmax": softmax,
    "identity": identity,
}

ACCURACY: dict[str, Accuracy] = {
    "sigmoid": binary_accuracy,
    "softmax": multiclass_accuracy,
    "identity": r2_score,
}
