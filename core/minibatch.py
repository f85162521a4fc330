"""One mini-batch epoch: a pass over the training rows in batches, one optimizer step each.

Full-batch training takes one step per iteration in :func:`core.training.train` itself; with
``TrainConfig.batch_size`` below the row count, each iteration is one call of
:func:`minibatch_epoch`.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from core.activations import Array
from core.backprop import Workspace
from core.optimizers import Optimizer
from core.outputs import ACCURACY


def minibatch_epoch(
    workspace: Workspace,
    optimizer: Optimizer,
    X: Array,
    Y: Array,
    order: NDArray[np.intp],
    lr: float,
    l2: float,
    with_accuracy: bool,
) -> tuple[float, float]:
    """One pass over ``X`` in batches of ``workspace.batch_size`` rows taken in ``order``.

    Returns the batch-size-weighted mean cost and accuracy (accuracy only when asked, else 0);
    a non-finite batch cost is returned at once.
    """
    net = workspace.net
    parameters, gradients = [net.packed_parameters()], [workspace.packed_gradients]
    cost = acc = 0.0
    gradient_scale, step_lr = (lr, 1.0) if optimizer.linear else (1.0, lr)
    for start in range(0, len(X), workspace.batch_size):
        rows = order[start : start + workspace.batch_size]
        m = len(rows)
        X_batch, Y_batch = workspace.X_batch[:m], workspace.Y_batch[:m]
        np.take(X, rows, axis=0, out=X_batch)
        np.take(Y, rows, axis=0, out=Y_batch)
        batch_cost, output = workspace.step(X_batch, Y_batch, l2, gradient_scale)
        if not math.isfinite(batch_cost):
            return batch_cost, acc
        cost += batch_cost * m / len(X)
        if with_accuracy:
            acc += ACCURACY[net.output](output, Y_batch) * m / len(X)
        optimizer.step(parameters, gradients, step_lr)
    return cost, acc
