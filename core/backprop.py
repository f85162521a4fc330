"""Forward and backward passes over preallocated buffers, for training.

A :class:`Workspace` owns every array one training step needs (activations, deltas, parameter
gradients, scratch), sized once for the largest batch and reused at every step, so the hot loop
allocates almost nothing: matrix products write into their destinations with ``out=``, and
activations, derivatives and bias additions work in place.
"""

from __future__ import annotations

import numpy as np

from core.activations import ACTIVATIONS, DERIVATIVES, Array
from core.network import Network
from core.outputs import ACCURACY, COSTS


def l2_penalty(net: Network, l2: float, n_samples: int) -> float:
    """``l2 / (2 m) * sum ||W||^2`` over the weight matrices (biases are not penalized)."""
    if l2 == 0.0:
        return 0.0
    return l2 / (2 * n_samples) * sum(float(np.vdot(W, W)) for W in net.weights)


def evaluate(net: Network, X2d: Array, Y: Array, l2: float) -> tuple[float, float]:
    """Cost (with the L2 penalty) and accuracy of ``net`` on prepared data.

    Parameters
    ----------
    X2d : ndarray of shape (n_samples, n_features)
    Y : ndarray of shape (n_samples, n_outputs)
        Encoded targets (see :func:`core.preprocessing.encode_targets`).

    Returns
    -------
    cost, accuracy : float
        Accuracy is R² for regression.
    """
    Z = net.logits(X2d)
    cost = COSTS[net.output](Z, Y, np.empty_like(Z))
    return cost + l2_penalty(net, l2, len(X2d)), ACCURACY[net.output](Z, Y)


class Workspace:
    """Buffers and passes for training ``net`` on batches of at most ``batch_size`` rows.

    ``gather=True`` also allocates ``X_batch`` and ``Y_batch`` to copy mini-batches into.

    Attributes
    ----------
    gradients : list of ndarray
        ``[dW_0, db_0, dW_1, db_1, ...]``, matching :meth:`Network.parameters`.
    """

    def __init__(self, net: Network, batch_size: int, gather: bool = False) -> None:
        self.net = net
        dtype = net.dtype
        widths = net.layer_dims[1:]
        self.activations = [np.empty((batch_size, n), dtype=dtype) for n in widths]
        self.deltas = [np.empty((batch_size, n), dtype=dtype) for n in widths]
        self.scratch = np.empty((batch_size, widths[-1]), dtype=dtype)
        # One boolean buffer serves every hidden layer's derivative in turn.
        self.mask = np.empty(batch_size * max(widths), dtype=np.bool_)
        self.gradients = [np.empty_like(p) for p in net.parameters()]
        # Mini-batches are gathered into these; full-batch training passes its data directly.
        self.batch_size = batch_size
        gathered = batch_size if gather else 0
        self.X_batch = np.empty((gathered, net.layer_dims[0]), dtype=dtype)
        self.Y_batch = np.empty((gathered, widths[-1]), dtype=dtype)
        self.activate = ACTIVATIONS[net.hidden_activation]
        self.derivative = DERIVATIVES[net.hidden_activation]
        self.cost_and_activate = COSTS[net.output]

    def step(self, X: Array, Y: Array, l2: float) -> tuple[float, Array]:
        """One forward and backward pass over a batch; fills :attr:`gradients`.

        Parameters
        ----------
        X : ndarray of shape (m, n_features)
            The batch, prepared, with ``m <= batch_size``.
        Y : ndarray of shape (m, n_outputs)
            Its encoded targets.
        l2 : float
            L2 regularization strength.

        Returns
        -------
        cost : float
            Cost of the batch before the update, including the L2 penalty.
        output : ndarray of shape (m, n_outputs)
            The output activations (a view into the workspace, valid until the next step).
        """
        net = self.net
        m = X.shape[0]
        A_prev = X
        outputs = [A[:m] for A in self.activations]
        last = len(outputs) - 1
        for layer, (A, W, b) in enumerate(zip(outputs, net.weights, net.biases, strict=True)):
            np.matmul(A_prev, W, out=A)
            A += b
            if layer < last:
                self.activate(A)
            A_prev = A
        cost = self.cost_and_activate(outputs[last], Y, self.scratch[:m])
        cost += l2_penalty(net, l2, m)

        # Canonical-link output layers all give dCost/dZ = (A - Y) / m.
        delta = self.deltas[last][:m]
        np.subtract(outputs[last], Y, out=delta)
        delta *= 1.0 / m
        for layer in range(last, -1, -1):
            dW, db = self.gradients[2 * layer], self.gradients[2 * layer + 1]
            A_in = X if layer == 0 else outputs[layer - 1]
            np.matmul(A_in.T, delta, out=dW)
            np.sum(delta, axis=0, out=db)
            if l2 != 0.0:
                dW += (l2 / m) * net.weights[layer]
            if layer == 0:
                break  # the gradient with respect to the inputs is never needed
            previous = self.deltas[layer - 1][:m]
            np.matmul(delta, net.weights[layer].T, out=previous)
            mask = self.mask[: previous.size].reshape(previous.shape)
            self.derivative(A_in, previous, mask)
            delta = previous
        return cost, outputs[last]
