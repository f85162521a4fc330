"""The adapter from a job's spec to the core: the task decision, the network, the config.

A job's spec is its stored :class:`~app.schemas.jobs.Hyperparameters` (re-validated by the
worker) plus its dataset. The learning task is decided here, once, when the job is submitted
(:func:`decide_task`); the job stores the decided task, and the worker builds from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from app.errors import InvalidInput
from app.schemas.jobs import Hyperparameters, RequestedTask
from core import Network, TrainConfig
from core.choices import Task


def _task_conflict(requested: str, why: str) -> InvalidInput:
    message = f"task {requested!r} does not fit this dataset: {why}"
    return InvalidInput(message, [{"loc": ["hyperparameters", "task"], "msg": why}])


def decide_task(requested: RequestedTask, label_kind: str, classes: Sequence[Any] | None) -> Task:
    """The learning task of a job, from the requested task and the dataset's labels.

    Parameters
    ----------
    requested : "auto" or a task
    label_kind : the task the dataset's labels make on their own, as ingest inferred it
        ("binary": two classes, "multiclass": more, "regression": real-valued targets).
    classes : the dataset's distinct labels (None for real-valued targets)

    Rules: "auto" takes the labels' own task; "binary" needs exactly two classes;
    "multiclass" needs class labels (two or more); "regression" needs numeric labels (a set of
    integer classes may be regressed on, string labels may not).

    Raises
    ------
    InvalidInput
        (422) naming the conflict between the requested task and the labels.
    """
    kind: Task
    if label_kind == "binary":
        kind = "binary"
    elif label_kind == "multiclass":
        kind = "multiclass"
    else:
        kind = "regression"
    if requested == "auto":
        return kind
    if requested == "regression":
        strings = [label for label in classes or [] if isinstance(label, str)]
        if strings:
            raise _task_conflict(
                requested, f"its labels are strings (e.g. {strings[0]!r}), not numbers"
            )
        return "regression"
    if kind == "regression":
        raise _task_conflict(
            requested, "its labels are real-valued (a regression target), not classes"
        )
    if requested == "binary" and len(classes or []) != 2:
        raise _task_conflict(
            requested, f"it needs exactly 2 classes, the labels hold {len(classes or [])}"
        )
    return requested


def output_units(task: Task, y: np.ndarray) -> int:
    """Width of the output layer: one unit (binary), one per class, or one per target."""
    if task == "binary":
        return 1
    if task == "multiclass":
        return int(np.unique(y).size)
    return 1 if y.ndim == 1 else int(y.shape[1])


def build(
    hyperparameters: Hyperparameters, X: np.ndarray, y: np.ndarray
) -> tuple[Network, TrainConfig]:
    """The untrained network and the training configuration of a job with a decided task."""
    if hyperparameters.task == "auto":
        raise ValueError("the task must be decided before the network is built")
    n_features = int(np.prod(X.shape[1:]))
    network = hyperparameters.to_network(n_features, output_units(hyperparameters.task, y))
    return network, hyperparameters.to_train_config()


def describe_architecture(net: Network) -> dict[str, Any]:
    """What a stored model records about its network (GET /models/{id})."""
    return {
        "layer_dims": list(net.layer_dims),
        "hidden_activation": net.hidden_activation,
        "output": net.output,
        "task": net.task,
        "dtype": net.dtype,
        "input_shape": list(net.input_shape),
        "classes": net.classes,
        "standardized": net.feature_mean is not None,
    }
