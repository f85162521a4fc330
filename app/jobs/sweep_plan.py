"""A sweep's plan: the trials a grid or a random search makes, each checked as POST /train would.

Every trial is validated with the training contract (:class:`Hyperparameters`), the deployment's
limits (:func:`check_limits`) and the dataset (:func:`spec_for_dataset`) before the sweep exists,
so a sweep never starts with a trial that would be refused or fail on submission.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from pydantic import ValidationError

from app.db.tables import Dataset
from app.errors import InvalidInput, LimitExceeded, ServiceError
from app.jobs.submit import check_limits, spec_for_dataset
from app.schemas.jobs import Hyperparameters
from app.schemas.sweeps import MAXIMISED, RandomSearch, Range, SweepRequest
from app.settings import Settings
from app.validation import error_details

VALIDATION_METRICS = frozenset({"val_cost", "val_accuracy"})
# How much of a bad trial's values an error message repeats.
MAX_SHOWN = 200


def searched_params(request: SweepRequest) -> list[str]:
    if request.grid is not None:
        return list(request.grid)
    assert request.random is not None  # the schema guarantees one of the two
    return list(request.random.space)


def _check_names(params: list[str], where: str) -> None:
    unknown = [name for name in params if name not in Hyperparameters.model_fields]
    if unknown:
        raise InvalidInput(
            f"{where}: unknown hyperparameter {unknown[0]!r}",
            [{"loc": [where, name], "msg": "not a hyperparameter"} for name in unknown],
        )


def grid_combinations(grid: dict[str, list[Any]], settings: Settings) -> list[dict[str, Any]]:
    """Every combination, the first parameter varying slowest; bounded before it is built."""
    _check_names(list(grid), "grid")
    size = math.prod(len(values) for values in grid.values())
    if size > settings.max_sweep_trials:
        raise LimitExceeded(
            f"the grid makes {size} trials; at most {settings.max_sweep_trials} "
            "(DNN_MAX_SWEEP_TRIALS)",
            [{"loc": ["grid"], "msg": f"{size} combinations"}],
        )
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def _sample(space: Range | list[Any], rng: np.random.Generator) -> Any:
    if isinstance(space, list):
        return space[int(rng.integers(len(space)))]
    integer = isinstance(space.low, int) and isinstance(space.high, int)
    if space.log:
        value = float(np.exp(rng.uniform(np.log(space.low), np.log(space.high))))
    else:
        value = float(rng.uniform(space.low, space.high))
    if integer:
        # Rounded, then kept inside the bounds the rounding may cross.
        return int(min(max(round(value), space.low), space.high))
    return value


def random_combinations(search: RandomSearch, settings: Settings) -> list[dict[str, Any]]:
    """n_trials draws from the space, reproducible from the seed."""
    _check_names(list(search.space), "random.space")
    if search.n_trials > settings.max_sweep_trials:
        raise LimitExceeded(
            f"{search.n_trials} trials requested; at most {settings.max_sweep_trials} "
            "(DNN_MAX_SWEEP_TRIALS)",
            [{"loc": ["random", "n_trials"], "msg": "too many trials"}],
        )
    for name, space in search.space.items():
        if isinstance(space, list) and not space:
            raise InvalidInput(
                f"random.space.{name}: an empty list of choices",
                [{"loc": ["random", "space", name], "msg": "no choices"}],
            )
    rng = np.random.default_rng(search.seed)
    return [
        {name: _sample(space, rng) for name, space in search.space.items()}
        for _ in range(search.n_trials)
    ]


def _trial_error(index: int, params: dict[str, Any], exc: Exception) -> InvalidInput:
    """A 422 naming the trial and the parameter that made it invalid."""
    if isinstance(exc, ValidationError):
        details = error_details(exc.errors(include_input=False, include_url=False))
        first = details[0] if details else {"msg": str(exc)}
        where = ".".join(str(part) for part in first.get("loc", []))
        message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    else:
        message = exc.message if isinstance(exc, ServiceError) else str(exc)
        details = exc.details if isinstance(exc, ServiceError) else []
    located = [{**detail, "loc": ["trials", index, *_param_loc(detail)]} for detail in details]
    kind = LimitExceeded if isinstance(exc, LimitExceeded) else InvalidInput
    shown = repr(params)
    shown = shown if len(shown) <= MAX_SHOWN else shown[: MAX_SHOWN - 3] + "..."
    return kind(
        f"trial {index} {shown} is invalid: {message}",
        located or [{"loc": ["trials", index], "msg": message}],
    )


def _param_loc(detail: dict[str, Any]) -> list[Any]:
    # POST /train's checks locate a parameter under "hyperparameters"; a trial is that already.
    loc = list(detail.get("loc", []))
    return loc[1:] if loc[:1] == ["hyperparameters"] else loc


def plan_trials(
    request: SweepRequest, dataset: Dataset, settings: Settings
) -> list[dict[str, Any]]:
    """Every trial's full hyperparameters as a job stores them (task decided), in trial order.

    Raises InvalidInput (422) naming the first invalid trial and parameter, or LimitExceeded.
    """
    if request.grid is not None:
        combinations = grid_combinations(request.grid, settings)
    else:
        assert request.random is not None
        combinations = random_combinations(request.random, settings)
    trials = []
    for index, params in enumerate(combinations):
        try:
            hp = Hyperparameters.model_validate({**request.hyperparameters, **params})
            check_limits(hp, settings)
            hp = spec_for_dataset(hp, dataset)
        except (ValidationError, ServiceError) as exc:
            raise _trial_error(index, params, exc) from exc
        trials.append(hp.model_dump(mode="json"))
    return trials


def decide_metric(request: SweepRequest, trials: list[dict[str, Any]]) -> tuple[str, str]:
    """The ranking metric and its goal ("min" or "max"); a validation metric needs every trial
    to validate, and every trial must be a regression or none."""
    validates = [trial["validation_fraction"] > 0 for trial in trials]
    metric = request.metric or ("val_cost" if all(validates) else "cost")
    if metric in VALIDATION_METRICS and not all(validates):
        index = validates.index(False)
        raise InvalidInput(
            f"metric {metric!r} needs a validation_fraction above 0, and trial {index} has none",
            [{"loc": ["trials", index, "validation_fraction"], "msg": f"needed by {metric}"}],
        )
    # A regression's cost is a squared error and its accuracy R²: ranked with a classifier's
    # cross-entropy and hit rate, the "best" trial was a comparison of unlike numbers.
    regression = [trial["task"] == "regression" for trial in trials]
    if not all(regression) and any(regression):
        index = regression.index(not regression[0])
        raise InvalidInput(
            f"trial {index} trains a {trials[index]['task']} model and trial 0 a "
            f"{trials[0]['task']} one: their {metric} cannot be ranked together",
            [{"loc": ["trials", index, "task"], "msg": "another kind of task than trial 0"}],
        )
    return metric, "max" if metric in MAXIMISED else "min"
