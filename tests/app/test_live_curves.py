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
