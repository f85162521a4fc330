"""app.plots: valid SVG/PNG learning curves holding exactly the points they were given."""

from __future__ import annotations

import io
import re
import struct
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from PIL import Image

from app.plots import (
    DPI,
    FIGSIZE_INCHES,
    CurveStyle,
    best_iteration,
    explosion,
    line_gid,
    render_curves,
)

SVG = "{http://www.w3.org/2000/svg}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def curve(n: int, validation: bool = False) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        point: dict[str, Any] = {"iteration": i, "cost": 1.0 / i, "accuracy": 1.0 - 0.5 / i}
        if validation:
            point |= {"val_cost": 1.2 / i, "val_accuracy": 0.9 - 0.5 / i}
        points.append(point)
    return points


def plotted_points(svg: bytes) -> dict[str, int]:
    """Vertices per line id: matplotlib writes each line as one <path d="M x y L x y ...">."""
    root = ET.fromstring(svg)
    counts = {}
    for group in root.iter(f"{SVG}g"):
        gid = group.get("id", "")
        if gid.endswith(("-train", "-validation")):
            path = group.find(f"{SVG}path")
            assert path is not None
            counts[gid] = len(re.findall(r"[ML]\s", path.get("d", "")))
    return counts


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == PNG_SIGNATURE
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_svg_has_every_point_of_each_line() -> None:
    svg = render_curves(curve(300), "svg", title="job 1")
    assert plotted_points(svg) == {line_gid("cost", "train"): 300, "accuracy-train": 300}


def test_validation_lines_are_drawn_when_present() -> None:
    counts = plotted_points(render_curves(curve(57, validation=True), "svg"))
    assert counts == {
        "cost-train": 57,
        "cost-validation": 57,
        "accuracy-train": 57,
        "accuracy-validation": 57,
    }


def test_missing_values_are_left_out_not_drawn_as_zero() -> None:
    points = curve(10, validation=True)
    for point in points[::2]:
        del point["val_cost"]
    counts = plotted_points(render_curves(points, "svg"))
    assert counts["cost-validation"] == 5 and counts["cost-train"] == 10


def test_png_decodes_at_the_documented_size() -> None:
    png = render_curves(curve(200, validation=True), "png")
    expected = (round(FIGSIZE_INCHES[0] * DPI), round(FIGSIZE_INCHES[1] * DPI))
    assert png_size(png) == expected
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.size == expected
        # Something was drawn: not a blank canvas.
        assert len(image.convert("L").getcolors(maxcolors=1_000_000) or []) > 10


def test_empty_history_gives_a_valid_image_with_a_note() -> None:
    svg = render_curves([], "svg")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert plotted_points(svg) == {}
    assert any(group.get("id") == "empty-note" for group in root.iter(f"{SVG}g"))
    assert png_size(render_curves([], "png")) == (1000, 400)


def test_concurrent_renders_do_not_interfere() -> None:
    """No pyplot state: threads drawing at once each get exactly their own figure."""
    curves = [curve(n, validation=n % 2 == 0) for n in (20, 35, 50, 65)]
    expected_png = [render_curves(points, "png") for points in curves]
    with ThreadPoolExecutor(4) as pool:
        svgs = list(pool.map(lambda points: render_curves(points, "svg"), curves * 2))
        pngs = list(pool.map(lambda points: render_curves(points, "png"), curves * 2))
    assert [plotted_points(svg)["cost-train"] for svg in svgs] == [20, 35, 50, 65] * 2
    assert [plotted_points(svg).get("cost-validation", 0) for svg in svgs] == [20, 0, 50, 0] * 2
    assert pngs == expected_png * 2


def labels(svg: bytes) -> list[str]:
    """matplotlib draws text as glyph paths, each preceded by a comment holding the text."""
    return re.findall(r"<!-- (.*?) -->", svg.decode())


def test_cost_is_log_scaled_by_default_and_linear_on_request() -> None:
    points = curve(100, validation=True)
    log = render_curves(points, "svg")
    linear = render_curves(points, "svg", style=CurveStyle(yscale="linear"))
    assert log != linear
    assert "cost (log scale)" in labels(log) and "cost (log scale)" not in labels(linear)
    assert any("10^{" in label for label in labels(log))
    assert plotted_points(log) == plotted_points(linear)


def test_best_iteration_is_the_lowest_validation_cost_else_training_cost() -> None:
    points = curve(20, validation=True)
    for point in points[12:]:
        point["val_cost"] += 0.01 * (point["iteration"] - 12)  # overfitting after iteration 12
    assert best_iteration(points) == 12
    assert "best (12)" in labels(render_curves(points, "svg"))
    assert best_iteration(curve(20)) == 20
    # The early-stopping restore point, when the run reports one, wins.
    assert "best (7)" in labels(render_curves(points, "svg", style=CurveStyle(best_iteration=7)))
    assert best_iteration([]) is None


def test_regression_says_r2_and_minibatch_runs_say_epoch() -> None:
    svg = render_curves(curve(10), "svg", style=CurveStyle(task="regression", batch_size=16))
    assert "R²" in labels(svg) and "accuracy" not in labels(svg)
    assert "epoch" in labels(svg) and "iteration" not in labels(svg)
    assert "accuracy" in labels(render_curves(curve(10), "svg"))


def test_an_exploded_cost_is_flagged() -> None:
    points = curve(10)
    assert explosion(points) is None
    points[-1]["cost"] = 4e17
    note = explosion(points)
    assert note is not None and "exploded" in note
    svg = render_curves(points, "svg")
    assert any(group.get("id") == "exploded-note" for group in ET.fromstring(svg).iter(f"{SVG}g"))
    points[-1]["cost"] = float("nan")
    assert "non-finite" in (explosion(points) or "")
    assert "exploded-note" not in render_curves(curve(10), "svg").decode()
