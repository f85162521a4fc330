"""The sweep page in headless Chromium: the leaderboard and every trial's curve on one chart."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import httpx
import pytest
from chromium import chromium
from job_helpers import blobs
from sweep_helpers import wait_for_sweep

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERIES = "Chart.getChart('sweep-chart')?.data.datasets.map(d => d.data.length) ?? []"


def test_sweep_page_shows_the_leaderboard_and_overlays_the_curves(
    client: httpx.Client, tmp_path: Path
) -> None:
    dataset = client.post("/datasets", json=blobs(120)).json()["id"]
    body = {
        "dataset_id": dataset,
        "name": "page-search",
        "hyperparameters": {"n_iterations": 40, "validation_fraction": 0.25},
        "grid": {"learning_rate": [0.001, 0.01, 0.1]},
    }
    sweep_id = client.post("/sweeps", json=body).json()["sweep_id"]
    sweep = wait_for_sweep(client, sweep_id, {"succeeded"})

    with chromium(tmp_path) as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{client.base_url}/")
        page.wait_for("document.readyState === 'complete'")
        page.click("[...document.querySelectorAll('nav a')].find(a => a.textContent === 'sweeps')")
        page.wait_for("document.querySelector('#sweeps-table tbody')?.rows.length === 1")
        page.click("document.querySelector('#sweeps-table tbody a')")
        page.wait_for("location.search", until=lambda search: search == f"?id={sweep_id}")

        lengths = page.wait_for(SERIES, until=lambda n: len(n) == 3 and min(n) > 0)
        assert lengths == [40, 40, 40], "each trial's validation curve, every point"
        assert (
            page.evaluate("Chart.getChart('sweep-chart').options.plugins.title.text") == "val_cost"
        )
        ranks = page.evaluate(
            "[...document.querySelectorAll('#leaderboard tbody tr')].map(r => r.dataset.trial)"
        )
        assert ranks == [str(trial["trial"]) for trial in sweep["trials"]]
        best = page.evaluate("document.getElementById('sweep-best').textContent")
        assert sweep["best"]["job_id"] in best
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "sweep.png").write_bytes(base64.b64decode(shot["data"]))
        page.evaluate(
            "const s = document.getElementById('curve-metric'); s.value = 'accuracy';"
            "s.dispatchEvent(new Event('change'))"
        )
        assert (
            page.evaluate("Chart.getChart('sweep-chart').options.plugins.title.text") == "accuracy"
        )


def test_a_missing_sweep_shows_its_error_alone_and_is_not_polled(
    client: httpx.Client, tmp_path: Path
) -> None:
    with chromium(tmp_path) as page:
        page.call("Page.enable")
        page.call("Page.navigate", url=f"{client.base_url}/static/sweep.html?id=nonexistent")
        page.wait_for("document.readyState === 'complete'")
        message = page.wait_for(
            "!document.getElementById('message').hidden && "
            "document.getElementById('message').textContent"
        )
        assert "404" in message and "does not exist" in message
        # Before, an empty sweep frame showed under the error and the page asked again every
        # 2 s for as long as it stayed open.
        time.sleep(5)
        assert page.evaluate("document.getElementById('sweep-detail').hidden")
        asked = page.evaluate(
            "performance.getEntriesByType('resource')"
            ".filter(e => e.name.includes('/sweeps/nonexistent')).length"
        )
        assert asked == 1
