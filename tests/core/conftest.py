"""Shared fixtures for the core tests."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray


@pytest.fixture
def blobs() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """A small, nearly separable binary problem: 200 samples, 4 features."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).astype(np.int64)
    return X, y
