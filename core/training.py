"""The training loop: :func:`train`, its progress and checkpoint callbacks, and its result.

Its configuration is :class:`~core.train_config.TrainConfig` (with
:class:`~core.early_stopping.EarlyStopping`); a mini-batch iteration is
:func:`~core.minibatch.minibatch_epoch`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from numpy.typing import ArrayLike

from core.backprop import Workspace, evaluate
from core.early_stopping import EarlyStoppingMonitor
from core.errors import DivergenceError
from core.minibatch import minibatch_epoch
from core.network import Network
from core.optimizers import Optimizer, learning_rate_at, make_optimizer
from core.outputs import ACCURACY
from core.state import Snapshot, TrainState
from core.train_config import TrainConfig
from core.training_data import prepare

Metrics = dict[str, float]
ProgressCallback = Callable[[int, Metrics], bool | None]
CheckpointCallback = Callable[[int, Callable[[], TrainState]], None]


@dataclass
class TrainResult:
    """What :func:`train` returns; the network itself is trained in place.

    Attributes
    ----------
    network : Network
    history : list of dict
        One point per recorded iteration: ``iteration`` (1-based, counted from the first run
        when training continues a state), ``cost``, ``accuracy`` (R² for regression), plus
        ``val_cost`` and ``val_accuracy`` when validating. ``cost`` and ``accuracy`` are
        measured in the iteration's own forward pass, i.e. before its update; with
        mini-batches they are averages over the epoch's batches.
    n_iterations_run : int
        Iterations run by this call.
    stopped_early : bool
        Early stopping ended training.
    stopped_by_callback : bool
        ``on_progress`` returned ``True``.
    best_iteration : int or None
        The iteration of the best monitored cost (early stopping).
    restored_best : bool
        The network holds the best iteration's parameters rather than the last ones.
    held_point : dict or None
        The history point measured with the parameters the network holds: the best one when
        restored (possibly from an earlier run continued here), else the last one.
    state : TrainState or None
        The state after the last iteration run, to continue from with ``train(...,
        state=...)``; ``state.restored_best()`` is the state of the parameters held.
    """

    network: Network
    history: list[Metrics] = field(default_factory=list)
    n_iterations_run: int = 0
    stopped_early: bool = False
    stopped_by_callback: bool = False
    best_iteration: int | None = None
    restored_best: bool = False
    held_point: Metrics | None = None
    state: TrainState | None = None


def _load_state(net: Network, optimizer: Optimizer, name: str, state: TrainState) -> None:
    """Put the state's parameters into ``net`` and, for the same optimizer, its state."""
    packed = net.packed_parameters()
    parameters = state.current.parameters
    if parameters.shape != packed.shape or parameters.dtype != packed.dtype:
        raise ValueError(
            f"the training state holds {parameters.size} {parameters.dtype} parameters; "
            f"this network has {packed.size} {packed.dtype}"
        )
    np.copyto(packed, parameters)
    # Another optimizer (or momentum <-> nesterov) starts from a fresh state by design.
    if state.current.optimizer == name:
        optimizer.load_state(state.current.optimizer_arrays, state.current.optimizer_steps)


