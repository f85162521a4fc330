"""The hyperparameters of one call to :func:`core.training.train`, checked when built."""

from __future__ import annotations

from dataclasses import dataclass

from core.choices import LR_SCHEDULES, OPTIMIZERS, LrSchedule, OptimizerName
from core.early_stopping import EarlyStopping


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`core.training.train`.

    Attributes
    ----------
    learning_rate : float
        Initial step size.
    n_iterations : int
        Full-batch gradient steps, or epochs (passes over the training data) with mini-batches.
    optimizer : str
        One of ``core.choices.OPTIMIZERS``.
    batch_size : int or None
        Rows per gradient step; ``None`` is full-batch (the seed recipe).
    l2 : float
        L2 strength ``lambda``: the cost gains ``lambda / (2 m) * sum ||W||^2`` (weights only,
        ``m`` the batch size) and that term is included in every reported cost.
    validation_fraction : float
        Share of the samples held out (at random, from ``seed``) for validation metrics.
    early_stopping : EarlyStopping or None
    record_every : int
        Record (and report to the callback) every k-th iteration, plus the first and the last.
    seed : int or None
        Seeds the validation split and the mini-batch shuffling; with the network's own seed,
        a run is reproducible bit for bit.
    standardize : bool
        Fit per-feature standardization on the training rows and keep it with the network.
    shuffle : bool
        Reshuffle the rows every epoch for mini-batches.
    momentum, beta1, beta2, epsilon : float
        Optimizer constants (momentum/nesterov and Adam).
    lr_decay : str
        One of ``core.choices.LR_SCHEDULES``.
    decay_rate : float
    decay_steps : int
        Schedule constants, see :func:`core.optimizers.learning_rate_at`.
    """

    learning_rate: float = 0.01
    n_iterations: int = 1000
    optimizer: OptimizerName = "gd"
    batch_size: int | None = None
    l2: float = 0.0
    validation_fraction: float = 0.0
    early_stopping: EarlyStopping | None = None
    record_every: int = 1
    seed: int | None = 0
    standardize: bool = False
    shuffle: bool = True
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    lr_decay: LrSchedule = "none"
    decay_rate: float = 0.0
    decay_steps: int = 1

    def __post_init__(self) -> None:
        checks = {
            "learning_rate > 0": self.learning_rate > 0,
            "n_iterations >= 1": self.n_iterations >= 1,
            "batch_size >= 1 or None": self.batch_size is None or self.batch_size >= 1,
            "l2 >= 0": self.l2 >= 0,
            "0 <= validation_fraction < 1": 0 <= self.validation_fraction < 1,
            "record_every >= 1": self.record_every >= 1,
            "decay_steps >= 1": self.decay_steps >= 1,
            "decay_rate >= 0": self.decay_rate >= 0,
            f"optimizer in {list(OPTIMIZERS)}": self.optimizer in OPTIMIZERS,
            f"lr_decay in {list(LR_SCHEDULES)}": self.lr_decay in LR_SCHEDULES,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid training configuration: need {', '.join(failed)}")
