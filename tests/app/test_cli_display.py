"""What the CLI draws, without a server: curves within the width, plain progress lines."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from app.cli.display import ProgressView, draw_curves, format_duration, format_metrics
from app.cli.tables import job_details


def curve(n: int, *, validation: bool) -> list[dict[str, float]]:
    points = []
    for i in range(1, n + 1):
        point = {"iteration": i, "cost": 1.0 / i, "accuracy": 1 - 1 / (i + 1)}
        if validation:
            point |= {"val_cost": 1.2 / i + 0.01, "val_accuracy": 1 - 1.3 / (i + 1)}
        points.append(point)
    return points


@pytest.mark.parametrize("width", [40, 61, 80, 132])
def test_curves_fit_the_width_and_name_both_lines(width: int) -> None:
    drawing = draw_curves(curve(500, validation=True), width=width, color=False)
    lines = drawing.splitlines()
    assert max(len(line) for line in lines) <= min(width, 100)
    assert "cost (log scale): ▚ train  • validation" in drawing
    assert "accuracy: ▚ train  • validation" in drawing
    assert "500" in lines[-2]  # the last iteration labels the x axis as a whole number


@pytest.mark.parametrize(
    "history",
    [
        [],
        [{"iteration": 1, "cost": 0.5, "accuracy": 0.5}],
        [
            {"iteration": 1, "cost": 0.5, "accuracy": 0.5},
            {"iteration": 2, "cost": 0.5, "accuracy": 0.5},
        ],
        [
            {"iteration": i, "cost": float("inf") if i > 3 else 1 / i, "accuracy": 0.5}
            for i in range(1, 9)
        ],
    ],
)
def test_degenerate_curves_never_fail(history: list[dict[str, float]]) -> None:
    draw_curves(history, width=80, color=False)


def test_regression_curves_say_r2_and_minibatch_runs_say_epoch() -> None:
    drawing = draw_curves(
        curve(50, validation=True), width=80, color=False, task="regression", batch_size=16
    )
    assert "R²: ▚ train  • validation" in drawing and "accuracy" not in drawing
    assert "epoch" in drawing and "iteration" not in drawing
    plain = draw_curves(curve(50, validation=True), width=80, color=False)
    assert "iteration" in plain and "epoch" not in plain


def test_metrics_and_durations() -> None:
    assert format_metrics(None) == "waiting for the first iteration"
    assert format_metrics({"iteration": 3, "cost": 0.5, "accuracy": 0.75}) == (
        "train cost 0.5 acc 0.7500"
    )
    with_validation = {"iteration": 3, "cost": 0.5, "accuracy": 0.75, "val_cost": 0.625}
    assert format_metrics(with_validation) == "train cost 0.5 acc 0.7500 | val cost 0.625"
    assert format_duration(3725.4) == "1:02:05"
    assert format_duration(None) == "-:--:--"


def test_plain_progress_writes_a_line_per_tenth_with_validation() -> None:
    err = io.StringIO()  # not a terminal: plain lines, no escape sequences
    view = ProgressView(err, "job")
    assert not view.interactive
    points = curve(100, validation=True)
    for i in range(0, 100, 5):
        job = {"status": "running", "progress": (i + 5) / 100, "iteration": i + 5}
        view.update({**job, "n_iterations": 100}, points[i : i + 5])
    view.update({"status": "succeeded", "progress": 1.0, "iteration": 100, "n_iterations": 100}, [])
    view.close()
    lines = err.getvalue().splitlines()
    assert 10 <= len(lines) <= 12 and "\x1b" not in err.getvalue()
    assert lines[-1].startswith("succeeded 100% iter 100/100")
    assert "| val cost" in lines[-1] and "it/s" in lines[-1]


@pytest.mark.parametrize(
    ("status", "model_id", "shown"),
    [
        ("running", None, "(not yet)"),
        ("cancelled", None, "(none)"),
        ("failed", None, "(none)"),
        ("succeeded", "m1", "(m1)"),
    ],
)
def test_a_job_without_a_model_says_whether_one_may_come(
    status: str, model_id: str | None, shown: str
) -> None:
    job = {"id": "j1", "status": status, "progress": 0.5, "model_name": "cancer"}
    job["model_id"] = model_id
    text = io.StringIO()
    Console(file=text, width=100, color_system=None).print(job_details(job))
    model_line = next(line for line in text.getvalue().splitlines() if line.startswith("model"))
    assert f"cancer {shown}" in model_line