def train(
    net: Network,
    X: ArrayLike,
    y: ArrayLike,
    config: TrainConfig | None = None,
    on_progress: ProgressCallback | None = None,
    *,
    state: TrainState | None = None,
    on_checkpoint: CheckpointCallback | None = None,
) -> TrainResult:
    """Train ``net`` in place by backpropagation, or continue training from ``state``.

    Parameters
    ----------
    net : Network
    X : array-like of shape (n_samples, ...)
        Samples of any shape; each is flattened to ``net.layer_dims[0]`` values and the
        per-sample shape is remembered as ``net.input_shape``.
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Class labels of any sortable values, or regression targets.
    config : TrainConfig, optional
        With a ``state``, ``n_iterations`` more iterations are run; the learning rate, its
        schedule (whose position is the iteration count), L2, batch size, early stopping and
        the optimizer's constants may differ from the earlier run's. A different optimizer
        starts from a fresh optimizer state.
    on_progress : callable ``(iteration, metrics) -> bool | None``, optional
        Called at every recorded iteration with its history point; returning ``True`` stops
        training cleanly after that iteration (the result keeps the history so far).
    state : TrainState, optional
        Continue from this state (a ``TrainResult.state``): its parameters replace the
        network's, and its optimizer state, iteration count, shuffling generator, validation
        split, standardization and early-stopping state are carried on, so that ``n`` then
        ``m`` iterations give the same parameters and curve as ``n + m`` straight.
    on_checkpoint : callable ``(iteration, capture) -> None``, optional
        Called after every completed iteration; ``capture()`` returns the
        :class:`TrainState` after that iteration. The caller decides when capturing is worth
        its copy (e.g. every few seconds).

    Returns
    -------
    TrainResult

    Raises
    ------
    DivergenceError
        The cost became NaN or infinite; the exception carries the history so far.
    ValueError
        Inputs, labels or a state that do not fit the network.
    """
    config = config or TrainConfig()
    data = prepare(net, X, y, config, state)
    rng, X_train, Y_train, X_val, Y_val = (
        data.rng,
        data.X_train,
        data.Y_train,
        data.X_val,
        data.Y_val,
    )
    n_train = len(X_train)
    batch_size = n_train if config.batch_size is None else min(config.batch_size, n_train)
    full_batch = batch_size == n_train
    workspace = Workspace(net, batch_size, gather=not full_batch)
    # Optimizers work elementwise, so one update over the packed buffers covers every layer.
    parameters, gradients = [net.packed_parameters()], [workspace.packed_gradients]
    optimizer = make_optimizer(
        config.optimizer, parameters, config.momentum, config.beta1, config.beta2, config.epsilon
    )
    start = 0
    if state is not None:
        _load_state(net, optimizer, config.optimizer, state)
        start = state.iteration
    end = start + config.n_iterations
    accuracy = ACCURACY[net.output]
    carried = state.early_stopping if state is not None else None
    monitor = (
        EarlyStoppingMonitor(config.early_stopping, carried) if config.early_stopping else None
    )
    result = TrainResult(net)

    def snapshot(completed: int, point: Metrics | None = None) -> Snapshot:
        return Snapshot(
            iteration=completed,
            parameters=parameters[0].copy(),
            optimizer=config.optimizer,
            optimizer_arrays=optimizer.state_arrays(),
            optimizer_steps=optimizer.step_count,
            rng_state=dict(rng.bit_generator.state),
            point=None if point is None else dict(point),
        )

    def capture() -> TrainState:
        return TrainState(
            current=snapshot(start + result.n_iterations_run),
            n_samples=data.n_samples,
            split=data.split,
            feature_mean=None if net.feature_mean is None else net.feature_mean.copy(),
            feature_scale=None if net.feature_scale is None else net.feature_scale.copy(),
            classes=None if net.classes is None else list(net.classes),
            early_stopping=monitor.state() if monitor is not None else None,
        )

    # Overflow on the way to a non-finite cost is reported once, as DivergenceError.
    with np.errstate(over="ignore", invalid="ignore"):
        for iteration in range(start + 1, end + 1):
            lr = learning_rate_at(
                iteration - 1,
                config.learning_rate,
                config.lr_decay,
                config.decay_rate,
                config.decay_steps,
            )
            # The first iteration of the whole run and the last of this call, so a run
            # continued from a checkpoint records exactly the points of an uninterrupted one.
            record = iteration in (1, end) or iteration % config.record_every == 0
            if full_batch:
                # Linear optimizers get lr * g from the backward pass (see Optimizer.linear).
                gradient_scale, step_lr = (lr, 1.0) if optimizer.linear else (1.0, lr)
                cost, output = workspace.step(X_train, Y_train, config.l2, gradient_scale)
                acc = accuracy(output, Y_train) if record else math.nan
            else:
                order = rng.permutation(n_train) if config.shuffle else np.arange(n_train)
                cost, acc = minibatch_epoch(
                    workspace, optimizer, X_train, Y_train, order, lr, config.l2, record
                )
            if not math.isfinite(cost):
                raise DivergenceError(iteration, result.history)

            if record:
                point: Metrics = {"iteration": iteration, "cost": cost, "accuracy": acc}
                if len(X_val):
                    point["val_cost"], point["val_accuracy"] = evaluate(
                        net, X_val, Y_val, config.l2
                    )
                result.history.append(point)
                monitored = float(point.get("val_cost", cost))
                # A full-batch point measures the parameters before this iteration's update;
                # a mini-batch point's validation metrics those after the epoch.
                completed = iteration - 1 if full_batch else iteration
                if monitor is not None and monitor.should_stop(
                    iteration, monitored, partial(snapshot, completed, point)
                ):
                    result.stopped_early = True
                # The callback sees every recorded point, the last one included.
                if on_progress is not None and on_progress(iteration, point):
                    result.stopped_by_callback = True
            # The update is applied even when stopping, so a state always holds whole iterations.
            if full_batch:
                optimizer.step(parameters, gradients, step_lr)
            result.n_iterations_run = iteration - start
            if on_checkpoint is not None:
                on_checkpoint(iteration, capture)
            if result.stopped_early or result.stopped_by_callback:
                break

    result.state = capture()
    result.held_point = result.history[-1] if result.history else None
    if monitor is not None:
        result.best_iteration = monitor.best_iteration
        if monitor.rule.restore_best and monitor.best is not None:
            np.copyto(parameters[0], monitor.best.parameters)
            result.restored_best = True
            result.held_point = monitor.best.point
    return result
