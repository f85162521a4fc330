"""Forward and backward passes over preallocated buffers, for training.

A :class:`Workspace` owns every array one training step needs (activations, deltas, parameter
gradients, scratch), sized once for the largest batch and reused at every step, so the hot loop
allocates almost nothing: matrix products write into their destinations with ``out=``, and
activations, derivatives and bias additions work in place.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from core.activations import (
    DERIVATIVES,
    DERIVATIVES_INTO_OUTPUT,
    KEEPS_ONE,
    TRAINING_ACTIVATIONS,
    Array,
)
from core.network import Network
from core.outputs import ACCURACY, COSTS

# Elementwise passes over a batch larger than the cache run one block of about this many bytes
# of a buffer at a time, so that a pass reads what the previous one left in the L2 cache (2 MiB
# per core here). Measured on the wide workload's 20,000 x 257 float32 layer (CPU time, one
# thread): bias + ReLU 3.2 -> 2.5 ms, ReLU derivative 4.4 -> 2.9 ms, with the bias gradient's
# GEMV folded in 6.0 -> 3.4 ms; blocks of 256-1024 rows did about equally well.
BLOCK_BYTES = 512 * 1024


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
    ``block_bytes`` sizes the row blocks that elementwise work over large batches runs in
    (see :data:`BLOCK_BYTES`).

    Every layer after the first reads its input from a buffer with one extra column of ones,
    and its weights and bias as one ``(n_in + 1, n_out)`` block of the network's packed
    parameters (see :meth:`Network.packed_parameters`): the bias is then added inside the matrix
    product, and the bias gradient comes out of the weight-gradient product, with no separate
    pass over the activations for either.

    Attributes
    ----------
    packed_gradients : ndarray
        All gradients, laid out as :meth:`Network.packed_parameters`.
    gradients : list of ndarray
        ``[dW_0, db_0, dW_1, db_1, ...]``, views of ``packed_gradients`` matching
        :meth:`Network.parameters`.
    """

    def __init__(
        self, net: Network, batch_size: int, gather: bool = False, block_bytes: int = BLOCK_BYTES
    ) -> None:
        self.net = net
        self.block_bytes = block_bytes
        dtype = net.dtype
        widths = net.layer_dims[1:]
        packed = net.packed_parameters()
        self.packed_gradients = np.empty_like(packed)
        self.blocks: list[Array] = []  # W_l stacked on b_l, views of the packed parameters
        self.gradient_blocks: list[Array] = []
        offset = 0
        for n_in, n_out in zip(net.layer_dims, widths, strict=False):
            end = offset + (n_in + 1) * n_out
            self.blocks.append(packed[offset:end].reshape(n_in + 1, n_out))
            self.gradient_blocks.append(self.packed_gradients[offset:end].reshape(n_in + 1, n_out))
            offset = end
        self.gradients = [v for g in self.gradient_blocks for v in (g[:-1], g[-1])]
        # For widening layers (n_in + 1 < n_out) OpenBLAS computes delta.T @ A faster than
        # A.T @ delta; written straight into the gradient's transpose (a Fortran-ordered view,
        # which matmul hands to BLAS as is) it needs no copy: on the recipe's 32->64, 64->128
        # and 128->256 layers 20, 46 and 137 us against 31, 62 and 149 us for A.T @ delta and
        # 22, 53 and 137 us for the product into a buffer plus a transposing copy. Narrowing
        # layers are faster the other way round.
        self._layers = [
            _Layer(
                block,
                block.T,
                block[:-1],
                block[:-1].T,
                block[-1],
                gradient,
                gradient.T,
                gradient[:-1],
                gradient[-1],
                transposed=layer > 0 and block.shape[0] < block.shape[1],
                outer=block.shape[1] == 1,
            )
            for layer, (block, gradient) in enumerate(
                zip(self.blocks, self.gradient_blocks, strict=True)
            )
        ]
        # Hidden activations carry a last column of ones, the input the biases multiply, and so
        # do their deltas (an extra column that no product reads): elementwise work then runs
        # over whole contiguous buffers, several times faster than over strided views. The
        # deltas start at zero so that column stays finite: dA = dZ W^T is written without it
        # (a product one column narrower: 128->256 on the recipe, 186 against 191 us here).
        # ReLU's last hidden layer under one output unit, over several blocks, writes its delta
        # into its activations instead (see step); its zeros here are then never touched,
        # which costs no memory.
        self.activations = [np.ones((batch_size, n + 1), dtype=dtype) for n in widths[:-1]]
        self.output = np.empty((batch_size, widths[-1]), dtype=dtype)
        self.deltas = [np.zeros((batch_size, n + 1), dtype=dtype) for n in widths[:-1]]
        self.output_delta = np.empty((batch_size, widths[-1]), dtype=dtype)
        self.scratch = np.empty((batch_size, widths[-1]), dtype=dtype)
        # Elementwise work over large batches runs in blocks of rows that stay in the L2 cache
        # (see _row_blocks). Two buffers, the largest block's worth, serve every hidden layer in
        # turn: a boolean scratch for the derivatives, and zeros for ReLU to take the maximum
        # against (see relu_against_zeros). np.zeros maps the zero page, which reads cost no
        # memory traffic as long as nothing writes them.
        itemsize = np.dtype(dtype).itemsize
        largest_block = max(
            (
                min(batch_size, 4 * _block_rows(n + 1, itemsize, block_bytes)) * (n + 1)
                for n in widths[:-1]
            ),
            default=0,
        )
        self.mask = np.empty(largest_block, dtype=np.bool_)
        self.zeros = np.zeros(largest_block, dtype=dtype)
        # The first layer's input has no ones column: its bias gradient is ones @ delta, a GEMV
        # several times faster than sum(axis=0).
        self.ones = np.ones(batch_size, dtype=dtype)
        self.bias_partial = np.empty(widths[0] + 1, dtype=dtype)
        # The first layer's bias with a 0 for the ones column, as one row and, for batches run
        # in several blocks, as a block's worth of rows (see step).
        self.first_bias = np.zeros((1, widths[0] + 1), dtype=dtype)
        self.first_bias_head = self.first_bias[0, :-1]
        first_block_rows = _block_rows(widths[0] + 1, itemsize, block_bytes)
        self.first_bias_rows = np.empty(
            (first_block_rows if batch_size > 4 * first_block_rows else 0, widths[0] + 1), dtype
        )
        # Mini-batches are gathered into these; full-batch training passes its data directly.
        self.batch_size = batch_size
        gathered = batch_size if gather else 0
        self.X_batch = np.empty((gathered, net.layer_dims[0]), dtype=dtype)
        self.Y_batch = np.empty((gathered, widths[-1]), dtype=dtype)
        self.activate = TRAINING_ACTIVATIONS[net.hidden_activation]
        self.restore_ones = net.hidden_activation not in KEEPS_ONE
        self.derivative = DERIVATIVES[net.hidden_activation]
        self.derivative_into_output = DERIVATIVES_INTO_OUTPUT.get(net.hidden_activation)
        self.cost_and_activate = COSTS[net.output]
        # Views for a batch of ``batch_size`` rows, the full-batch case, are built once: on the
        # many-layer, few-sample networks, slicing at every step is a measurable overhead.
        self._full_views = self._views(batch_size)

    def _views(self, m: int) -> _BatchViews:
        """The workspace's buffers sized for a batch of ``m`` rows (see _BatchViews)."""
        hidden = []
        for A, delta in zip(self.activations, self.deltas, strict=True):
            width = A.shape[1]
            blocks = []
            for rows in _row_blocks(m, width, A.dtype.itemsize, self.block_bytes):
                shape = (rows.stop - rows.start, width)
                size = shape[0] * width
                mask, zeros = self.mask[:size].reshape(shape), self.zeros[:size].reshape(shape)
                blocks.append((A[rows], delta[rows], mask, zeros))
            A_aug, delta_aug = A[:m], delta[:m]
            hidden.append(
                _LayerViews(
                    A_aug,
                    A_aug.T,
                    A_aug[:, :-1],
                    delta_aug,
                    delta_aug[:, :-1],
                    delta_aug[:, :-1].T,
                    blocks,
                )
            )
        output_delta = self.output_delta[:m]
        return _BatchViews(
            hidden, self.output[:m], output_delta, output_delta.T, self.scratch[:m], self.ones[:m]
        )

    def step(self, X: Array, Y: Array, l2: float, scale: float = 1.0) -> tuple[float, Array]:
        """One forward and backward pass over a batch; fills :attr:`gradients`.

        Parameters
        ----------
        X : ndarray of shape (m, n_features)
            The batch, prepared, with ``m <= batch_size``.
        Y : ndarray of shape (m, n_outputs)
            Its encoded targets.
        l2 : float
            L2 regularization strength.
        scale : float
            Factor applied to every gradient. Optimizers linear in the gradient pass the
            learning rate here, which folds ``lr * g`` into the backward pass at no cost.

        Returns
        -------
        cost : float
            Cost of the batch before the update, including the L2 penalty.
        output : ndarray of shape (m, n_outputs)
            The output activations (a view into the workspace, valid until the next step).
        """
        m = X.shape[0]
        views = self._full_views if m == self.batch_size else self._views(m)
        hidden, layers = views.hidden, self._layers
        matmul, activate, restore_ones = np.matmul, self.activate, self.restore_ones
        output = views.output
        # The first layer: its input X has no ones column.
        first = layers[0]
        if hidden:
            # The bias, padded with a 0 for the ones column, is added over the whole contiguous
            # buffer: 3x faster than over the strided view without that column.
            np.copyto(self.first_bias_head, first.bias)
            bias = self.first_bias
            if len(hidden[0].blocks) > 1:
                # Adding a row to every row runs at half the speed of adding a whole array of
                # the same shape (510 x 257 float32: 16 us against 8 us here), so the bias is
                # copied into a block of rows once and every block adds that.
                np.copyto(self.first_bias_rows, bias)
                bias = self.first_bias_rows
            matmul(X, first.weights, out=hidden[0].Z)
            # Bias and activation one cache-sized block of rows at a time: the second pass
            # reads what the first left in the cache instead of memory.
            for Z, _, _, zeros in hidden[0].blocks:
                np.add(Z, bias[: len(Z)], out=Z)
                activate(Z, zeros)
                if restore_ones:
                    Z[:, -1] = 1
            for below, above, layer in zip(hidden, hidden[1:], layers[1:], strict=False):
                matmul(below.A_aug, layer.block, out=above.Z)
                for Z, _, _, zeros in above.blocks:
                    activate(Z, zeros)
                    if restore_ones:
                        Z[:, -1] = 1
            matmul(hidden[-1].A_aug, layers[-1].block, out=output)
        else:
            matmul(X, first.weights, out=output)
            np.add(output, first.bias, out=output)
        cost = self.cost_and_activate(output, Y, views.scratch)
        if l2 != 0.0:
            cost += l2_penalty(self.net, l2, m)

        # Canonical-link output layers all give dCost/dZ = (A - Y) / m.
        delta, delta_T = views.output_delta, views.output_delta_T
        np.subtract(output, Y, out=delta)
        np.multiply(delta, scale / m, out=delta)
        derivative = self.derivative
        decay = scale * l2 / m
        first_gradient = first.gradient
        several_first_blocks = bool(hidden) and len(hidden[0].blocks) > 1
        # The one output unit's weights, as a row, while the delta below it still lacks them
        # (see the outer product below); else None.
        unit_weights: Array | None = None
        for layer, below in zip(layers[:0:-1], hidden[::-1], strict=True):
            # dW stacked on db.
            if layer.transposed:
                matmul(delta_T, below.A_aug, out=layer.gradient_T)
            else:
                matmul(below.A_aug_T, delta, out=layer.gradient)
            weights_T = layer.weights_T
            if unit_weights is not None:
                # delta diag(w) W^T = delta (W diag(w))^T, and likewise for the gradient.
                np.multiply(layer.gradient, unit_weights, out=layer.gradient)
                weights_T = np.multiply(layer.weights, unit_weights).T
                unit_weights = None
            if l2 != 0.0:
                np.add(layer.gradient_weights, decay * layer.weights, out=layer.gradient_weights)
            if not layer.outer:
                matmul(delta, weights_T, out=below.delta)
            # Over several blocks, the one output unit's delta is broadcast without its weights,
            # which the next products take instead: writing delta times w into the blocks
            # costs a multiply over short rows, slower than the copy (wide workload here: 2.4
            # ms a step against 1.2). With one block the product is a single call either way.
            defer_unit_weights = layer.outer and len(below.blocks) > 1
            # ReLU's delta then goes into the activations, which nothing reads after their mask:
            # each block is written where it was just read, in the cache (wide workload here:
            # 2.1% faster a step, and the layer's delta buffer is never touched).
            into_output = self.derivative_into_output if defer_unit_weights else None
            # With one block, the first layer's bias gradient is one GEMV after the loop;
            # with several, each block adds its part while it is still in the cache.
            accumulate = below is hidden[0] and several_first_blocks
            if accumulate:
                first_gradient[-1] = 0
            start = 0
            for A_rows, delta_rows, mask, _ in below.blocks:
                stop = start + len(A_rows)
                if into_output is not None:
                    into_output(A_rows, delta[start:stop], mask)
                    A_rows[:, -1] = 1  # the ones column, for the next forward pass
                    delta_rows = A_rows
                else:
                    if defer_unit_weights:
                        np.copyto(delta_rows, delta[start:stop])
                    elif layer.outer:
                        # An outer product: BLAS runs it as a K=1 GEMM, 3x slower than
                        # broadcasting.
                        np.multiply(delta[start:stop], layer.block_T, out=delta_rows)
                    derivative(A_rows, delta_rows, mask)
                if accumulate:
                    partial = self.bias_partial
                    matmul(self.ones[: stop - start], delta_rows, out=partial)
                    np.add(first_gradient[-1], partial[:-1], out=first_gradient[-1])
                start = stop
            if defer_unit_weights:
                unit_weights = layer.weights.T
            if into_output is not None:
                delta, delta_T = below.Z, below.Z.T
            else:
                delta, delta_T = below.delta, below.delta_T
        # The gradient with respect to the inputs X is never needed.
        matmul(X.T, delta, out=first.gradient_weights)
        if not several_first_blocks:
            matmul(views.ones, delta, out=first.gradient_bias)
        if unit_weights is not None:
            np.multiply(first.gradient, unit_weights, out=first.gradient)
        if l2 != 0.0:
            np.add(first.gradient_weights, decay * first.weights, out=first.gradient_weights)
        return cost, output


