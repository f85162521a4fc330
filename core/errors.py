"""Exceptions raised by the network core.

Every error the core raises on purpose derives from :class:`CoreError`, so a caller can catch
them all at once. Errors about bad caller input also derive from :class:`ValueError`, so code
that only knows the standard library contract still handles them.
"""

from __future__ import annotations

from typing import Any


class CoreError(Exception):
    """Base class of the core's own exceptions."""


class DivergenceError(CoreError, ArithmeticError):
    """Training produced a non-finite cost (the learning rate is usually too high).

    Attributes
    ----------
    iteration : int
        The iteration whose cost was not finite.
    history : list of dict
        The points recorded before the divergence, so a caller can keep the partial curve.
    """

    def __init__(self, iteration: int, history: list[dict[str, Any]]) -> None:
        super().__init__(
            f"training diverged at iteration {iteration}: the cost is not finite; "
            "lower the learning rate"
        )
        self.iteration = iteration
        self.history = history


class ModelFormatError(CoreError, ValueError):
    """Serialized model bytes are malformed, truncated or of an unknown format."""
