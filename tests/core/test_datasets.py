"""End-to-end accuracy on scikit-learn's bundled data and a synthetic regression."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split

from core import Network, TrainConfig, train


def test_breast_cancer_binary_classification() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=2, stratify=y
    )
    net = Network((30, 16, 8, 1), seed=0)
    config = TrainConfig(
        learning_rate=0.1, n_iterations=500, l2=3.0, record_every=50, standardize=True
    )
    train(net, X_train, y_train, config)
    assert np.mean(net.predict(X_test) == y_test) >= 0.95


def test_digits_images_multiclass() -> None:
    X, y = load_digits(return_X_y=True)
    X = X.reshape(-1, 8, 8)
    labels = np.array([f"digit-{d}" for d in y])
    X_train, X_test, y_train, y_test = train_test_split(
        X, labels, test_size=0.25, random_state=0, stratify=y
    )
    net = Network((64, 64, 10), output="softmax", seed=0)
    config = TrainConfig(
        learning_rate=0.01, n_iterations=40, optimizer="adam", batch_size=64, standardize=True
    )
    train(net, X_train, y_train, config)
    assert net.input_shape == (8, 8)
    assert np.mean(net.predict(X_test) == y_test) >= 0.95
    proba = net.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)


def test_regression_of_a_smooth_function() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (1200, 2))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    net = Network((2, 32, 32, 1), hidden_activation="tanh", output="identity", init="xavier")
    config = TrainConfig(learning_rate=0.01, n_iterations=300, optimizer="adam", batch_size=100)
    train(net, X[:1000], y[:1000], config)
    prediction = net.predict(X[1000:])
    residual = np.sum((y[1000:] - prediction) ** 2)
    total = np.sum((y[1000:] - y[1000:].mean()) ** 2)
    assert 1 - residual / total >= 0.95
