"""The training loop: reproducibility, stopping rules, optimizers, schedules and dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from core import DivergenceError, EarlyStopping, Network, TrainConfig, train
from core.choices import OPTIMIZERS
from core.optimizers import learning_rate_at

Data = tuple[np.ndarray, np.ndarray]


def test_same_seed_gives_identical_weights_and_history(blobs: Data) -> None:
    X, y = blobs
    config = TrainConfig(
        learning_rate=0.05, n_iterations=20, batch_size=32, validation_fraction=0.2, seed=4
    )
    runs = []
    for _ in range(2):
        net = Network((4, 8, 1), seed=9)
        runs.append((net, train(net, X, y, config)))
    (net_a, result_a), (net_b, result_b) = runs
    assert result_a.history == result_b.history
    for a, b in zip(net_a.parameters(), net_b.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_history_records_every_kth_and_validation_metrics(blobs: Data) -> None:
    X, y = blobs
    config = TrainConfig(n_iterations=25, record_every=10, validation_fraction=0.25)
    result = train(Network((4, 8, 1)), X, y, config)
    assert [p["iteration"] for p in result.history] == [1, 10, 20, 25]
    assert set(result.history[0]) == {"iteration", "cost", "accuracy", "val_cost", "val_accuracy"}


def test_early_stopping_restores_the_best_weights(blobs: Data) -> None:
    X, y = blobs
    stopping = EarlyStopping(patience=3)
    # A large step makes the validation cost bounce, so the best point is not the last one.
    config = TrainConfig(
        learning_rate=0.5,
        n_iterations=300,
        optimizer="momentum",
        validation_fraction=0.3,
        early_stopping=stopping,
    )
    net = Network((4, 32, 1), seed=1)
    snapshots: dict[int, list[np.ndarray]] = {}
    result = train(
        net, X, y, config, on_progress=lambda i, _: snapshots.__setitem__(i, net.get_parameters())
    )
    assert result.stopped_early and not result.stopped_by_callback
    best = min(result.history, key=lambda p: p["val_cost"])
    assert result.best_iteration == best["iteration"] != result.history[-1]["iteration"]
    for restored, kept in zip(net.parameters(), snapshots[int(best["iteration"])], strict=True):
        np.testing.assert_array_equal(restored, kept)


def test_callback_returning_true_stops_cleanly(blobs: Data) -> None:
    X, y = blobs
    seen: list[int] = []

    def on_progress(iteration: int, metrics: dict[str, float]) -> bool:
        seen.append(iteration)
        assert metrics["iteration"] == iteration
        return iteration == 5

    result = train(Network((4, 8, 1)), X, y, TrainConfig(n_iterations=100), on_progress)
    assert seen == [1, 2, 3, 4, 5]
    assert result.stopped_by_callback
    assert result.n_iterations_run == 5
    assert len(result.history) == 5


def test_huge_learning_rate_raises_divergence_error(blobs: Data) -> None:
    X, y = blobs
    config = TrainConfig(learning_rate=1e30, n_iterations=50, standardize=False)
    with pytest.raises(DivergenceError) as caught:
        train(Network((4, 8, 8, 1), init="normal"), X * 1e3, y, config)
    assert caught.value.iteration >= 2
    assert len(caught.value.history) == caught.value.iteration - 1


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("batch_size", [None, 50])
def test_each_optimizer_lowers_the_cost(blobs: Data, optimizer: str, batch_size: int) -> None:
    X, y = blobs
    learning_rate = 0.01 if optimizer == "adam" else 0.1
    config = TrainConfig(
        learning_rate=learning_rate, n_iterations=30, optimizer=optimizer, batch_size=batch_size
    )
    history = train(Network((4, 8, 1), seed=2), X, y, config).history
    assert history[-1]["cost"] < 0.9 * history[0]["cost"]


@pytest.mark.parametrize("schedule", ["inverse_time", "step"])
def test_learning_rate_decay_lowers_the_cost_and_the_rate(blobs: Data, schedule: str) -> None:
    X, y = blobs
    config = TrainConfig(
        learning_rate=0.1, n_iterations=40, lr_decay=schedule, decay_rate=0.5, decay_steps=10
    )
    history = train(Network((4, 8, 1), seed=2), X, y, config).history
    assert history[-1]["cost"] < 0.9 * history[0]["cost"]
    assert learning_rate_at(30, 0.1, schedule, 0.5, 10) < learning_rate_at(
        0, 0.1, schedule, 0.5, 10
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_through_training(blobs: Data, dtype: str) -> None:
    X, y = blobs
    net = Network((4, 8, 1), dtype=dtype)
    train(net, X, y, TrainConfig(n_iterations=5, optimizer="adam", batch_size=64))
    assert net.dtype == dtype
    assert all(p.dtype == np.dtype(dtype) for p in net.parameters())
    assert net.predict_proba(X).dtype == np.dtype(dtype)


def test_default_dtype_is_float32() -> None:
    assert Network((2, 1)).dtype == "float32"
    assert Network((2, 1)).weights[0].dtype == np.float32


@pytest.mark.parametrize(
    "bad",
    [{"learning_rate": 0}, {"optimizer": "sgdx"}, {"validation_fraction": 1.0}, {"batch_size": 0}],
)
def test_invalid_configuration_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        TrainConfig(**bad)  # type: ignore[arg-type]


def test_labels_that_do_not_fit_the_output_are_refused(blobs: Data) -> None:
    X, _ = blobs
    with pytest.raises(ValueError, match="2 classes"):
        train(Network((4, 1)), X, np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="softmax"):
        train(Network((4, 2), output="softmax"), X, np.arange(len(X)) % 3)
