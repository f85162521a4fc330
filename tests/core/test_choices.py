"""Every named choice is defined once, in core.choices, and the core's registries agree with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.activations import ACTIVATIONS, DERIVATIVES
from core.choices import (
    HIDDEN_ACTIVATIONS,
    INITS,
    LR_SCHEDULES,
    OPTIMIZERS,
    OUTPUT_FOR_TASK,
    OUTPUTS,
    TASK_OF_OUTPUT,
    TASKS,
)
from core.outputs import ACCURACY, ACTIVATE, COSTS

ROOT = Path(__file__).resolve().parents[2]


def test_registries_cover_exactly_the_choices() -> None:
    assert set(ACTIVATIONS) == set(DERIVATIVES) == set(HIDDEN_ACTIVATIONS)
    assert set(COSTS) == set(ACTIVATE) == set(ACCURACY) == set(OUTPUTS)
    assert set(OUTPUT_FOR_TASK) == set(TASKS)
    assert {TASK_OF_OUTPUT[OUTPUT_FOR_TASK[task]] for task in TASKS} == set(TASKS)


@pytest.mark.parametrize(
    "choices", [HIDDEN_ACTIVATIONS, OPTIMIZERS, LR_SCHEDULES, INITS, OUTPUTS, TASKS]
)
def test_each_choice_list_is_spelled_once_in_app_and_core(choices: tuple[str, ...]) -> None:
    spelled = ", ".join(f'"{name}"' for name in choices)
    sources = [*ROOT.joinpath("app").rglob("*.py"), *ROOT.joinpath("core").rglob("*.py")]
    where = [path.relative_to(ROOT) for path in sources if spelled in path.read_text()]
    assert where == [Path("core/choices.py")]
