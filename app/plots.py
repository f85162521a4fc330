"""Learning curves as images: cost and accuracy (R² for regression) in two panels.

Pure: history points in, SVG or PNG bytes out. Only matplotlib's object-oriented API is used
(a ``Figure`` with its own Agg/SVG canvas, never pyplot), so no global figure state is shared
between the threads that serve concurrent requests.

What the drawing says beyond the lines (decided here, once; the dashboard mirrors it):

* the cost panel's y axis is logarithmic by default: a cost falling from 2.5 to 1e-6 looks flat
  after its first percent on a linear axis, and a validation cost creeping up is invisible;
* the best iteration (lowest validation cost, else lowest training cost; the point early
  stopping restores) is marked on both panels;
* a run whose cost exploded (non-finite, or above ``EXPLODED_FACTOR`` times its first cost) gets
  a red note, so a diverged curve is not read as a scale glitch.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from app.curve_labels import metric_label, x_label

ImageFormat = Literal["svg", "png"]
YScale = Literal["log", "linear"]

# (panel metric, train key, validation key)
PANELS = (("cost", "cost", "val_cost"), ("accuracy", "accuracy", "val_accuracy"))
TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"
BEST_COLOR = "#2e7d32"
BAD_COLOR = "#b3261e"
FIGSIZE_INCHES = (10.0, 4.0)
DPI = 100
EMPTY_NOTE = "no history points yet"
# A cost this many times its first value (or non-finite) means the run blew up.
EXPLODED_FACTOR = 1e6

# Path simplification merges nearly collinear segments; the images keep every point they are
# given (callers thin long curves to real points first), so their vertices can be counted. A
# line over 1,000 points is re-sliced at draw time into a new path that would simplify again,
# so the switch is the process-wide default (set once, never toggled: no thread sees it change).
matplotlib.rcParams["path.simplify"] = False
# Fixed salt for the ids of clip paths and markers: the same curve gives the same SVG bytes.
matplotlib.rcParams["svg.hashsalt"] = "dnn-service"


def line_gid(metric: str, split: str) -> str:
    """The SVG id of one plotted line (e.g. ``cost-train``), so clients can find its points."""
    return f"{metric}-{split}"


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def best_iteration(points: Sequence[Mapping[str, Any]]) -> int | None:
    """The iteration of the lowest validation cost, or of the lowest training cost when the
    run has no validation split; None without a finite cost."""
    key = "val_cost" if any(_finite(p.get("val_cost")) for p in points) else "cost"
    candidates = [(float(p[key]), int(p["iteration"])) for p in points if _finite(p.get(key))]
    return min(candidates)[1] if candidates else None


def explosion(points: Sequence[Mapping[str, Any]]) -> str | None:
    """A one-line note when the training cost exploded, else None."""
    costs = [float(p["cost"]) for p in points if p.get("cost") is not None]
    if not costs:
        return None
    if not all(_finite(c) for c in costs):
        return "cost exploded: it became non-finite (the run diverged)"
    first, worst = costs[0], max(costs)
    if first > 0 and worst > EXPLODED_FACTOR * first:
        return f"cost exploded: {worst:.3g}, {worst / first:.2g}x its first value {first:.3g}"
    return None


@dataclass(frozen=True)
class CurveStyle:
    """How to label and scale a job's curve (from its hyperparameters)."""

    yscale: YScale = "log"
    task: str | None = None
    batch_size: int | None = None
    # The early-stopping restore point when the run reported one; else computed from points.
    best_iteration: int | None = None


def _series(points: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(p["iteration"]), float(p[key])) for p in points if p.get(key) is not None]
    return [i for i, _ in pairs], [v for _, v in pairs]


def _draw_panel(
    ax: Axes,
    points: Sequence[Mapping[str, Any]],
    panel: tuple[str, str, str],
    style: CurveStyle,
    best: int | None,
) -> None:
    metric, train_key, validation_key = panel
    label = metric_label(metric, style.task)
    # Accuracy and R² stay linear: they live in [0, 1] (R² may go negative).
    log = metric == "cost" and style.yscale == "log"
    ax.set_title(f"{label} (log scale)" if log else label)
    ax.set_xlabel(x_label(style.batch_size))
    ax.set_ylabel(label)
    ax.grid(True, alpha=0.3)
    # The axes' SVG id names its scale, so a client can tell which drawing it got.
    ax.set_gid(f"panel-{metric}-{'log' if log else 'linear'}")
    if log:
        # Zero or negative costs cannot sit on a log axis; they are left out, not clipped.
        ax.set_yscale("log", nonpositive="mask")
    for split, key, color in (
        ("train", train_key, TRAIN_COLOR),
        ("validation", validation_key, VALIDATION_COLOR),
    ):
        iterations, values = _series(points, key)
        if not iterations:
            continue
        (line,) = ax.plot(iterations, values, color=color, linewidth=1.5, label=split)
        line.set_gid(line_gid(metric, split))
        # Path simplification would merge nearly collinear segments; the image keeps every
        # point it was given (callers thin long curves first), so its points can be counted.
        line.get_path().should_simplify = False
    if best is not None and ax.lines:
        marker = ax.axvline(
            best, color=BEST_COLOR, linestyle="--", linewidth=1, label=f"best ({best})"
        )
        marker.set_gid(f"best-{metric}")
    if ax.lines:
        ax.legend(loc="best")


def render_curves(
    points: Sequence[Mapping[str, Any]],
    fmt: ImageFormat,
    *,
    title: str = "",
    style: CurveStyle | None = None,
) -> bytes:
    """Draw the learning curve; an empty history gives a valid image with a note.

    Parameters
    ----------
    points : history points, oldest first, each with ``iteration`` and any of ``cost``,
        ``accuracy``, ``val_cost``, ``val_accuracy``.
    fmt : ``"svg"`` or ``"png"`` (1000 x 400 pixels).
    title : a heading above both panels.
    style : the cost axis's scale (log by default), the task (R² for regression), the batch
        size (an "epoch" x axis) and the best iteration to mark.
    """
    style = style or CurveStyle()
    figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI, layout="constrained")
    canvas = FigureCanvasSVG(figure) if fmt == "svg" else FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title)
    best = style.best_iteration if style.best_iteration is not None else best_iteration(points)
    axes = figure.subplots(1, len(PANELS))
    for ax, panel in zip(axes, PANELS, strict=True):
        _draw_panel(ax, points, panel, style, best)
    if not points:
        note = figure.text(0.5, 0.5, EMPTY_NOTE, ha="center", va="center", fontsize=14)
        note.set_color("gray")
        # SVG text is drawn as glyph paths; the id lets clients (and tests) find the note.
        note.set_gid("empty-note")
    warning = explosion(points)
    if warning:
        # Over the cost panel, where the explosion is drawn.
        cost_axes = axes[0]
        flag = cost_axes.text(
            0.5,
            0.5,
            warning.replace(": ", ":\n", 1),
            ha="center",
            va="center",
            fontsize=12,
            transform=cost_axes.transAxes,
        )
        flag.set_color(BAD_COLOR)
        flag.set_bbox({"facecolor": "white", "edgecolor": BAD_COLOR, "alpha": 0.9})
        flag.set_gid("exploded-note")
    buffer = io.BytesIO()
    if fmt == "svg":
        # No creation date in the metadata: nothing in the image depends on the clock.
        canvas.print_figure(buffer, format="svg", metadata={"Date": None})
    else:
        canvas.print_figure(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
