"""Central-difference gradients: the oracle every backward pass is checked against."""

from __future__ import annotations

import numpy as np

from core.backprop import evaluate
from core.network import Network


def assert_gradients_match(
    net: Network,
    X: np.ndarray,
    Y: np.ndarray,
    l2: float,
    gradients: list[np.ndarray],
    eps: float = 1e-6,
) -> None:
    """Each analytic gradient equals the central difference of the cost, parameter by parameter."""
    for parameter, gradient in zip(net.parameters(), gradients, strict=True):
        numeric = np.empty_like(parameter)
        for index in np.ndindex(parameter.shape):
            saved = parameter[index]
            parameter[index] = saved + eps
            plus = evaluate(net, X, Y, l2)[0]
            parameter[index] = saved - eps
            minus = evaluate(net, X, Y, l2)[0]
            parameter[index] = saved
            numeric[index] = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(gradient, numeric, rtol=1e-5, atol=1e-8)
