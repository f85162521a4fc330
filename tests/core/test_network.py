"""The network object: construction, prediction checks and bytes round-trips."""

from __future__ import annotations

import numpy as np
import pytest

from core import ModelFormatError, Network, TrainConfig, train

Data = tuple[np.ndarray, np.ndarray]


def test_shapes_follow_layer_dims() -> None:
    net = Network((5, 4, 3, 2), output="softmax")
    assert [W.shape for W in net.weights] == [(5, 4), (4, 3), (3, 2)]
    assert [b.shape for b in net.biases] == [(4,), (3,), (2,)]


def test_from_parameters_checks_that_layers_chain() -> None:
    with pytest.raises(ValueError, match="chain"):
        Network.from_parameters([np.ones((3, 2)), np.ones((3, 1))], [np.zeros(2), np.zeros(1)])


def test_bytes_round_trip_gives_identical_predictions(blobs: Data) -> None:
    X, y = blobs
    labels = np.where(y == 1, "yes", "no")
    net = Network((4, 8, 1), hidden_activation="leaky_relu")
    train(net, X, labels, TrainConfig(n_iterations=20, standardize=True))
    clone = Network.from_bytes(net.to_bytes())
    np.testing.assert_array_equal(clone.predict_proba(X), net.predict_proba(X))
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))
    assert set(clone.predict(X)) <= {"yes", "no"}
    assert clone.classes == ["no", "yes"]
    assert clone.feature_mean is not None


def test_regression_round_trip_keeps_input_shape() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 2, 3))
    net = Network((6, 4, 2), output="identity", dtype="float64")
    train(net, X, X[:, 0, :2], TrainConfig(n_iterations=3))
    clone = Network.from_bytes(net.to_bytes())
    assert clone.input_shape == (2, 3)
    assert clone.dtype == "float64"
    np.testing.assert_array_equal(clone.predict(X), net.predict(X))
    with pytest.raises(ValueError, match="probabilities"):
        clone.predict_proba(X)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 4, b"\xff" * 64, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......"],
)
def test_malformed_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        Network.from_bytes(data)


def test_truncated_and_foreign_bytes_raise_model_format_error() -> None:
    data = Network((3, 2, 1)).to_bytes()
    with pytest.raises(ModelFormatError):
        Network.from_bytes(data[:-5])
    from safetensors.numpy import save

    with pytest.raises(ModelFormatError):
        Network.from_bytes(save({"x": np.zeros(2)}))


def test_predict_checks_the_feature_count(blobs: Data) -> None:
    X, y = blobs
    net = Network((4, 3, 1))
    with pytest.raises(ValueError, match="expected 4 features per sample, got 3"):
        net.predict(X[:, :3])
    train(net, X, y, TrainConfig(n_iterations=2))
    with pytest.raises(ValueError, match="expected 4 features per sample, got 3"):
        net.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        net.predict(np.full((1, 4), np.nan))


def test_images_are_accepted_flat_or_shaped() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 2, 3))
    net = Network((6, 2), output="softmax")
    train(net, X, np.arange(20) % 2, TrainConfig(n_iterations=2))
    np.testing.assert_array_equal(net.predict(X), net.predict(X.reshape(20, 6)))
    assert net.classes == [0, 1]


def test_from_parameters_keeps_classes_and_scaling() -> None:
    net = Network.from_parameters(
        [np.ones((2, 1))],
        [np.zeros(1)],
        classes=["a", "b"],
        feature_mean=[1, 1],
        feature_scale=[2, 2],
    )
    assert net.dtype == "float64"
    assert list(net.predict([[3.0, 3.0], [-3.0, -3.0]])) == ["b", "a"]
