"""Every named choice of the core, defined once.

Each choice is a ``Literal`` type (for type checkers and for the service's request schemas,
which reuse these very types) and the tuple of its values (for run-time checks, error messages
and command-line ``choices``), derived from the ``Literal`` so the names are spelled only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

HiddenActivation = Literal["relu", "leaky_relu", "tanh", "sigmoid"]
OptimizerName = Literal["gd", "momentum", "nesterov", "adam"]
LrSchedule = Literal["none", "inverse_time", "step"]
# "glorot" is another name for "xavier".
Init = Literal["he", "xavier", "glorot", "normal"]
DType = Literal["float32", "float64"]
OutputName = Literal["sigmoid", "softmax", "identity"]
Task = Literal["binary", "multiclass", "regression"]

HIDDEN_ACTIVATIONS: tuple[HiddenActivation, ...] = get_args(HiddenActivation)
OPTIMIZERS: tuple[OptimizerName, ...] = get_args(OptimizerName)
LR_SCHEDULES: tuple[LrSchedule, ...] = get_args(LrSchedule)
INITS: tuple[Init, ...] = get_args(Init)
DTYPES: tuple[DType, ...] = get_args(DType)
OUTPUTS: tuple[OutputName, ...] = get_args(OutputName)
TASKS: tuple[Task, ...] = get_args(Task)

# The output layer of each learning task; each output comes with its own cost (core.outputs).
OUTPUT_FOR_TASK: dict[Task, OutputName] = {
    "binary": "sigmoid",
    "multiclass": "softmax",
    "regression": "identity",
}
TASK_OF_OUTPUT: dict[str, Task] = {output: task for task, output in OUTPUT_FOR_TASK.items()}


def check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the allowed values when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
