"""A sweep's plan: grid and random trials, bounded before they are built, checked like /train."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from app.db.tables import Dataset
from app.errors import InvalidInput, LimitExceeded
from app.jobs.sweep_plan import decide_metric, grid_combinations, plan_trials, random_combinations
from app.schemas.sweeps import RandomSearch, SweepRequest
from app.settings import Settings

SETTINGS = Settings(max_sweep_trials=256)


def dataset(task: str = "binary", classes: list[Any] | None = None, n: int = 100) -> Dataset:
    return Dataset(
        id="d1",
        tenant_id="t",
        name="d",
        n_samples=n,
        n_features=2,
        input_shape=[2],
        task=task,
        classes=classes if classes is not None else [0, 1],
        max_abs_value=1.0,
    )


def sweep(**body: Any) -> SweepRequest:
    return SweepRequest.model_validate({"dataset_id": "d1", **body})


def test_grid_is_every_combination_first_parameter_slowest() -> None:
    combos = grid_combinations({"l2": [0.0, 0.1], "hidden_layers": [[4], [8], [4, 4]]}, SETTINGS)
    assert combos == [
        {"l2": l2, "hidden_layers": layers} for l2 in (0.0, 0.1) for layers in ([4], [8], [4, 4])
    ]


def test_a_huge_grid_is_refused_from_its_declared_size() -> None:
    # 10^12 combinations: counted, never built.
    grid = {
        name: list(range(1000)) for name in ("seed", "decay_steps", "record_every", "n_iterations")
    }
    with pytest.raises(LimitExceeded, match="1000000000000 trials; at most 256"):
        grid_combinations(grid, SETTINGS)


def test_random_draws_stay_in_their_ranges_and_repeat_with_the_seed() -> None:
    search = RandomSearch.model_validate(
        {
            "n_trials": 200,
            "seed": 5,
            "space": {
                "learning_rate": {"low": 1e-4, "high": 1e-1, "log": True},
                "n_iterations": {"low": 10, "high": 20},
                "l2": {"low": 0.0, "high": 0.5},
                "optimizer": ["adam", "sgd"],
            },
        }
    )
    draws = random_combinations(search, SETTINGS)
    assert draws == random_combinations(search, SETTINGS)
    assert draws != random_combinations(search.model_copy(update={"seed": 6}), SETTINGS)
    rates = np.array([draw["learning_rate"] for draw in draws])
    assert rates.min() >= 1e-4 and rates.max() <= 1e-1
    # Log-uniform: about as many draws in each decade.
    decades = np.histogram(np.log10(rates), bins=[-4, -3, -2, -1])[0]
    assert decades.min() > 40
    iterations = {draw["n_iterations"] for draw in draws}
    assert all(isinstance(value, int) for value in iterations) and iterations <= set(range(10, 21))
    assert {10, 20} <= iterations
    assert all(isinstance(draw["l2"], float) and 0 <= draw["l2"] <= 0.5 for draw in draws)
    assert {draw["optimizer"] for draw in draws} == {"adam", "sgd"}


def test_every_trial_is_the_base_plus_its_values_with_the_task_decided() -> None:
    request = sweep(
        hyperparameters={"n_iterations": 7, "validation_fraction": 0.2},
        grid={"learning_rate": [0.1, 0.2]},
    )
    trials = plan_trials(request, dataset(), SETTINGS)
    assert [(t["learning_rate"], t["n_iterations"], t["task"]) for t in trials] == [
        (0.1, 7, "binary"),
        (0.2, 7, "binary"),
    ]
    assert decide_metric(request, trials) == ("val_cost", "min")
    assert decide_metric(sweep(grid={"seed": [1]}, metric="accuracy"), trials) == (
        "accuracy",
        "max",
    )


@pytest.mark.parametrize(
    ("body", "error", "loc"),
    [
        (
            {"grid": {"learning_rate": [0.1, math.inf]}},
            InvalidInput,
            ["trials", 1, "learning_rate"],
        ),
        ({"grid": {"hidden_layers": [[8], [8] * 40]}}, LimitExceeded, ["trials", 1]),
        ({"grid": {"task": ["regression", "binary"]}}, InvalidInput, ["trials", 0, "task"]),
        ({"grid": {"batch_size": [10, 101]}}, InvalidInput, ["trials", 1, "batch_size"]),
        (
            {"grid": {"validation_fraction": [0.0, 0.1], "early_stopping": [{"patience": 3}]}},
            InvalidInput,
            ["trials", 0],
        ),
    ],
)
def test_the_first_invalid_trial_is_named(
    body: dict[str, Any], error: type[InvalidInput], loc: list[Any]
) -> None:
    with pytest.raises(error) as raised:
        plan_trials(sweep(**body), dataset(classes=["a", "b"]), SETTINGS)
    assert type(raised.value) is error
    assert raised.value.details[0]["loc"][: len(loc)] == loc
    assert raised.value.message.startswith(f"trial {loc[1]} ")


def test_regressions_and_classifiers_are_never_ranked_together() -> None:
    request = sweep(grid={"task": ["binary", "multiclass", "regression"]})
    trials = plan_trials(request, dataset(), SETTINGS)
    with pytest.raises(InvalidInput, match="trial 2 trains a regression model") as raised:
        decide_metric(request, trials)
    assert raised.value.details[0]["loc"] == ["trials", 2, "task"]
    classifiers = sweep(grid={"task": ["binary", "multiclass"]})
    assert decide_metric(classifiers, plan_trials(classifiers, dataset(), SETTINGS)) == (
        "cost",
        "min",
    )


def test_a_validation_metric_needs_every_trial_to_validate() -> None:
    request = sweep(grid={"validation_fraction": [0.2, 0.0]})
    trials = plan_trials(request, dataset(), SETTINGS)
    assert decide_metric(request, trials) == ("cost", "min")
    with pytest.raises(InvalidInput, match="trial 1 has none"):
        decide_metric(request.model_copy(update={"metric": "val_accuracy"}), trials)
