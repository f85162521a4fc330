"""Learning curves as images: cost and accuracy against the iteration, in two panels.

Pure: history points in, SVG or PNG bytes out. Only matplotlib's object-oriented API is used
(a ``Figure`` with its own Agg/SVG canvas, never pyplot), so no global figure state is shared
between the threads that serve concurrent requests.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

ImageFormat = Literal["svg", "png"]

# (panel title, train key, validation key)
PANELS = (("cost", "cost", "val_cost"), ("accuracy", "accuracy", "val_accuracy"))
TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"
FIGSIZE_INCHES = (10.0, 4.0)
DPI = 100
EMPTY_NOTE = "no history points yet"

# Path simplification merges nearly collinear segments; the images keep every point they are
# given (callers thin long curves to real points first), so their vertices can be counted. A
# line over 1,000 points is re-sliced at draw time into a new path that would simplify again,
# so the switch is the process-wide default (set once, never toggled: no thread sees it change).
matplotlib.rcParams["path.simplify"] = False


def line_gid(metric: str, split: str) -> str:
    """The SVG id of one plotted line (e.g. ``cost-train``), so clients can find its points."""
    return f"{metric}-{split}"


def _series(points: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(p["iteration"]), float(p[key])) for p in points if p.get(key) is not None]
    return [i for i, _ in pairs], [v for _, v in pairs]


def _draw_panel(ax: Axes, points: Sequence[Mapping[str, Any]], panel: tuple[str, str, str]) -> None:
    metric, train_key, validation_key = panel
    ax.set_title(metric)
    ax.set_xlabel("iteration")
    ax.set_ylabel(metric)
    ax.grid(True, alpha=0.3)
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
    if ax.lines:
        ax.legend(loc="best")


def render_curves(
    points: Sequence[Mapping[str, Any]], fmt: ImageFormat, *, title: str = ""
) -> bytes:
    """Draw the learning curve; an empty history gives a valid image with a note.

    Parameters
    ----------
    points : history points, oldest first, each with ``iteration`` and any of ``cost``,
        ``accuracy``, ``val_cost``, ``val_accuracy``.
    fmt : ``"svg"`` or ``"png"`` (1000 x 400 pixels).
    title : a heading above both panels.
    """
    figure = Figure(figsize=FIGSIZE_INCHES, dpi=DPI, layout="constrained")
    canvas = FigureCanvasSVG(figure) if fmt == "svg" else FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title)
    axes = figure.subplots(1, len(PANELS))
    for ax, panel in zip(axes, PANELS, strict=True):
        _draw_panel(ax, points, panel)
    if not points:
        note = figure.text(0.5, 0.5, EMPTY_NOTE, ha="center", va="center", fontsize=14)
        note.set_color("gray")
        # SVG text is drawn as glyph paths; the id lets clients (and tests) find the note.
        note.set_gid("empty-note")
    buffer = io.BytesIO()
    if fmt == "svg":
        # No creation date in the metadata: nothing in the image depends on the clock.
        canvas.print_figure(buffer, format="svg", metadata={"Date": None})
    else:
        canvas.print_figure(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
