"""Turn stored hyperparameters and a dataset into a core Network and TrainConfig."""

from __future__ import annotations

from typing import Any

import numpy as np

from core import EarlyStopping, Network, TrainConfig

OUTPUT_BY_TASK = {"binary": "sigmoid", "multiclass": "softmax", "regression": "identity"}


def resolve_task(hyperparameters: dict[str, Any], dataset_task: str) -> str:
    task = str(hyperparameters.get("task", "auto"))
    return dataset_task if task == "auto" else task


def output_units(task: str, y: np.ndarray) -> int:
    if task == "binary":
        return 1
    if task == "multiclass":
        return int(np.unique(y).size)
    return 1 if y.ndim == 1 else int(y.shape[1])


def build_network(
    hyperparameters: dict[str, Any], task: str, X: np.ndarray, y: np.ndarray
) -> Network:
    n_features = int(np.prod(X.shape[1:]))
    layer_dims = [n_features, *hyperparameters["hidden_layers"], output_units(task, y)]
    return Network(
        layer_dims,
        hidden_activation=hyperparameters["activation"],
        output=OUTPUT_BY_TASK[task],
        init=hyperparameters["init"],
        seed=hyperparameters["seed"],
        dtype=hyperparameters["dtype"],
    )


def build_config(hyperparameters: dict[str, Any]) -> TrainConfig:
    early = hyperparameters.get("early_stopping")
    return TrainConfig(
        learning_rate=hyperparameters["learning_rate"],
        n_iterations=hyperparameters["n_iterations"],
        optimizer=hyperparameters["optimizer"],
        momentum=hyperparameters["momentum"],
        batch_size=hyperparameters["batch_size"],
        l2=hyperparameters["l2"],
        lr_decay=hyperparameters["lr_decay"],
        decay_rate=hyperparameters["decay_rate"],
        decay_steps=hyperparameters["decay_steps"],
        validation_fraction=hyperparameters["validation_fraction"],
        early_stopping=EarlyStopping(**early) if early else None,
        standardize=hyperparameters["standardize"],
        record_every=hyperparameters["record_every"],
        seed=hyperparameters["seed"],
    )


def describe_architecture(net: Network, task: str) -> dict[str, Any]:
    return {
        "layer_dims": list(net.layer_dims),
        "hidden_activation": net.hidden_activation,
        "output": net.output,
        "task": task,
        "dtype": net.dtype,
        "input_shape": list(net.input_shape),
        "classes": net.classes,
        "standardized": net.feature_mean is not None,
    }
