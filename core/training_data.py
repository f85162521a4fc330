"""Training data for one run: flattened, encoded, split and standardized.

A run continuing a :class:`~core.state.TrainState` reuses the state's validation split, shuffling
generator and standardization, never redrawn or refitted, so the rows and the scaling are those
the parameters were trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.activations import Array
from core.network import Network
from core.preprocessing import (
    as_feature_matrix,
    encode_targets,
    fit_standardization,
    split_indices,
    standardize,
)
from core.state import TrainState, generator_from
from core.train_config import TrainConfig


@dataclass
class Prepared:
    """Training inputs after flattening, encoding, splitting and standardizing."""

    rng: np.random.Generator
    X_train: Array
    Y_train: Array
    X_val: Array
    Y_val: Array
    n_samples: int
    split: tuple[NDArray[np.intp], NDArray[np.intp]]


def split(
    n_samples: int, config: TrainConfig, state: TrainState | None
) -> tuple[np.random.Generator, tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """The shuffling generator and the split: the state's when it has one, else fresh."""
    if state is None or state.split is None:
        rng = np.random.default_rng(config.seed)
        return rng, split_indices(n_samples, config.validation_fraction, rng)
    train_rows, val_rows = state.split
    rows = np.concatenate([train_rows, val_rows])
    if state.n_samples != n_samples or len(train_rows) == 0:
        raise ValueError(
            f"the training state's validation split is for {state.n_samples} samples, not "
            f"{n_samples}; continue from state.for_new_data() to train on other data"
        )
    if len(rows) != n_samples or rows.min() < 0 or rows.max() >= n_samples:
        raise ValueError("the training state's validation split is not a split of the samples")
    if state.current.rng_state is None:
        raise ValueError("the training state has a split but no shuffling generator state")
    return generator_from(state.current.rng_state), (train_rows, val_rows)


def prepare(
    net: Network, X: ArrayLike, y: ArrayLike, config: TrainConfig, state: TrainState | None
) -> Prepared:
    """Flatten, encode, split and standardize; record input shape, classes and scaling on net.

    When continuing a ``state``, its split and standardization are reused, never redrawn or
    refitted, so the rows and the scaling are those the parameters were trained with.
    """
    X_array = np.asarray(X)
    X2d = as_feature_matrix(X_array, net.n_features, net.dtype)
    Y, classes = encode_targets(y, net.output, net.layer_dims[-1], net.dtype)
    if len(Y) != len(X2d):
        raise ValueError(f"X has {len(X2d)} samples but y has {len(Y)}")
    if state is not None and state.classes is not None and classes != state.classes:
        raise ValueError(
            f"the labels hold the classes {classes}, but the network was trained for "
            f"{state.classes}"
        )
    rng, (train_rows, val_rows) = split(len(X2d), config, state)
    if len(val_rows):
        X_train, Y_train, X_val, Y_val = X2d[train_rows], Y[train_rows], X2d[val_rows], Y[val_rows]
    else:
        X_train, Y_train, X_val, Y_val = X2d, Y, X2d[:0], Y[:0]
    mean: Array | None = None
    scale: Array | None = None
    if state is not None:
        if state.feature_mean is not None and state.feature_scale is not None:
            mean = np.asarray(state.feature_mean, dtype=net.dtype)
            scale = np.asarray(state.feature_scale, dtype=net.dtype)
            if mean.shape != (net.n_features,) or scale.shape != (net.n_features,):
                raise ValueError(f"the state's standardization is not of {net.n_features} features")
    elif config.standardize:
        mean, scale = fit_standardization(X_train)
    if mean is not None and scale is not None:
        X_train, X_val = standardize(X_train, mean, scale), standardize(X_val, mean, scale)
    net.feature_mean, net.feature_scale = mean, scale
    net.input_shape = tuple(X_array.shape[1:])
    net.classes = classes
    return Prepared(rng, X_train, Y_train, X_val, Y_val, len(X2d), (train_rows, val_rows))
