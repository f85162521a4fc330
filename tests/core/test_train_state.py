"""Training state: a run continued from its state is the same run as one never interrupted."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from core import EarlyStopping, ModelFormatError, Network, TrainConfig, TrainState, train
from core.backprop import evaluate
from core.optimizers import OPTIMIZERS
from core.training import TrainResult

Data = tuple[np.ndarray, np.ndarray]
ATOL = 1e-6


def _config(optimizer: str, batch_size: int | None, n: int, **extra: object) -> TrainConfig:
    options: dict[str, object] = {
        "learning_rate": 0.01 if optimizer == "adam" else 0.1,
        "n_iterations": n,
        "optimizer": optimizer,
        "batch_size": batch_size,
        "l2": 0.01,
        "lr_decay": "step",
        "decay_rate": 0.9,
        "decay_steps": 30,
        "validation_fraction": 0.25,
        "standardize": True,
        "record_every": 1,
        "seed": 3,
    }
    return TrainConfig(**(options | extra))  # type: ignore[arg-type]


def _network() -> Network:
    return Network((4, 8, 6, 1), seed=5)


def _in_two(
    X: np.ndarray, y: np.ndarray, first: TrainConfig, second: TrainConfig
) -> tuple[Network, TrainResult, TrainResult]:
    """Train with ``first``, then continue a fresh network from the (serialized) state."""
    head = train(_network(), X, y, first)
    assert head.state is not None
    state = TrainState.from_bytes(head.state.to_bytes())
    net = _network()
    return net, head, train(net, X, y, second, state=state)


def _assert_same_parameters(a: Network, b: Network) -> None:
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert p.dtype == q.dtype == np.float32
        np.testing.assert_allclose(p, q, rtol=0, atol=ATOL)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_100_plus_100_iterations_equal_200_straight(
    blobs: Data, optimizer: str, batch_size: int | None
) -> None:
    X, y = blobs
    # Early stopping that does not trigger still carries its best cost and patience across.
    stopping = EarlyStopping(patience=10_000)
    straight_net = _network()
    straight = train(
        straight_net, X, y, _config(optimizer, batch_size, 200, early_stopping=stopping)
    )
    net, head, tail = _in_two(
        X,
        y,
        _config(optimizer, batch_size, 100, early_stopping=stopping),
        _config(optimizer, batch_size, 100, early_stopping=stopping, seed=999),
    )
    assert [p["iteration"] for p in tail.history] == list(range(101, 201))
    assert head.history + tail.history == straight.history
    assert tail.best_iteration == straight.best_iteration
    assert tail.held_point == straight.held_point
    _assert_same_parameters(net, straight_net)
    np.testing.assert_array_equal(net.feature_mean, straight_net.feature_mean)  # type: ignore[arg-type]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_early_stopping_in_the_second_half_stops_where_the_straight_run_does(
    blobs: Data, optimizer: str, batch_size: int | None
) -> None:
    X, y = blobs
    # A large step makes the validation cost bounce, so patience runs out at some point.
    stopping = EarlyStopping(patience=3)
    lr = 0.05 if optimizer == "adam" else 0.8
    straight_net = _network()
    straight = train(
        straight_net,
        X,
        y,
        _config(optimizer, batch_size, 400, early_stopping=stopping, learning_rate=lr),
    )
    split_at = max(1, straight.n_iterations_run // 2)
    net, head, tail = _in_two(
        X,
        y,
        _config(optimizer, batch_size, split_at, early_stopping=stopping, learning_rate=lr),
        _config(optimizer, batch_size, 400 - split_at, early_stopping=stopping, learning_rate=lr),
    )
    assert head.history + tail.history == straight.history
    assert (tail.stopped_early, tail.best_iteration) == (
        straight.stopped_early,
        straight.best_iteration,
    )
    assert tail.restored_best == straight.restored_best
    assert tail.held_point == straight.held_point
    _assert_same_parameters(net, straight_net)


@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_the_held_point_is_the_history_point_of_the_restored_weights(
    blobs: Data, batch_size: int | None
) -> None:
    X, y = blobs
    config = _config(
        "momentum", batch_size, 300, learning_rate=0.8, early_stopping=EarlyStopping(patience=3)
    )
    net = _network()
    result = train(net, X, y, config)
    assert result.stopped_early and result.restored_best
    assert result.held_point is not None and result.best_iteration is not None
    assert result.held_point["iteration"] == result.best_iteration < result.n_iterations_run
    assert result.held_point in result.history
    # The point's validation cost is what the restored weights really score.
    assert result.state is not None
    best = result.state.restored_best()
    mean, scale = net.feature_mean, net.feature_scale
    assert mean is not None and scale is not None and best.split is not None
    X_val = ((X[best.split[1]] - mean) / scale).astype(np.float32)
    Y_val = y[best.split[1]].astype(np.float32)[:, None]
    val_cost, val_accuracy = evaluate(net, X_val, Y_val, config.l2)
    assert val_cost == pytest.approx(result.held_point["val_cost"], rel=1e-5)
    assert val_accuracy == pytest.approx(result.held_point["val_accuracy"])


@pytest.mark.parametrize("batch_size", [None, 32], ids=["full-batch", "mini-batch"])
def test_continuing_the_restored_best_replays_the_straight_run_from_there(
    blobs: Data, batch_size: int | None
) -> None:
    X, y = blobs
    config = _config(
        "adam", batch_size, 400, learning_rate=0.05, early_stopping=EarlyStopping(patience=3)
    )
    straight = train(_network(), X, y, config)
    assert straight.stopped_early and straight.state is not None
    best = TrainState.from_bytes(straight.state.restored_best().to_bytes())
    net = _network()
    replay = train(net, X, y, dataclasses.replace(config, n_iterations=400), state=best)
    assert replay.history == straight.history[best.iteration :]
    assert (replay.stopped_early, replay.best_iteration) == (True, straight.best_iteration)
    np.testing.assert_array_equal(
        np.concatenate([p.ravel() for p in net.parameters()]),
        np.concatenate([p.ravel() for p in straight.network.parameters()]),
    )


def test_a_stop_by_the_callback_keeps_whole_iterations(blobs: Data) -> None:
    X, y = blobs
    config = _config("nesterov", None, 50)
    straight = train(_network(), X, y, config)
    head = train(_network(), X, y, config, on_progress=lambda i, _: i == 20)
    assert head.stopped_by_callback and head.state is not None
    assert head.state.iteration == 20
    tail = train(_network(), X, y, dataclasses.replace(config, n_iterations=30), state=head.state)
    assert head.history + tail.history == straight.history


def test_checkpoints_capture_the_state_after_their_iteration(blobs: Data) -> None:
    X, y = blobs
    config = _config("adam", 32, 30)
    captured: dict[int, bytes] = {}

    def on_checkpoint(iteration: int, capture: object) -> None:
        if iteration % 10 == 0:
            state = capture()  # type: ignore[operator]
            assert state.iteration == iteration
            captured[iteration] = state.to_bytes()

    straight = train(_network(), X, y, config, on_checkpoint=on_checkpoint)
    assert sorted(captured) == [10, 20, 30]
    state = TrainState.from_bytes(captured[10])
    rest = train(_network(), X, y, dataclasses.replace(config, n_iterations=20), state=state)
    assert straight.history[10:] == rest.history


def test_a_new_optimizer_starts_from_a_fresh_state(blobs: Data) -> None:
    X, y = blobs
    head = train(_network(), X, y, _config("adam", None, 20))
    assert head.state is not None and head.state.current.optimizer_steps == 20
    assert set(head.state.current.optimizer_arrays) == {"first.0", "second.0"}
    # Momentum continuing Adam's run starts from zero velocity at Adam's parameters.
    tail = train(_network(), X, y, _config("momentum", None, 5), state=head.state)
    assert tail.state is not None and tail.state.current.optimizer == "momentum"
    assert set(tail.state.current.optimizer_arrays) == {"velocities.0"}
    assert [p["iteration"] for p in tail.history] == [21, 22, 23, 24, 25]
    fresh = head.state.current
    zeroed = dataclasses.replace(
        head.state,
        current=dataclasses.replace(
            fresh,
            optimizer="momentum",
            optimizer_arrays={"velocities.0": np.zeros_like(fresh.parameters)},
            optimizer_steps=0,
        ),
    )
    again = train(_network(), X, y, _config("momentum", None, 5), state=zeroed)
    assert again.history == tail.history


def test_other_data_keeps_the_standardization(blobs: Data) -> None:
    X, y = blobs
    head = train(_network(), X, y, _config("gd", None, 10))
    assert head.state is not None
    other = X[:120] * 3 + 1
    with pytest.raises(ValueError, match="for_new_data"):
        train(_network(), other, y[:120], _config("gd", None, 5), state=head.state)
    net = _network()
    tail = train(net, other, y[:120], _config("gd", None, 5), state=head.state.for_new_data())
    np.testing.assert_array_equal(net.feature_mean, head.state.feature_mean)  # type: ignore[arg-type]
    assert tail.history[0]["iteration"] == 11


def test_a_state_of_another_architecture_is_refused(blobs: Data) -> None:
    X, y = blobs
    head = train(_network(), X, y, _config("gd", None, 5))
    assert head.state is not None
    with pytest.raises(ValueError, match="parameters"):
        train(Network((4, 3, 1)), X, y, _config("gd", None, 5), state=head.state)


def test_state_bytes_round_trip_and_hold_no_pickle(blobs: Data) -> None:
    X, y = blobs
    config = _config("adam", 32, 15, early_stopping=EarlyStopping(patience=50))
    state = train(_network(), X, y, config).state
    assert state is not None and state.early_stopping is not None
    data = state.to_bytes()
    assert b"\x80\x04" not in data[:8]  # not a pickle stream
    again = TrainState.from_bytes(data)
    assert again.iteration == 15
    assert again.current.rng_state == state.current.rng_state
    assert again.early_stopping is not None and state.early_stopping.best is not None
    assert again.early_stopping.best is not None
    assert again.early_stopping.best.point == state.early_stopping.best.point
    assert math.isfinite(again.early_stopping.best_cost)
    for name, array in state.current.optimizer_arrays.items():
        np.testing.assert_array_equal(again.current.optimizer_arrays[name], array)
    with pytest.raises(ModelFormatError):
        TrainState.from_bytes(_network().to_bytes())
    with pytest.raises(ModelFormatError):
        TrainState.from_bytes(data[:40])
