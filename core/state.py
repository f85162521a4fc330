"""Training state: everything the next iteration depends on, so a resumed run is the same run.

A :class:`TrainState` is what :func:`core.training.train` returns as ``TrainResult.state`` and
accepts as ``state=``: the parameters, the optimizer's state (momentum velocities, Adam's
moments and step count), the iteration counter (which is also the learning-rate schedule's
position), the mini-batch shuffling generator's state, the validation split, the
standardization, and the early-stopping state with a copy of the best point's parameters and
optimizer state. It is stored as safetensors arrays plus JSON metadata (a generator's state as
``bit_generator.state``), never pickled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core import serialization
from core.activations import Array
from core.errors import ModelFormatError

KIND = "train_state"
STATE_VERSION = 1
# Generators are restored by name; the training loop only ever makes PCG64 (default_rng).
BIT_GENERATOR = "PCG64"

Metrics = dict[str, float]
Indices = NDArray[np.intp]


@dataclass(frozen=True)
class Snapshot:
    """The moving part of training after ``iteration`` completed iterations.

    Attributes
    ----------
    iteration : int
        Iterations whose updates the parameters hold (the next one is ``iteration + 1``).
    parameters : ndarray of shape (n_parameters,)
        As :meth:`core.network.Network.packed_parameters`.
    optimizer : str
        The optimizer the state belongs to; another optimizer starts afresh.
    optimizer_arrays : dict of str to ndarray
        As :meth:`core.optimizers.Optimizer.state_arrays`.
    optimizer_steps : int
        Adam's step count (0 for the others).
    rng_state : dict or None
        ``bit_generator.state`` of the shuffling generator; None when the data changes.
    point : dict or None
        The history point measured with these parameters (kept for the best snapshot).
    """

    iteration: int
    parameters: Array
    optimizer: str
    optimizer_arrays: dict[str, Array]
    optimizer_steps: int
    rng_state: dict[str, Any] | None
    point: Metrics | None = None


@dataclass(frozen=True)
class EarlyStoppingState:
    """Best monitored cost, the recorded iterations waited since, and the best snapshot."""

    best_cost: float = math.inf
    best_iteration: int | None = None
    waited: int = 0
    best: Snapshot | None = None


@dataclass(frozen=True)
class TrainState:
    """A complete, serializable training state (see the module docstring).

    Attributes
    ----------
    current : Snapshot
    n_samples : int
        Rows of the data the split was drawn for.
    split : (train_rows, val_rows) or None
        Sorted indices; None means "draw a split for the data given" (new data).
    feature_mean, feature_scale : ndarray or None
        The standardization, kept as it is when training continues (never refitted).
    classes : list or None
        Class labels the output units stand for.
    early_stopping : EarlyStoppingState or None
    """

    current: Snapshot
    n_samples: int
    split: tuple[Indices, Indices] | None
    feature_mean: Array | None
    feature_scale: Array | None
    classes: list[Any] | None
    early_stopping: EarlyStoppingState | None = None

    @property
    def iteration(self) -> int:
        return self.current.iteration

    def restored_best(self) -> TrainState:
        """The state of the parameters early stopping kept (itself if it kept none).

        Continuing from it continues from the best point's parameters, with the optimizer and
        shuffling state captured at that point.
        """
        early = self.early_stopping
        if early is None or early.best is None:
            return self
        best = early.best
        if early.best_iteration is not None and best.iteration < early.best_iteration:
            # A full-batch point measures the parameters before its update, so the best point
            # is measured again as the next iteration; the monitor is as it was before it was
            # first measured (that point improved on every earlier one, so its decision and all
            # later ones come out the same).
            return replace(self, current=best, early_stopping=EarlyStoppingState())
        return replace(self, current=best, early_stopping=replace(early, waited=0))

    def for_new_data(self) -> TrainState:
        """This state for training on other rows: the split, the shuffling generator and the
        early-stopping history belong to the old data; parameters, optimizer, iteration count
        and standardization are kept."""
        return replace(
            self,
            current=replace(self.current, rng_state=None),
            n_samples=0,
            split=None,
            early_stopping=None,
        )

    def to_bytes(self) -> bytes:
        """safetensors arrays plus JSON metadata; no pickle."""
        tensors = _snapshot_tensors("current", self.current)
        if self.split is not None:
            tensors["split.train"] = self.split[0].astype(np.int64)
            tensors["split.validation"] = self.split[1].astype(np.int64)
        if self.feature_mean is not None and self.feature_scale is not None:
            tensors["feature_mean"] = self.feature_mean
            tensors["feature_scale"] = self.feature_scale
        early: dict[str, Any] | None = None
        if self.early_stopping is not None:
            stop = self.early_stopping
            early = {
                "best_cost": stop.best_cost if math.isfinite(stop.best_cost) else None,
                "best_iteration": stop.best_iteration,
                "waited": stop.waited,
                "best": None if stop.best is None else _snapshot_meta(stop.best),
            }
            if stop.best is not None:
                tensors |= _snapshot_tensors("best", stop.best)
        metadata = {
            "kind": KIND,
            "state_version": STATE_VERSION,
            "current": _snapshot_meta(self.current),
            "n_samples": self.n_samples,
            "has_split": self.split is not None,
            "classes": self.classes,
            "early_stopping": early,
        }
        return serialization.dump(tensors, metadata)

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainState:
        """Inverse of :meth:`to_bytes`.

        Raises
        ------
        ModelFormatError
            Bytes that are not a training state of a known version.
        """
        tensors, meta = serialization.restore(data)
        if meta.get("kind") != KIND or meta.get("state_version") != STATE_VERSION:
            raise ModelFormatError("the bytes do not hold a training state of a known version")
        try:
            split = None
            if meta["has_split"]:
                split = (
                    tensors["split.train"].astype(np.intp),
                    tensors["split.validation"].astype(np.intp),
                )
            early = None
            if meta["early_stopping"] is not None:
                stop = meta["early_stopping"]
                best_cost = stop["best_cost"]
                early = EarlyStoppingState(
                    best_cost=math.inf if best_cost is None else float(best_cost),
                    best_iteration=_optional_int(stop["best_iteration"]),
                    waited=int(stop["waited"]),
                    best=None
                    if stop["best"] is None
                    else _snapshot_from("best", tensors, stop["best"]),
                )
            classes = meta["classes"]
            if classes is not None and not isinstance(classes, list):
                raise TypeError("classes must be a list")
            return cls(
                current=_snapshot_from("current", tensors, meta["current"]),
                n_samples=int(meta["n_samples"]),
                split=split,
                feature_mean=tensors.get("feature_mean"),
                feature_scale=tensors.get("feature_scale"),
                classes=classes,
                early_stopping=early,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFormatError(f"inconsistent training state: {exc}") from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _snapshot_tensors(prefix: str, snapshot: Snapshot) -> dict[str, Array]:
    tensors = {f"{prefix}.parameters": snapshot.parameters}
    tensors |= {f"{prefix}.optimizer.{k}": v for k, v in snapshot.optimizer_arrays.items()}
    return tensors


def _snapshot_meta(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "iteration": snapshot.iteration,
        "optimizer": snapshot.optimizer,
        "optimizer_steps": snapshot.optimizer_steps,
        "rng_state": snapshot.rng_state,
        "point": snapshot.point,
    }


def _snapshot_from(prefix: str, tensors: dict[str, Array], meta: dict[str, Any]) -> Snapshot:
    marker = f"{prefix}.optimizer."
    rng_state = meta["rng_state"]
    if rng_state is not None and (
        not isinstance(rng_state, dict) or rng_state.get("bit_generator") != BIT_GENERATOR
    ):
        raise ValueError(f"the shuffling generator must be a {BIT_GENERATOR} state")
    point = meta["point"]
    return Snapshot(
        iteration=int(meta["iteration"]),
        parameters=tensors[f"{prefix}.parameters"],
        optimizer=str(meta["optimizer"]),
        optimizer_arrays={
            name[len(marker) :]: array for name, array in tensors.items() if name.startswith(marker)
        },
        optimizer_steps=int(meta["optimizer_steps"]),
        rng_state=rng_state,
        point=None if point is None else {str(k): float(v) for k, v in point.items()},
    )


def generator_from(state: dict[str, Any]) -> np.random.Generator:
    """A generator continuing exactly where the one whose ``bit_generator.state`` this is."""
    bit_generator = np.random.PCG64()
    bit_generator.state = state  # type: ignore[assignment]  # checked by numpy on assignment
    return np.random.Generator(bit_generator)
