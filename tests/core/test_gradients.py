"""Backpropagation checked against central differences of the cost, in float64."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_gradients_match

from core.activations import ACTIVATIONS
from core.backprop import Workspace, evaluate
from core.network import Network
from core.outputs import COSTS
from core.preprocessing import encode_targets


def _targets(output: str, rng: np.random.Generator, n: int) -> np.ndarray:
    if output == "sigmoid":
        return rng.integers(0, 2, n)
    if output == "softmax":
        return np.arange(n) % 3
    return rng.standard_normal((n, 3))


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("output", sorted(COSTS))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_backprop_matches_central_differences(activation: str, output: str, l2: float) -> None:
    rng = np.random.default_rng(7)
    n_out = 1 if output == "sigmoid" else 3
    net = Network((4, 5, 6, n_out), activation, output, init="xavier", seed=3, dtype="float64")
    for b in net.biases:
        b[:] = rng.standard_normal(b.shape) * 0.1
    X = rng.standard_normal((9, 4))
    Y, _ = encode_targets(_targets(output, rng, 9), output, n_out, net.dtype)

    workspace = Workspace(net, len(X))
    cost, _ = workspace.step(X, Y, l2)
    assert cost == pytest.approx(evaluate(net, X, Y, l2)[0], rel=1e-12)

    assert_gradients_match(net, X, Y, l2, workspace.gradients)