def _block_rows(width: int, itemsize: int, block_bytes: int) -> int:
    return max(1, block_bytes // (width * itemsize))


def _row_blocks(m: int, width: int, itemsize: int, block_bytes: int) -> list[slice]:
    """Slices covering ``range(m)`` in blocks of about ``block_bytes`` of a row-major buffer
    ``width`` values wide; one slice when the whole buffer is no more than four blocks, where
    the cache gains do not pay for the extra calls."""
    rows = _block_rows(width, itemsize, block_bytes)
    if m <= 4 * rows:
        return [slice(0, m)]
    return [slice(start, min(start + rows, m)) for start in range(0, m, rows)]


class _Layer(NamedTuple):
    """A layer's parameters and gradients, as views of the packed buffers, and how its
    products run (see Workspace.__init__)."""

    block: Array  # W stacked on b, (n_in + 1, n_out)
    block_T: Array
    weights: Array  # W
    weights_T: Array
    bias: Array  # b
    gradient: Array  # dW stacked on db
    gradient_T: Array
    gradient_weights: Array
    gradient_bias: Array
    transposed: bool  # the gradient is computed as its transpose
    outer: bool  # one output unit: dA is an outer product


class _LayerViews(NamedTuple):
    """A hidden layer's buffers for one batch size (see :meth:`Workspace._views`)."""

    A_aug: Array  # its activations and the ones column
    A_aug_T: Array
    Z: Array  # the same without the ones column, where its pre-activations are written
    delta_aug: Array  # dCost/dA, then dCost/dZ, with an extra column that is ignored
    delta: Array  # the same without the extra column
    delta_T: Array
    # Row blocks: that block of A_aug and of delta_aug, the derivative's boolean scratch and
    # zeros for the activation, both of the block's shape (see Workspace.mask and .zeros).
    blocks: list[tuple[Array, Array, NDArray[np.bool_], Array]]


class _BatchViews(NamedTuple):
    """The workspace's buffers for one batch size: built once for full batches, because on
    many-layer, few-sample networks slicing at every step is a measurable overhead."""

    hidden: list[_LayerViews]
    output: Array
    output_delta: Array
    output_delta_T: Array
    scratch: Array
    ones: Array
