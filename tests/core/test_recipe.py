"""The seed recipe, reproduced exactly, and the stability of its cost."""

from __future__ import annotations

import numpy as np
import pytest

from core import Network, TrainConfig, train
from core.outputs import binary_cross_entropy


def _recipe_costs(
    X: np.ndarray, Y: np.ndarray, W: list[np.ndarray], b: list[np.ndarray], lr: float, n: int
) -> list[float]:
    """The recipe's plain equations, column-major: X is (n_x, m), W[l] is (n_l, n_{l-1})."""
    W = [w.copy() for w in W]
    b = [v.copy() for v in b]
    m = X.shape[1]
    L = len(W)
    costs = []
    for _ in range(n):
        A = [X]
        Z = []
        for layer in range(L):
            Z.append(W[layer] @ A[-1] + b[layer])
            if layer < L - 1:
                A.append(np.maximum(0, Z[-1]))
            else:
                A.append(1 / (1 + np.exp(-Z[-1])))
        AL = A[-1]
        costs.append(float(-np.mean(Y * np.log(AL) + (1 - Y) * np.log(1 - AL))))
        dA = -(Y / AL - (1 - Y) / (1 - AL))
        for layer in reversed(range(L)):
            dZ = dA * AL * (1 - AL) if layer == L - 1 else dA * (Z[layer] > 0)
            dW = dZ @ A[layer].T / m
            db = dZ.sum(axis=1, keepdims=True) / m
            dA = W[layer].T @ dZ
            W[layer] -= lr * dW
            b[layer] -= lr * db
    return costs


def test_first_ten_costs_match_the_recipe() -> None:
    rng = np.random.default_rng(0)
    dims = (5, 4, 3, 1)
    X = rng.standard_normal((dims[0], 40))
    Y = (X[0:1] - X[1:2] > 0).astype(np.float64)
    # The recipe's init: 0.1 * N(0, 1) weights, zero biases, weights as (n_out, n_in).
    W = [0.1 * rng.standard_normal((dims[i + 1], dims[i])) for i in range(3)]
    b = [np.zeros((dims[i + 1], 1)) for i in range(3)]
    expected = _recipe_costs(X, Y, W, b, lr=0.5, n=10)

    net = Network.from_parameters([w.T for w in W], [v[:, 0] for v in b], dtype="float64")
    config = TrainConfig(learning_rate=0.5, n_iterations=10, standardize=False)
    result = train(net, X.T, Y[0].astype(np.int64), config)

    np.testing.assert_allclose([p["cost"] for p in result.history], expected, rtol=0, atol=1e-10)


def test_recipe_init_is_scaled_normal_with_zero_biases() -> None:
    net = Network((3, 4, 1), init="normal", seed=5, dtype="float64")
    expected = 0.1 * np.random.default_rng(5).standard_normal((3, 4))
    np.testing.assert_array_equal(net.weights[0], expected)
    assert all(not b.any() for b in net.biases)


@pytest.mark.parametrize("z", [-800.0, -710.0, 710.0, 800.0])
@pytest.mark.parametrize("y", [0.0, 1.0])
def test_binary_cross_entropy_is_stable_for_huge_logits(z: float, y: float) -> None:
    Z = np.array([[z]])
    cost = binary_cross_entropy(Z, np.array([[y]]), np.empty_like(Z))
    # For |z| this large, the exact cost is |z| when the sign is wrong and exp(-|z|) ~ 0 else.
    wrong = (z > 0) != (y == 1.0)
    assert np.isfinite(cost)
    assert cost == pytest.approx(abs(z) if wrong else 0.0, abs=1e-300)
    assert Z[0, 0] == pytest.approx(1.0 if z > 0 else 0.0, abs=1e-300)


def test_binary_cross_entropy_matches_the_textbook_formula() -> None:
    Z = np.linspace(-6, 6, 13)[:, None]
    Y = (np.arange(13) % 2).astype(np.float64)[:, None]
    A = 1 / (1 + np.exp(-Z))
    expected = -np.mean(Y * np.log(A) + (1 - Y) * np.log(1 - A))
    assert binary_cross_entropy(Z.copy(), Y, np.empty_like(Z)) == pytest.approx(expected, 1e-14)


def _cancelling_binary_cross_entropy(Z: np.ndarray, Y: np.ndarray) -> float:
    """The former formula, ``sum(softplus(z)) - vdot(y, z)``: two large sums that cancel."""
    return (float(np.logaddexp(0, Z).sum()) - float(np.vdot(Y, Z))) / int(Z.shape[0])


def test_binary_cross_entropy_is_never_negative_for_a_near_perfect_float32_fit() -> None:
    # Seed 6 of this regime (large |z| on the right side for every sample, float32) is one
    # where the former formula gave a negative cost, as recorded by a long training run.
    rng = np.random.default_rng(6)
    Y = (rng.random((1000, 1)) < 0.5).astype(np.float32)
    Z = (rng.uniform(15, 40, (1000, 1)) * (2 * Y - 1)).astype(np.float32)
    assert _cancelling_binary_cross_entropy(Z, Y) < 0
    exact = float(np.mean(np.logaddexp(0, -np.abs(Z.astype(np.float64)))))
    cost = binary_cross_entropy(Z.copy(), Y, np.empty_like(Z))
    assert cost >= 0
    assert cost == pytest.approx(exact, rel=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_terms_are_never_negative(dtype: type[np.floating]) -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        Y = (rng.random((257, 3)) < 0.5).astype(dtype)
        scale = 10.0 ** rng.uniform(-3, 2)
        Z = ((2 * Y - 1) * rng.exponential(scale, Y.shape) * 40).astype(dtype)
        assert binary_cross_entropy(Z.copy(), Y, np.empty_like(Z)) >= 0
