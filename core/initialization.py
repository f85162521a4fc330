"""Weight initialization: the schemes of ``core.choices.INITS``, drawn from a seeded generator.

Only weights are drawn; a :class:`~core.network.Network` starts its biases at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from core.activations import Array
from core.choices import INITS, check_choice

NORMAL_INIT_SCALE = 0.1


def init_weights(
    layer_dims: Sequence[int], init: str, rng: np.random.Generator, dtype: str
) -> list[Array]:
    """Draw the weight matrices, layer by layer from ``rng``.

    ``"normal"`` is the seed recipe's ``0.1 * N(0, 1)``; ``"he"`` is ``N(0, 2 / n_in)`` (suited
    to ReLU); ``"xavier"`` (alias ``"glorot"``) is ``U(-r, r)`` with ``r = sqrt(6 / (n_in +
    n_out))`` (suited to tanh and sigmoid). Biases always start at zero: random weights alone
    break the symmetry between units.
    """
    check_choice("init", init, INITS)
    weights = []
    for n_in, n_out in pairwise(layer_dims):
        if init == "normal":
            W = NORMAL_INIT_SCALE * rng.standard_normal((n_in, n_out))
        elif init == "he":
            W = np.sqrt(2.0 / n_in) * rng.standard_normal((n_in, n_out))
        else:
            limit = np.sqrt(6.0 / (n_in + n_out))
            W = rng.uniform(-limit, limit, (n_in, n_out))
        weights.append(W.astype(dtype))
    return weights
