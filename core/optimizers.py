"""Parameter update rules and learning-rate schedules.

Every optimizer updates the parameters in place and may overwrite the gradients it is given
(they are recomputed from scratch at the next step), so a step allocates nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.activations import Array
from core.choices import LR_SCHEDULES, OPTIMIZERS


class Optimizer:
    """Plain gradient descent: ``p <- p - lr * g``, the seed recipe's update.

    Attributes
    ----------
    linear : bool
        Whether the update depends on ``lr`` and ``g`` only through ``lr * g``. Then the
        training loop has the backward pass deliver ``lr * g`` (see ``Workspace.step``'s
        ``scale``) and calls :meth:`step` with ``lr=1``, saving a pass over every parameter.
    """

    linear = True
    #: Names of the per-parameter state arrays, in :meth:`state_arrays` order.
    state_names: tuple[str, ...] = ()

    def __init__(self, parameters: Sequence[Array]) -> None:
        del parameters

    @property
    def step_count(self) -> int:
        """Steps taken so far, where the update depends on it (Adam's bias correction)."""
        return 0

    def state_arrays(self) -> dict[str, Array]:
        """Copies of the state the next step depends on, as ``{"<name>.<i>": array}``."""
        return {
            f"{name}.{i}": array.copy()
            for name in self.state_names
            for i, array in enumerate(getattr(self, name))
        }

    def load_state(self, arrays: dict[str, Array], step_count: int) -> None:
        """Put back what :meth:`state_arrays` and :attr:`step_count` returned (copied in place).

        Raises
        ------
        ValueError
            Arrays missing or of other shapes than this optimizer's parameters.
        """
        for name in self.state_names:
            for i, target in enumerate(getattr(self, name)):
                source = arrays.get(f"{name}.{i}")
                if source is None or source.shape != target.shape:
                    raise ValueError(f"optimizer state {name}.{i} is missing or of another shape")
                np.copyto(target, source)
        del step_count

    def step(self, parameters: Sequence[Array], gradients: Sequence[Array], lr: float) -> None:
        """Update ``parameters`` in place from ``gradients`` (which are overwritten)."""
        for p, g in zip(parameters, gradients, strict=True):
            if lr != 1.0:
                g *= lr
            p -= g


class Momentum(Optimizer):
    """Heavy-ball momentum, ``v <- mu v - lr g; p <- p + v``, or Nesterov's variant.

    Nesterov's look-ahead is applied in the reformulation used by scikit-learn and PyTorch:
    ``p <- p + mu v - lr g`` with the updated velocity ``v``.
    """

    state_names = ("velocities",)

    def __init__(self, parameters: Sequence[Array], mu: float, nesterov: bool) -> None:
        self.mu = mu
        self.nesterov = nesterov
        self.velocities = [np.zeros_like(p) for p in parameters]

    def step(self, parameters: Sequence[Array], gradients: Sequence[Array], lr: float) -> None:
        for p, g, v in zip(parameters, gradients, self.velocities, strict=True):
            if lr != 1.0:
                g *= lr
            v *= self.mu
            v -= g
            if self.nesterov:
                p -= g
                np.multiply(v, self.mu, out=g)
                p += g
            else:
                p += v


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction folded into the step size."""

    linear = False
    state_names = ("first", "second")

    def __init__(
        self, parameters: Sequence[Array], beta1: float, beta2: float, epsilon: float
    ) -> None:
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.t = 0
        self.first = [np.zeros_like(p) for p in parameters]
        self.second = [np.zeros_like(p) for p in parameters]
        self.scratch = [np.empty_like(p) for p in parameters]

    @property
    def step_count(self) -> int:
        return self.t

    def load_state(self, arrays: dict[str, Array], step_count: int) -> None:
        super().load_state(arrays, step_count)
        self.t = step_count

    def step(self, parameters: Sequence[Array], gradients: Sequence[Array], lr: float) -> None:
        self.t += 1
        step_size = lr * math.sqrt(1 - self.beta2**self.t) / (1 - self.beta1**self.t)
        moments = zip(parameters, gradients, self.first, self.second, self.scratch, strict=True)
        for p, g, m, v, s in moments:
            m *= self.beta1
            np.multiply(g, 1 - self.beta1, out=s)
            m += s
            v *= self.beta2
            np.square(g, out=s)
            s *= 1 - self.beta2
            v += s
            np.sqrt(v, out=s)
            s += self.epsilon
            np.divide(m, s, out=s)
            s *= step_size
            p -= s


def make_optimizer(
    name: str,
    parameters: Sequence[Array],
    momentum: float = 0.9,
    beta1: float = 0.9,
    beta2: float = 0.999,
    epsilon: float = 1e-8,
) -> Optimizer:
    """Build the optimizer ``name`` (one of ``OPTIMIZERS``) for ``parameters``."""
    if name == "gd":
        return Optimizer(parameters)
    if name in ("momentum", "nesterov"):
        return Momentum(parameters, momentum, nesterov=name == "nesterov")
    if name == "adam":
        return Adam(parameters, beta1, beta2, epsilon)
    raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {name!r}")


def learning_rate_at(
    iteration: int, base: float, schedule: str, decay_rate: float, decay_steps: int
) -> float:
    """The learning rate for 0-based ``iteration``.

    ``"none"``: ``base``; ``"inverse_time"``: ``base / (1 + decay_rate * iteration /
    decay_steps)``; ``"step"``: ``base * decay_rate ** (iteration // decay_steps)``.
    """
    if schedule == "none":
        return base
    if schedule == "inverse_time":
        return base / (1 + decay_rate * iteration / decay_steps)
    if schedule == "step":
        return base * decay_rate ** (iteration // decay_steps)
    raise ValueError(f"lr_decay must be one of {list(LR_SCHEDULES)}, got {schedule!r}")
