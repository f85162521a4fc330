"""How learning curves are labelled, decided once for the images, the CLI and (mirrored in
app/static/charts.js) the dashboard. No matplotlib here: the CLI imports this cheaply."""

from __future__ import annotations


def metric_label(metric: str, task: str | None) -> str:
    """What a panel is called: the core's "accuracy" is R² for regression."""
    return "R²" if metric == "accuracy" and task == "regression" else metric


def x_label(batch_size: int | None) -> str:
    """Mini-batch runs record one point per epoch; full-batch runs one per gradient step."""
    return "epoch" if batch_size else "iteration"
