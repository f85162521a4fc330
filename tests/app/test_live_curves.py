"""GET /jobs/{id}/curve.svg and .png from a real server: valid images of the stored curve."""

from __future__ import annotations

import io
import re
import struct
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow

SVG = "{http://www.w3.org/2000/svg}"


def points_per_line(svg: bytes) -> dict[str, int]:
    counts = {}
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        gid = group.get("id", "")
        path = group.find(f"{SVG}path")
        if gid.endswith(("-train", "-validation")) and path is not None:
            counts[gid] = len(re.findall(r"[ML]\s", path.get("d", "")))
    return counts


@pytest.fixture
def finished_job(client: httpx.Client) -> Iterator[dict[str, Any]]:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 3, 150)
    X = rng.normal(size=(150, 4)) + y[:, None]
    uploaded = client.post(
        "/datasets", json={"name": "three", "features": X.tolist(), "labels": y.tolist()}
    )
    assert uploaded.status_code == 201, uploaded.text
    hyperparameters = {"hidden_layers": [6], "n_iterations": 300, "validation_fraction": 0.2}
    body = {"dataset_id": uploaded.json()["id"], "hyperparameters": hyperparameters}
    job_id = client.post("/train", json=body).json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := client.get(f"/jobs/{job_id}").json())["status"] != "succeeded":
        assert job["status"] in {"queued", "running"}, job
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    yield job


def test_svg_draws_every_stored_point(client: httpx.Client, finished_job: dict[str, Any]) -> None:
    response = client.get(f"/jobs/{finished_job['id']}/curve.svg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert points_per_line(response.content) == {
        "cost-train": 300,
        "cost-validation": 300,
        "accuracy-train": 300,
        "accuracy-validation": 300,
    }


def test_long_curves_are_thinned_to_max_points(
    client: httpx.Client, finished_job: dict[str, Any]
) -> None:
    response = client.get(f"/jobs/{finished_job['id']}/curve.svg", params={"max_points": 50})
    # The image draws the thinned curve GET /jobs/{id} returns: one vertex per real point.
    thinned = client.get(f"/jobs/{finished_job['id']}", params={"max_points": 50}).json()
    assert thinned["thinned"] and 4 <= len(thinned["history"]) <= 50
    assert set(points_per_line(response.content).values()) == {len(thinned["history"])}


def test_png_is_a_decodable_image(client: httpx.Client, finished_job: dict[str, Any]) -> None:
    response = client.get(f"/jobs/{finished_job['id']}/curve.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    png = response.content
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1000, 400)
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.size == (1000, 400)


def test_unknown_job_and_bad_parameters_are_client_errors(client: httpx.Client) -> None:
    for suffix in ("svg", "png"):
        missing = client.get(f"/jobs/nope/curve.{suffix}")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
    bad = client.get("/jobs/nope/curve.svg", params={"max_points": 1})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input"


def text_labels(svg: bytes) -> list[str]:
    """matplotlib draws text as glyph paths, each preceded by a comment holding the text."""
    return re.findall(r"<!-- (.*?) -->", svg.decode())


def axes_ids(svg: bytes) -> set[str]:
    ids = {group.get("id", "") for group in ET.fromstring(svg).iter(f"{SVG}g")}
    return {gid for gid in ids if gid.startswith("panel-")}


def test_log_scale_is_the_default_for_cost_and_linear_on_request(
    client: httpx.Client, finished_job: dict[str, Any]
) -> None:
    url = f"/jobs/{finished_job['id']}/curve.svg"
    default, log, linear = (
        client.get(url, params=p) for p in ({}, {"yscale": "log"}, {"yscale": "linear"})
    )
    assert default.content == log.content
    assert log.content != linear.content
    # Accuracy stays linear whichever scale the cost axis has.
    assert axes_ids(log.content) == {"panel-cost-log", "panel-accuracy-linear"}
    assert axes_ids(linear.content) == {"panel-cost-linear", "panel-accuracy-linear"}
    # The log axis labels its ticks as powers of ten; the linear one does not.
    assert any("10^{" in label for label in text_labels(log.content))
    assert not any("10^{" in label for label in text_labels(linear.content))
    assert "cost (log scale)" in text_labels(log.content)
    # Both still draw every point of every line.
    assert points_per_line(log.content) == points_per_line(linear.content)
    png = client.get(f"/jobs/{finished_job['id']}/curve.png", params={"yscale": "linear"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    bad = client.get(url, params={"yscale": "cubic"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"


def test_best_iteration_is_marked_where_validation_cost_is_lowest(
    client: httpx.Client, finished_job: dict[str, Any]
) -> None:
    svg = client.get(f"/jobs/{finished_job['id']}/curve.svg").content
    points = client.get(f"/jobs/{finished_job['id']}/history").json()["points"]
    best = min(points, key=lambda p: (p["val_cost"], p["iteration"]))["iteration"]
    ids = {group.get("id") for group in ET.fromstring(svg).iter(f"{SVG}g")}
    assert {"best-cost", "best-accuracy"} <= ids
    assert f"best ({best})" in text_labels(svg)
    # A classifier's second panel says accuracy, with an iteration x axis (full batch).
    labels = text_labels(svg)
    assert "accuracy" in labels and "R²" not in labels
    assert "iteration" in labels and "epoch" not in labels


def test_listing_carries_hyperparameters_and_final_metrics(
    client: httpx.Client, finished_job: dict[str, Any]
) -> None:
    listed = client.get("/jobs").json()["items"]
    (job,) = (item for item in listed if item["id"] == finished_job["id"])
    assert job["hyperparameters"]["hidden_layers"] == [6]
    assert job["hyperparameters"]["task"] == "multiclass"
    model = client.get(f"/models/{job['model_id']}").json()
    assert job["metrics"] == model["metrics"]
    assert {"cost", "val_cost", "accuracy", "val_accuracy", "best_iteration"} <= set(job["metrics"])
    assert finished_job["metrics"] == model["metrics"]


def test_regression_minibatch_curve_says_r2_and_epoch(client: httpx.Client) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    uploaded = client.post(
        "/datasets", json={"name": "reg", "features": X.tolist(), "labels": y.tolist()}
    )
    assert uploaded.status_code == 201, uploaded.text
    hyperparameters = {
        "hidden_layers": [4],
        "n_iterations": 30,
        "batch_size": 32,
        "task": "regression",
    }
    body = {"dataset_id": uploaded.json()["id"], "hyperparameters": hyperparameters}
    job_id = client.post("/train", json=body).json()["job_id"]
    deadline = time.monotonic() + 60
    while (job := client.get(f"/jobs/{job_id}").json())["status"] != "succeeded":
        assert job["status"] in {"queued", "running"}, job
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    labels = text_labels(client.get(f"/jobs/{job_id}/curve.svg").content)
    assert "R²" in labels and "accuracy" not in labels
    assert "epoch" in labels and "iteration" not in labels
    # No validation split: the best iteration is the lowest training cost.
    best = min(job["history"], key=lambda p: (p["cost"], p["iteration"]))["iteration"]
    assert f"best ({best})" in labels
