"""The spec -> core adapter: the task decision, and Hyperparameters -> Network and TrainConfig.

Unit tests (no server): the live tests cover the HTTP path.
"""

from __future__ import annotations

import dataclasses
from typing import Any, get_args

import numpy as np
import pytest

from app.errors import InvalidInput
from app.jobs.spec import build, decide_task, describe_architecture
from app.schemas.jobs import EarlyStoppingIn, Hyperparameters, RequestedTask
from core import EarlyStopping, TrainConfig, train
from core.choices import OPTIMIZERS, TASKS


@pytest.mark.parametrize(
    ("requested", "label_kind", "classes", "decided"),
    [
        ("auto", "binary", ["no", "yes"], "binary"),
        ("auto", "multiclass", [1, 2, 3], "multiclass"),
        ("auto", "regression", None, "regression"),
        ("binary", "binary", [0, 1], "binary"),
        ("multiclass", "binary", ["a", "b"], "multiclass"),
        ("multiclass", "multiclass", ["a", "b", "c"], "multiclass"),
        ("regression", "regression", None, "regression"),
        ("regression", "multiclass", [1, 2, 3], "regression"),
        ("regression", "binary", [0, 1], "regression"),
    ],
)
def test_decide_task_accepts_what_the_labels_allow(
    requested: RequestedTask, label_kind: str, classes: list[Any] | None, decided: str
) -> None:
    assert decide_task(requested, label_kind, classes) == decided


@pytest.mark.parametrize(
    ("requested", "label_kind", "classes", "fragment"),
    [
        ("regression", "binary", ["cat", "dog"], "strings"),
        ("regression", "multiclass", ["a", "b", "c"], "strings"),
        ("binary", "multiclass", [1, 2, 3], "exactly 2 classes, the labels hold 3"),
        ("binary", "regression", None, "real-valued"),
        ("multiclass", "regression", None, "real-valued"),
    ],
)
def test_decide_task_names_the_conflict(
    requested: RequestedTask, label_kind: str, classes: list[Any] | None, fragment: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        decide_task(requested, label_kind, classes)
    assert raised.value.status_code == 422
    assert repr(requested) in raised.value.message and fragment in raised.value.message
    assert raised.value.details[0]["loc"] == ["hyperparameters", "task"]


def test_every_requested_task_is_auto_or_a_core_task() -> None:
    assert get_args(RequestedTask) == ("auto", *TASKS)


def test_stored_hyperparameters_validate_back_into_the_same_model() -> None:
    hp = Hyperparameters(
        hidden_layers=[5, 3],
        task="binary",
        optimizer="nesterov",
        beta1=0.8,
        epsilon=1e-6,
        shuffle=False,
        validation_fraction=0.2,
        early_stopping=EarlyStoppingIn(patience=4, restore_best=False),
        dtype="float64",
    )
    stored = hp.model_dump(mode="json")  # what the job row's JSON column holds
    assert Hyperparameters.model_validate(stored) == hp


def test_hyperparameters_stored_before_new_fields_take_their_defaults() -> None:
    old = {
        "hidden_layers": [4],
        "activation": "relu",
        "task": "auto",
        "learning_rate": 0.1,
        "n_iterations": 3,
        "optimizer": "adam",
        "momentum": 0.9,
        "batch_size": None,
        "l2": 0.0,
        "lr_decay": "none",
        "decay_rate": 0.5,
        "decay_steps": 100,
        "init": "he",
        "validation_fraction": 0.1,
        "early_stopping": {"patience": 3, "min_delta": 0.0},
        "standardize": True,
        "seed": 0,
        "record_every": 1,
        "dtype": "float32",
    }
    hp = Hyperparameters.model_validate(old)
    config = hp.to_train_config()
    assert (config.beta1, config.beta2, config.epsilon, config.shuffle) == (0.9, 0.999, 1e-8, True)
    assert config.early_stopping == EarlyStopping(patience=3, min_delta=0.0, restore_best=True)


def test_to_train_config_carries_every_core_option() -> None:
    hp = Hyperparameters(
        learning_rate=0.3,
        n_iterations=7,
        optimizer="momentum",
        momentum=0.5,
        beta1=0.7,
        beta2=0.99,
        epsilon=1e-5,
        batch_size=16,
        shuffle=False,
        l2=0.25,
        lr_decay="step",
        decay_rate=0.9,
        decay_steps=3,
        validation_fraction=0.25,
        early_stopping=EarlyStoppingIn(patience=2, min_delta=0.01, restore_best=False),
        standardize=False,
        seed=11,
        record_every=2,
    )
    config = hp.to_train_config()
    for field in dataclasses.fields(TrainConfig):
        if field.name == "early_stopping":
            continue
        # Every core option is a hyperparameter of the same name, and arrives unchanged.
        assert getattr(config, field.name) == getattr(hp, field.name), field.name
    assert config.early_stopping == EarlyStopping(patience=2, min_delta=0.01, restore_best=False)


@pytest.mark.parametrize(
    ("task", "y", "output", "n_outputs"),
    [
        ("binary", np.array(["a", "b"] * 10), "sigmoid", 1),
        ("multiclass", np.array([1, 2, 3, 4] * 5), "softmax", 4),
        ("multiclass", np.array([0, 1] * 10), "softmax", 2),
        ("regression", np.linspace(0, 1, 20), "identity", 1),
        ("regression", np.ones((20, 3)), "identity", 3),
    ],
)
def test_build_makes_the_network_of_the_decided_task(
    task: RequestedTask, y: np.ndarray, output: str, n_outputs: int
) -> None:
    X = np.random.default_rng(0).standard_normal((20, 2, 3))
    hp = Hyperparameters(hidden_layers=[4, 3], task=task, activation="tanh", init="xavier", seed=5)
    net, config = build(hp, X, y)
    assert net.layer_dims == (6, 4, 3, n_outputs)
    assert (net.output, net.hidden_activation, net.task) == (output, "tanh", task)
    assert config == hp.to_train_config()
    train(net, X, y, TrainConfig(n_iterations=1))
    architecture = describe_architecture(net)
    assert architecture["task"] == task and architecture["input_shape"] == [2, 3]


def test_build_refuses_an_undecided_task() -> None:
    with pytest.raises(ValueError, match="decided"):
        build(Hyperparameters(), np.ones((4, 2)), np.array([0, 1, 0, 1]))


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_same_spec_trains_the_same_network(optimizer: Any) -> None:
    X = np.random.default_rng(1).standard_normal((30, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    hp = Hyperparameters(task="binary", optimizer=optimizer, n_iterations=5, batch_size=8)
    runs = []
    for _ in range(2):
        net, config = build(hp, X, y)
        runs.append(train(net, X, y, config).history)
    assert runs[0] == runs[1]
