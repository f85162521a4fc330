"""Each optimizer, step by step, against two independent implementations on the same gradients.

The references are scikit-learn's ``SGDOptimizer`` (with and without Nesterov) and
``AdamOptimizer`` (the same conventions as the core: Nesterov in the look-ahead reformulation,
Adam's bias correction folded into the step size), and a plain-Python one written here, one
float at a time. The learning-rate schedules and the L2 term are recomputed here too.
Gradients are given (backprop is checked against central differences elsewhere), so any
difference is the optimizer's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

from core import Network, TrainConfig, train
from core.backprop import Workspace
from core.choices import LR_SCHEDULES, OPTIMIZERS
from core.optimizers import learning_rate_at, make_optimizer
from core.preprocessing import encode_targets

MOMENTUM = 0.8
BETA1, BETA2, EPSILON = 0.85, 0.99, 1e-7
BASE_LR, DECAY_RATE, DECAY_STEPS = 0.05, 0.5, 3
N_STEPS = 12
# Rows in the batch the L2 term is divided by, as in the core's cost l2 / (2 m) * ||W||^2.
BATCH_ROWS = 8


def reference_lr(t: int, schedule: str) -> float:
    """The schedules as documented, for 0-based step ``t``."""
    if schedule == "none":
        return BASE_LR
    if schedule == "inverse_time":
        return BASE_LR / (1.0 + DECAY_RATE * t / DECAY_STEPS)
    return BASE_LR * DECAY_RATE ** math.floor(t / DECAY_STEPS)


class PlainPython:
    """The update rules one float at a time: no NumPy, no shared code with the core."""

    def __init__(self, name: str, parameters: list[np.ndarray]) -> None:
        self.name = name
        self.values = [[float(v) for v in p.ravel()] for p in parameters]
        self.velocity = [[0.0] * len(p) for p in self.values]
        self.first = [[0.0] * len(p) for p in self.values]
        self.second = [[0.0] * len(p) for p in self.values]
        self.t = 0

    def step(self, gradients: list[list[float]], lr: float) -> None:
        self.t += 1
        for values, grads, vel, m, v in zip(
            self.values, gradients, self.velocity, self.first, self.second, strict=True
        ):
            for i, g in enumerate(grads):
                if self.name == "gd":
                    values[i] -= lr * g
                elif self.name == "momentum":
                    vel[i] = MOMENTUM * vel[i] - lr * g
                    values[i] += vel[i]
                elif self.name == "nesterov":
                    # Sutskever's look-ahead, rewritten for a gradient taken at the parameters
                    # themselves (Bengio et al. 2013): p += mu^2 v - (1 + mu) lr g, then v.
                    values[i] += MOMENTUM * MOMENTUM * vel[i] - (1 + MOMENTUM) * lr * g
                    vel[i] = MOMENTUM * vel[i] - lr * g
                else:
                    # Kingma & Ba, section 2: the bias corrections folded into the step size.
                    m[i] = BETA1 * m[i] + (1 - BETA1) * g
                    v[i] = BETA2 * v[i] + (1 - BETA2) * g * g
                    alpha = lr * math.sqrt(1 - BETA2**self.t) / (1 - BETA1**self.t)
                    values[i] -= alpha * m[i] / (math.sqrt(v[i]) + EPSILON)


def sklearn_optimizer(name: str, parameters: list[np.ndarray]) -> Any:
    if name == "adam":
        return AdamOptimizer(parameters, BASE_LR, beta_1=BETA1, beta_2=BETA2, epsilon=EPSILON)
    mu = 0.0 if name == "gd" else MOMENTUM
    return SGDOptimizer(parameters, BASE_LR, momentum=mu, nesterov=name == "nesterov")


def sklearn_step(optimizer: Any, parameters: list[np.ndarray], grads: Any, lr: float) -> None:
    # sklearn's schedules differ from the core's; the rate of this step is set directly.
    if isinstance(optimizer, AdamOptimizer):
        optimizer.learning_rate_init = lr
    else:
        optimizer.learning_rate = lr
    optimizer.update_params(parameters, grads)


def with_l2(
    base: list[np.ndarray], parameters: list[Any], l2: float, to_float: Callable[[Any], Any]
) -> list[Any]:
    """``base + l2 / m * W`` for the weight matrices (even indices), ``base`` for the biases."""
    return [
        to_float(b + (l2 / BATCH_ROWS) * np.asarray(p).reshape(b.shape) if i % 2 == 0 else b)
        for i, (b, p) in enumerate(zip(base, parameters, strict=True))
    ]


@pytest.mark.parametrize("l2", [0.0, 0.7])
@pytest.mark.parametrize("schedule", LR_SCHEDULES)
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_each_step_matches_sklearn_and_plain_python(name: str, schedule: str, l2: float) -> None:
    rng = np.random.default_rng(3)
    shapes = [(3, 2), (2,), (2, 1), (1,)]
    start = [rng.standard_normal(shape) for shape in shapes]
    core_params = [p.copy() for p in start]
    sk_params = [p.copy() for p in start]
    plain = PlainPython(name, start)
    core = make_optimizer(name, core_params, MOMENTUM, BETA1, BETA2, EPSILON)
    sk = sklearn_optimizer(name, sk_params)
    for t in range(N_STEPS):
        lr = learning_rate_at(t, BASE_LR, schedule, DECAY_RATE, DECAY_STEPS)
        assert lr == pytest.approx(reference_lr(t, schedule), rel=1e-15)
        # Gradients of very different sizes, some near zero, where Adam's epsilon matters.
        base = [rng.standard_normal(shape) * 10.0 ** rng.integers(-6, 2) for shape in shapes]
        core_grads = with_l2(base, core_params, l2, np.array)
        if core.linear:
            # How training drives a linear optimizer: lr * g from the backward pass, lr = 1.
            core.step(core_params, [lr * g for g in core_grads], 1.0)
        else:
            core.step(core_params, core_grads, lr)
        sklearn_step(sk, sk_params, with_l2(base, sk_params, l2, np.array), lr)
        plain.step(with_l2(base, plain.values, l2, lambda a: list(a.ravel())), lr)
        for mine, theirs, by_hand in zip(core_params, sk_params, plain.values, strict=True):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-14, err_msg=f"step {t}")
            np.testing.assert_allclose(mine.ravel(), by_hand, rtol=1e-12, atol=1e-14)


def test_the_linear_shortcut_equals_the_plain_step() -> None:
    """A linear optimizer given lr * g with lr = 1 moves exactly as given g and lr."""
    rng = np.random.default_rng(0)
    for name in OPTIMIZERS:
        a, b = [rng.standard_normal(5)], [np.zeros(5)]
        b[0][:] = a[0]
        first, second = make_optimizer(name, a), make_optimizer(name, b)
        if not first.linear:
            continue
        for _ in range(5):
            g = rng.standard_normal(5)
            first.step(a, [g.copy()], 0.3)
            second.step(b, [0.3 * g], 1.0)
        np.testing.assert_allclose(a[0], b[0], rtol=1e-14)


@pytest.mark.parametrize("batch_size", [None, 7])
@pytest.mark.parametrize(("schedule", "l2"), [("none", 0.0), ("inverse_time", 0.5), ("step", 0.2)])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_training_moves_the_weights_as_sklearn_optimizers_do(
    name: str, schedule: str, l2: float, batch_size: int | None
) -> None:
    """train() end to end: the same gradients (the core's backprop) fed to sklearn's optimizer."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 3))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(np.int64)
    config = TrainConfig(
        learning_rate=BASE_LR,
        n_iterations=6,
        optimizer=name,  # type: ignore[arg-type]
        batch_size=batch_size,
        l2=l2,
        lr_decay=schedule,  # type: ignore[arg-type]
        decay_rate=DECAY_RATE,
        decay_steps=DECAY_STEPS,
        momentum=MOMENTUM,
        beta1=BETA1,
        beta2=BETA2,
        epsilon=EPSILON,
        seed=2,
    )
    trained = Network((3, 4, 1), "tanh", "sigmoid", init="xavier", seed=5, dtype="float64")
    train(trained, X, y, config)

    reference = Network((3, 4, 1), "tanh", "sigmoid", init="xavier", seed=5, dtype="float64")
    Y, _ = encode_targets(y, "sigmoid", 1, "float64")
    rows = batch_size or len(X)
    workspace = Workspace(reference, rows)
    # After the workspace packed them: the live parameters its passes read.
    parameters = reference.parameters()
    optimizer = sklearn_optimizer(name, parameters)
    shuffle = np.random.default_rng(config.seed)  # train()'s own: no validation split draws
    for epoch in range(config.n_iterations):
        lr = reference_lr(epoch, schedule)
        order = shuffle.permutation(len(X)) if batch_size else np.arange(len(X))
        for start in range(0, len(X), rows):
            batch = order[start : start + rows]
            workspace.step(X[batch], Y[batch], l2)
            sklearn_step(optimizer, parameters, [g.copy() for g in workspace.gradients], lr)
    for mine, theirs in zip(trained.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-12)
