"""What the client commands draw on a terminal: live training progress and learning curves.

Progress goes through rich: on a terminal, a live two-line display (bar, percent, iteration,
elapsed, time remaining, rate; then the latest train and validation metrics) that rich redraws
in place at the terminal's width; into a pipe or a log, plain lines, one per tenth of the run.
Curves are drawn with plotext, train and validation together, cost on a log scale.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from app.curve_labels import metric_label, x_label

JSON = dict[str, Any]
CURVE_HEIGHT = 14
MAX_CURVE_WIDTH = 100
MARKERS = [("hd", "▚"), ("dot", "•")]
X_TICKS = 5


def format_metrics(point: JSON | None) -> str:
    """The latest train and validation metrics of a history point, compactly."""
    if point is None:
        return "waiting for the first iteration"
    parts = [f"train cost {point['cost']:.4g}"]
    if point.get("accuracy") is not None:
        parts[-1] += f" acc {point['accuracy']:.4f}"
    if point.get("val_cost") is not None:
        validation = f"val cost {point['val_cost']:.4g}"
        if point.get("val_accuracy") is not None:
            validation += f" acc {point['val_accuracy']:.4f}"
        parts.append(validation)
    return " | ".join(parts)


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "-:--:--"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ProgressView:
    """Shows a job's progress; `update` with each WatchUpdate, `close` at the end."""

    def __init__(self, err: TextIO, job_id: str, *, force_plain: bool = False) -> None:
        self.console = Console(file=err, highlight=False)
        self.interactive = self.console.is_terminal and not force_plain
        self.job_id = job_id
        self.last_point: JSON | None = None
        self._started = time.monotonic()
        self._shown_tenth = -1
        self._status = "queued"
        self._live: Live | None = None
        self._metrics = Text("", no_wrap=True, overflow="ellipsis")
        self._progress = Progress(
            TextColumn("{task.fields[status]:<10}"),
            BarColumn(bar_width=None),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(compact=True),
            TextColumn("{task.fields[rate]:>9}"),
            console=self.console,
            expand=True,
        )
        self._task = self._progress.add_task("train", total=None, status="queued", rate="")
        if self.interactive:
            self._live = Live(
                Group(self._progress, self._metrics),
                console=self.console,
                refresh_per_second=8,
                transient=False,
            )
            self._live.start()

    def update(self, job: JSON, points: Sequence[JSON]) -> None:
        if points:
            self.last_point = points[-1]
        total = job.get("n_iterations")
        iteration = int(job.get("iteration") or (self.last_point or {}).get("iteration") or 0)
        self._status = str(job.get("status", self._status))
        elapsed = time.monotonic() - self._started
        rate = iteration / elapsed if elapsed > 0 and iteration else 0.0
        rate_text = f"{rate:,.0f} it/s" if rate >= 1 else (f"{rate:.2f} it/s" if rate else "")
        self._progress.update(
            self._task,
            total=total,
            completed=iteration,
            status=self._status,
            rate=rate_text,
        )
        self._metrics.plain = format_metrics(self.last_point)
        if not self.interactive:
            self._plain_line(job, iteration, total, rate, elapsed)

    def _plain_line(
        self, job: JSON, iteration: int, total: int | None, rate: float, elapsed: float
    ) -> None:
        fraction = float(job.get("progress") or 0.0)
        tenth = int(fraction * 10)
        done = str(job.get("status")) in {"succeeded", "failed", "cancelled"}
        if tenth == self._shown_tenth and not done:
            return
        self._shown_tenth = tenth
        remaining = (total - iteration) / rate if rate and total else None
        line = (
            f"{self._status} {fraction:4.0%} iter {iteration}/{total or '?'} "
            f"elapsed {format_duration(elapsed)} eta {format_duration(remaining)} "
            f"{rate:,.0f} it/s | {format_metrics(self.last_point)}"
        )
        self.console.file.write(line + "\n")
        self.console.file.flush()

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None


def draw_curves(
    history: Sequence[JSON],
    *,
    width: int,
    color: bool,
    title_suffix: str = "",
    task: str | None = None,
    batch_size: int | None = None,
) -> str:
    """Cost (log scale) and accuracy (R² for regression) against the iteration (the epoch for
    mini-batch runs), train and validation lines."""
    import plotext

    width = max(40, min(width, MAX_CURVE_WIDTH))
    iterations = [float(p["iteration"]) for p in history]
    panels = [("cost", "cost", "val_cost", True), ("accuracy", "accuracy", "val_accuracy", False)]
    drawings: list[str] = []
    for title, train_key, val_key, log in panels:
        series = [(name, key) for name, key in (("train", train_key), ("validation", val_key))]
        lines: list[tuple[str, list[float], list[float]]] = []
        for name, key in series:
            xs, ys = [], []
            for x, point in zip(iterations, history, strict=True):
                value = point.get(key)
                if value is None or not math.isfinite(value) or (log and value <= 0):
                    continue
                xs.append(x)
                ys.append(float(value))
            if ys:
                lines.append((name, xs, ys))
        values = [y for _, _, ys in lines for y in ys]
        if len(history) < 2 or not values:
            continue  # nothing to draw a line through
        # plotext cannot put a flat line on a log axis (its range would be empty).
        log = log and max(values) > min(values)
        figure = plotext.figure
        figure.clear()
        figure.plot_size(width, CURVE_HEIGHT)
        keys = []
        for (name, xs, ys), (marker, symbol) in zip(lines, MARKERS, strict=False):
            figure.draw(figure.signal(xs, ys, marker=marker))
            keys.append(f"{symbol} {name}")
        if log:
            figure.ruler("y").scale("log")
        # Iterations are whole numbers: label them so, not as 2.5e2.
        first, last = min(iterations), max(iterations)
        ticks = sorted({round(first + (last - first) * k / X_TICKS) for k in range(X_TICKS + 1)})
        figure.ruler("x").ticks(ticks, [str(tick) for tick in ticks])
        # The key goes in the title: a legend box inside the canvas would hide the curve.
        scale = " (log scale)" if log else ""
        label = metric_label(title, task)
        figure.title(f"{label}{scale}{title_suffix}: {'  '.join(keys)}")
        figure.label(x_label(batch_size))
        try:
            drawing = str(figure.build())
        except (ValueError, ZeroDivisionError, IndexError):
            continue  # a degenerate range: the curves are a convenience, never a failure
        drawings.append(drawing if color else plotext.uncolorize(drawing))
    return "\n".join(drawings)
