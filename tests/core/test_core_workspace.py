"""The training workspace's layout: packed parameters, folded learning rate, partial batches."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import assert_gradients_match

from core.activations import ACTIVATIONS
from core.backprop import BLOCK_BYTES, Workspace
from core.network import Network
from core.preprocessing import encode_targets


def _problem(activation: str) -> tuple[Network, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    # 3 -> 6 is a widening layer, whose gradient the workspace computes transposed.
    net = Network((4, 3, 6, 3), activation, "softmax", init="xavier", seed=2, dtype="float64")
    for b in net.biases:
        b[:] = rng.standard_normal(b.shape) * 0.1
    X = rng.standard_normal((12, 4))
    Y, _ = encode_targets(np.arange(12) % 3, "softmax", 3, net.dtype)
    return net, X, Y


def test_packed_parameters_are_the_live_parameters() -> None:
    net = Network((3, 4, 1), seed=1)
    before = net.get_parameters()
    packed = net.packed_parameters()
    assert packed.size == sum(p.size for p in before)
    for live, kept in zip(net.parameters(), before, strict=True):
        assert np.shares_memory(live, packed)
        np.testing.assert_array_equal(live, kept)
    # Layer 0's block is W_0 stacked on b_0.
    np.testing.assert_array_equal(packed[:16].reshape(4, 4), np.vstack([before[0], before[1]]))
    packed -= 1.0
    np.testing.assert_array_equal(net.weights[1], before[2] - 1.0)
    assert net.packed_parameters() is packed


def test_replacing_a_parameter_array_repacks() -> None:
    net = Network((3, 4, 1), seed=1)
    packed = net.packed_parameters()
    net.biases[0] = np.full(4, 7.0, dtype=np.float32)
    repacked = net.packed_parameters()
    assert repacked is not packed
    assert np.shares_memory(net.biases[0], repacked)
    np.testing.assert_array_equal(net.biases[0], np.full(4, 7.0))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_gradient_scale_multiplies_every_gradient(activation: str) -> None:
    net, X, Y = _problem(activation)
    plain = Workspace(net, len(X))
    cost, _ = plain.step(X, Y, 0.2)
    scaled = Workspace(net, len(X))
    scaled_cost, _ = scaled.step(X, Y, 0.2, scale=0.01)
    assert scaled_cost == cost
    np.testing.assert_allclose(scaled.packed_gradients, 0.01 * plain.packed_gradients, rtol=1e-12)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_partial_batch_matches_a_workspace_of_its_size(activation: str) -> None:
    net, X, Y = _problem(activation)
    large = Workspace(net, len(X), gather=True)
    large.step(X, Y, 0.0)  # a full batch first, so the buffers hold stale values
    cost, output = large.step(X[:5], Y[:5], 0.0)
    exact = Workspace(net, 5)
    exact_cost, exact_output = exact.step(X[:5], Y[:5], 0.0)
    assert cost == pytest.approx(exact_cost, rel=1e-12)
    np.testing.assert_allclose(output, exact_output, rtol=1e-12)
    np.testing.assert_allclose(large.packed_gradients, exact.packed_gradients, rtol=1e-12)


def test_single_layer_network_trains_through_the_workspace() -> None:
    net = Network((4, 3), output="softmax", seed=0, dtype="float64")
    _, X, Y = _problem("relu")
    workspace = Workspace(net, len(X))
    cost, output = workspace.step(X, Y, 0.0)
    np.testing.assert_allclose(output.sum(axis=1), 1.0)
    manual = X.T @ (output - Y) / len(X)
    np.testing.assert_allclose(workspace.gradients[0], manual, rtol=1e-12)
    assert cost > 0


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_widening_layer_gradients_match_central_differences(l2: float) -> None:
    net, X, Y = _problem("tanh")
    workspace = Workspace(net, len(X))
    assert any(layer.transposed for layer in workspace._layers)  # the path under test
    workspace.step(X, Y, l2)
    assert_gradients_match(net, X, Y, l2, workspace.gradients)


@pytest.mark.parametrize("hidden", [(3, 6), (6,)])
@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_row_blocks_give_the_same_step(
    activation: str, output: str, hidden: tuple[int, ...]
) -> None:
    # Large batches run their elementwise work in row blocks (and accumulate the first bias
    # gradient block by block); tiny blocks force that path on a small problem.
    rng = np.random.default_rng(11)
    n_out = 1 if output == "sigmoid" else 3
    net = Network((4, *hidden, n_out), activation, output, init="xavier", seed=2, dtype="float64")
    for b in net.biases:
        b[:] = rng.standard_normal(b.shape) * 0.1
    X = rng.standard_normal((50, 4))
    labels = rng.integers(0, 2, 50) if output == "sigmoid" else np.arange(50) % 3
    Y, _ = encode_targets(labels, output, n_out, net.dtype)
    whole = Workspace(net, len(X))
    blocked = Workspace(net, len(X), gather=True, block_bytes=56)  # 1-2 rows per block
    assert len(blocked._full_views.hidden[0].blocks) > 4
    cost, output_ = whole.step(X, Y, 0.1)
    blocked_cost, blocked_output = blocked.step(X, Y, 0.1)
    assert blocked_cost == pytest.approx(cost, rel=1e-12)
    np.testing.assert_allclose(blocked_output, output_, rtol=1e-12)
    np.testing.assert_allclose(blocked.packed_gradients, whole.packed_gradients, rtol=1e-10)
    assert_gradients_match(net, X, Y, 0.1, blocked.gradients)
    # A second step after an update: what the first step's backward pass left in the buffers
    # (a delta written into the activations, and their ones column) does not leak into it.
    net.packed_parameters()[...] -= blocked.packed_gradients
    cost, output_ = whole.step(X, Y, 0.1)
    blocked_cost, blocked_output = blocked.step(X, Y, 0.1)
    assert blocked_cost == pytest.approx(cost, rel=1e-12)
    np.testing.assert_allclose(blocked_output, output_, rtol=1e-12)
    np.testing.assert_allclose(blocked.packed_gradients, whole.packed_gradients, rtol=1e-10)
    # A partial batch through the blocked workspace equals a workspace of its size.
    partial_cost, _ = blocked.step(X[:37], Y[:37], 0.0)
    exact = Workspace(net, 37)
    assert partial_cost == pytest.approx(exact.step(X[:37], Y[:37], 0.0)[0], rel=1e-12)
    np.testing.assert_allclose(blocked.packed_gradients, exact.packed_gradients, rtol=1e-10)


@pytest.mark.parametrize("block_bytes", [BLOCK_BYTES, 56])
@pytest.mark.parametrize("output", ["sigmoid", "softmax", "identity"])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_training_forward_pass_matches_inference(
    activation: str, output: str, block_bytes: int
) -> None:
    # Training runs its own forms of the activations (ReLU against a zeros buffer, not a 0-d zero,
    # over row blocks for large batches; the sigmoid output is taken from the cost's softplus);
    # they must give what inference does.
    rng = np.random.default_rng(3)
    n_out = 3 if output == "softmax" else 1
    net = Network((5, 7, 4, n_out), activation, output, init="xavier", seed=4, dtype="float32")
    for b in net.biases:
        b[:] = rng.standard_normal(b.shape) * 0.5
    X = (rng.standard_normal((40, 5)) * 3).astype(np.float32)
    labels = np.arange(40) % 3 if output == "softmax" else rng.integers(0, 2, 40)
    Y, _ = encode_targets(labels, output, n_out, net.dtype)
    _, trained = Workspace(net, len(X), block_bytes=block_bytes).step(X, Y, 0.0)
    np.testing.assert_allclose(trained, net.forward(X), rtol=2e-6, atol=1e-7)
