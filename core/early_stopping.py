"""Early stopping: the rule a run is given, and the monitor that applies it during training.

The monitor's state (best cost, its iteration, the iterations waited, a snapshot of the best
point) is part of a :class:`~core.state.TrainState`, so a continued run stops where an
uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.state import EarlyStoppingState, Snapshot


@dataclass(frozen=True)
class EarlyStopping:
    """Stop when the monitored cost has not improved for ``patience`` recorded iterations.

    The monitored cost is the validation cost when ``validation_fraction > 0``, else the training
    cost. It is checked at every recorded iteration (see ``TrainConfig.record_every``).

    Attributes
    ----------
    patience : int
        Recorded iterations without an improvement of more than ``min_delta`` before stopping.
    min_delta : float
        Smallest decrease of the cost that counts as an improvement.
    restore_best : bool
        When training ends, put back the parameters that gave the best monitored cost.
    """

    patience: int = 10
    min_delta: float = 0.0
    restore_best: bool = True

    def __post_init__(self) -> None:
        if self.patience < 1 or self.min_delta < 0:
            raise ValueError("early stopping needs patience >= 1 and min_delta >= 0")


class EarlyStoppingMonitor:
    """Early-stopping state: the best monitored cost so far and a snapshot of its state."""

    def __init__(self, rule: EarlyStopping, carried: EarlyStoppingState | None) -> None:
        self.rule = rule
        carried = carried or EarlyStoppingState()
        self.best_cost = carried.best_cost
        self.best_iteration = carried.best_iteration
        self.waited = carried.waited
        self.best = carried.best

    def should_stop(self, iteration: int, cost: float, capture: Callable[[], Snapshot]) -> bool:
        if cost < self.best_cost - self.rule.min_delta:
            self.best_cost, self.best_iteration, self.waited = cost, iteration, 0
            if self.rule.restore_best:
                self.best = capture()
            return False
        self.waited += 1
        return self.waited >= self.rule.patience

    def state(self) -> EarlyStoppingState:
        return EarlyStoppingState(self.best_cost, self.best_iteration, self.waited, self.best)
