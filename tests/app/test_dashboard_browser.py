"""The dashboard in real headless Chromium: upload a CSV, start training, watch the chart grow.

Chromium is driven over the Chrome DevTools Protocol (tests/support/chromium.py). Outside CI the
test skips when Chromium is not installed; with CI=true it fails instead, so the browser check
can never silently vanish from the pipeline (scripts/install-test-tools).
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from chromium import DevTools, chromium
from live_server import LiveServer

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with chromium(tmp_path) as page:
        yield page


def blobs_csv(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 2)) + np.where(y[:, None] == 1, 1.2, -1.2)
    rows = [f"{a:.4f},{b:.4f},{'yes' if k else 'no'}" for (a, b), k in zip(X, y, strict=True)]
    path.write_text("x1,x2,outcome\n" + "\n".join(rows) + "\n")
    return path


def set_field(page: DevTools, selector: str, value: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(value)}")


CHART_POINTS = "Chart.getChart('cost-chart')?.data.datasets[0].data.length ?? 0"


def test_dashboard_trains_and_draws_the_curve_live(
    browser: DevTools,
    live_server: LiveServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = browser
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{live_server.url}/")
    page.wait_for("document.readyState === 'complete' && typeof Chart === 'function'")
    page.wait_for("document.querySelector('#datasets-table tbody') !== null")

    # Upload through the form: the file input is filled the way a user's file picker does.
    document = page.call("DOM.getDocument")["root"]["nodeId"]
    file_input = page.call(
        "DOM.querySelector", nodeId=document, selector="#upload-form input[type=file]"
    )["nodeId"]
    csv = blobs_csv(tmp_path / "blobs.csv")
    page.call("DOM.setFileInputFiles", nodeId=file_input, files=[str(csv)])
    set_field(page, "#upload-form input[name=label_column]", "outcome")
    page.evaluate("document.querySelector('#upload-form button').click()")
    page.wait_for("document.querySelector('#datasets-table tbody').rows.length === 1")
    page.wait_for("document.querySelector('#train-form select[name=dataset_id]').value !== ''")

    # Long enough that the page is watching while training still runs.
    set_field(page, "#train-form input[name=n_iterations]", "40000")
    set_field(page, "#train-form input[name=record_every]", "10")
    set_field(page, "#train-form input[name=learning_rate]", "0.05")
    set_field(page, "#train-form select[name=optimizer]", "gd")
    page.evaluate("document.querySelector('#train-form button').click()")
    job_id = page.wait_for("location.hash.match(/^#\\/jobs\\/(\\w+)$/)?.[1]")

    first = page.wait_for(CHART_POINTS, until=lambda n: n > 0)
    grown = page.wait_for(CHART_POINTS, until=lambda n: n > first)
    assert grown > first > 0
    page.wait_for(
        "document.getElementById('job-status').textContent",
        until=lambda status: status == "succeeded",
        timeout=120,
    )
    page.wait_for("document.getElementById('job-result').textContent.startsWith('Model')")

    stored = httpx.get(f"{live_server.url}/jobs/{job_id}/history", timeout=30).json()["points"]
    drawn = page.evaluate(
        "Chart.getChart('cost-chart').data.datasets[0].data.map(p => p.x)"
        ".concat(Chart.getChart('accuracy-chart').data.datasets[0].data.length)"
    )
    iterations = [point["iteration"] for point in stored]
    # The stream's opening snapshot (thinned only past 2,000 points), then each new point once.
    assert drawn[:-1] == sorted(set(drawn[:-1])), "each point drawn once, in order"
    assert set(drawn[:-1]) <= set(iterations)
    assert drawn[0] == iterations[0] and drawn[-2] == iterations[-1]
    assert drawn[-1] == len(drawn) - 1 > 4000 / 10

    # The overview lists the job and its model.
    page.evaluate("location.hash = '#/'")
    page.wait_for("document.querySelector('#models-table tbody').rows.length === 1")
    page.wait_for(f"document.querySelector('#jobs-table a[href=\"#/jobs/{job_id}\"]') !== null")

    # Reopened, the finished job is drawn from one thinned snapshot: what GET /jobs/{id} returns.
    job = httpx.get(f"{live_server.url}/jobs/{job_id}", timeout=30).json()
    assert job["thinned"] and job["points_total"] == len(stored) > len(job["history"])
    page.evaluate(f"location.hash = '#/jobs/{job_id}'")
    page.wait_for(CHART_POINTS, until=lambda n: n == len(job["history"]))
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with capsys.disabled():
        print(f"\ndashboard screenshot: {screenshot}")


def screenshot(page: DevTools, name: str) -> Path:
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return path


def train_and_wait(client: httpx.Client, dataset_id: str, **hyperparameters: Any) -> str:
    base = {"hidden_layers": [8], "n_iterations": 300, "validation_fraction": 0.2}
    body = {"dataset_id": dataset_id, "hyperparameters": base | hyperparameters}
    job_id: str = client.post("/train", json=body).json()["job_id"]
    deadline = time.monotonic() + 120
    while (status := client.get(f"/jobs/{job_id}?max_points=2").json()["status"]) != "succeeded":
        assert status in {"queued", "running"}, status
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.1)
    return job_id


COMPARE = "Chart.getChart('compare-cost-chart')"


def test_dashboard_compares_two_runs_on_one_chart_with_a_log_toggle(
    browser: DevTools,
    live_server: LiveServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    page = browser
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{live_server.url}/")
    page.wait_for("document.readyState === 'complete' && typeof Chart === 'function'")
    # Empty states say what to do.
    empty = page.wait_for(
        "!document.getElementById('jobs-empty').hidden && "
        "document.getElementById('jobs-empty').textContent"
    )
    assert "upload a CSV to start" in empty
    assert "upload a CSV to start" in page.evaluate(
        "document.getElementById('datasets-empty').textContent"
    )

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 200)
    X = rng.normal(size=(200, 3)) + np.where(y[:, None] == 1, 1.0, -1.0)
    with live_server.client() as client:
        dataset = client.post(
            "/datasets", json={"name": "blobs", "features": X.tolist(), "labels": y.tolist()}
        ).json()
        slow = train_and_wait(client, dataset["id"], learning_rate=0.001)
        fast = train_and_wait(client, dataset["id"], learning_rate=0.05)

    # The runs table: hyperparameters and final metrics as columns, sortable.
    page.wait_for("document.querySelectorAll('#jobs-table tbody tr').length === 2")
    page.wait_for(
        "[...document.querySelectorAll('#jobs-table tbody .status')]"
        ".every(td => td.textContent === 'succeeded')"
    )
    headers = page.evaluate(
        "[...document.querySelectorAll('#jobs-table th')].map(th => th.textContent)"
    )
    assert {"lr", "val cost", "duration", "dataset"} <= set(headers)
    page.evaluate("document.querySelector('#jobs-table th[data-key=learning_rate]').click()")
    order = page.evaluate(
        "[...document.querySelectorAll('#jobs-table tbody .select-job')].map(b => b.value)"
    )
    assert order == [slow, fast], "ascending learning rate"
    page.evaluate("document.querySelector('#jobs-table th[data-key=learning_rate]').click()")
    order = page.evaluate(
        "[...document.querySelectorAll('#jobs-table tbody .select-job')].map(b => b.value)"
    )
    assert order == [fast, slow], "descending learning rate"
    # The dataset shows its short content hash, and the name filter narrows the table.
    assert dataset["content_sha256"][:8] in page.evaluate(
        "document.querySelector('#jobs-table tbody').textContent"
    )
    set_field(page, "#job-name-filter", "no-such-model")
    page.evaluate("document.getElementById('job-name-filter').dispatchEvent(new Event('input'))")
    assert page.evaluate("document.querySelectorAll('#jobs-table tbody tr').length") == 0
    assert page.evaluate("document.getElementById('jobs-empty').textContent") == (
        "No jobs match this filter."
    )
    set_field(page, "#job-name-filter", "")
    page.evaluate("document.getElementById('job-name-filter').dispatchEvent(new Event('input'))")
    page.wait_for("document.querySelectorAll('#jobs-table tbody tr').length === 2")

    # Select both runs and compare: one chart, two runs (train and validation lines each).
    for job_id in (slow, fast):
        page.evaluate(f"document.querySelector('.select-job[value=\"{job_id}\"]').click()")
    page.evaluate("document.getElementById('compare-button').click()")
    page.wait_for(f"{COMPARE}?.data.datasets.length === 4")
    runs = page.evaluate(f"[...new Set({COMPARE}.data.datasets.map(d => d.runId))]")
    assert sorted(runs) == sorted([slow, fast])
    legend = page.evaluate(f"{COMPARE}.data.datasets.map(d => d.label)")
    # The legend names each run by model name and the hyperparameter that differs.
    assert all("learning_rate=" in label for label in legend), legend
    assert any("learning_rate=0.001" in label for label in legend)
    assert page.evaluate(f"{COMPARE}.options.interaction.mode") == "index"
    assert page.evaluate(f"{COMPARE}.scales.y.type") == "logarithmic"
    screenshot(page, "compare-log.png")

    # The log toggle switches the cost axis, and the choice is remembered.
    page.evaluate("document.querySelector('#compare .log-toggle').click()")
    page.wait_for(f"{COMPARE}.scales.y.type === 'linear'")
    assert page.evaluate("localStorage.getItem('yscale')") == "linear"
    # Evenly spaced ticks, labelled as such (not the log axis's 1-2-5 labels left behind).
    ticks = page.evaluate(f"{COMPARE}.scales.y.ticks.map(t => t.value)")
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(ticks) >= 4 and len(steps) == 1, ticks
    labels = page.evaluate(f"{COMPARE}.scales.y.ticks.map(t => t.label)")
    assert all(label != "" for label in labels), labels
    assert page.evaluate("Chart.getChart('compare-accuracy-chart').scales.y.type") == "linear"
    screenshot(page, "compare-linear.png")

    # The job page: details, the best-iteration marker, the remembered scale.
    page.evaluate(f"location.hash = '#/jobs/{fast}'")
    page.wait_for("Chart.getChart('cost-chart')?.data.datasets[0].data.length === 300")
    assert page.evaluate("Chart.getChart('cost-chart').scales.y.type") == "linear"
    assert not page.evaluate("document.querySelector('#job-page .log-toggle').checked")
    best = page.wait_for(
        "Chart.getChart('cost-chart').options.plugins.bestLine.iteration", until=lambda v: v
    )
    model = httpx.get(f"{live_server.url}/jobs/{fast}", timeout=30).json()["metrics"]
    expected_best = (
        model["best_iteration"]
        or min(
            httpx.get(f"{live_server.url}/jobs/{fast}/history", timeout=30).json()["points"],
            key=lambda p: (p["val_cost"], p["iteration"]),
        )["iteration"]
    )
    assert best == expected_best
    details = page.wait_for("document.getElementById('job-metrics').textContent")
    assert "best iteration" in details and "final val cost" in details
    timings = page.evaluate("document.getElementById('job-timings').textContent")
    assert "queued" in timings and "duration" in timings
    assert "yscale=linear" in page.evaluate("document.getElementById('svg-link').href")
    page.evaluate("document.querySelector('#job-page .log-toggle').click()")
    page.wait_for("Chart.getChart('cost-chart').scales.y.type === 'logarithmic'")
    assert "blobs · 200 rows" in page.evaluate(
        "document.getElementById('job-hyperparameters').textContent"
    )
    assert page.evaluate("document.getElementById('job-exploded').hidden")
    # The exploded-run rule the page applies (the same as the images'): 1e6 x the first cost.
    assert page.evaluate("explosion([{iteration: 1, cost: 0.7}, {iteration: 2, cost: 4e17}])")
    assert (
        page.evaluate("explosion([{iteration: 1, cost: 0.7}, {iteration: 2, cost: 0.5}])") is None
    )
    screenshot(page, "job-page.png")

    # The model page: versions, and a prediction through the small form.
    page.evaluate("document.querySelector('#job-result a').click()")
    page.wait_for("document.querySelectorAll('#versions-table tbody tr').length === 2")
    set_field(page, "#predict-form textarea", "1.0, 1.0, 1.0\n-1, -1, -1")
    page.evaluate("document.querySelector('#predict-form button').click()")
    answer = page.wait_for("document.getElementById('predict-result').dataset.predictions")
    assert json.loads(answer) == [1, 0]
    assert "row 2: 0" in page.evaluate("document.getElementById('predict-result').textContent")
    screenshot(page, "model-page.png")

    # At 600 px wide nothing overflows the page sideways (wide tables scroll in place).
    page.call(
        "Emulation.setDeviceMetricsOverride",
        width=600,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    page.evaluate("location.hash = '#/'")
    page.wait_for("document.querySelectorAll('#jobs-table tbody tr').length === 2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 600
    narrow = screenshot(page, "overview-600px.png")
    with capsys.disabled():
        print(f"\ndashboard screenshots: {narrow.parent}")


def test_a_missing_job_or_model_shows_its_error_and_nothing_of_the_last_one(
    browser: DevTools, live_server: LiveServer
) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 100)
    X = rng.normal(size=(100, 2)) + np.where(y[:, None] == 1, 1.0, -1.0)
    with live_server.client() as client:
        dataset = client.post(
            "/datasets", json={"name": "blobs", "features": X.tolist(), "labels": y.tolist()}
        ).json()
        job_id = train_and_wait(client, dataset["id"], n_iterations=20)
        model_name = client.get(f"/jobs/{job_id}?max_points=2").json()["model_name"]
    page = browser
    page.call("Page.enable")
    page.call("Page.navigate", url=f"{live_server.url}/#/jobs/{job_id}")
    page.wait_for("document.readyState === 'complete' && typeof Chart === 'function'")
    page.wait_for("document.getElementById('job-status').textContent === 'succeeded'")
    page.wait_for("document.getElementById('job-timings').children.length > 0")

    # Reached from a loaded job, a job that does not exist shows the error alone: before,
    # the last job's status, result and details stayed on screen under the new id.
    page.evaluate("location.hash = '#/jobs/nonexistent'")
    message = page.wait_for(
        "!document.getElementById('message').hidden && "
        "document.getElementById('message').textContent"
    )
    assert "Could not load this job" in message and "does not exist" in message
    assert page.evaluate("document.getElementById('job-page').hidden")
    assert page.evaluate("document.getElementById('job-status').textContent") == ""
    assert page.evaluate("document.getElementById('job-timings').children.length") == 0

    # The same from a loaded model to a missing one.
    page.evaluate(f"location.hash = '#/models/{model_name}'")
    page.wait_for("document.querySelectorAll('#versions-table tbody tr').length === 1")
    page.evaluate("location.hash = '#/models/no-such-model'")
    message = page.wait_for(
        "!document.getElementById('message').hidden && "
        "document.getElementById('message').textContent"
    )
    assert "Could not load this model" in message
    assert page.evaluate("document.getElementById('model-page').hidden")
    assert page.evaluate("document.querySelectorAll('#versions-table tbody tr').length") == 0

    # And back to the job: shown in full again.
    page.evaluate(f"location.hash = '#/jobs/{job_id}'")
    page.wait_for("document.getElementById('job-status').textContent === 'succeeded'")
    assert not page.evaluate("document.getElementById('job-page').hidden")
    assert page.evaluate("document.getElementById('message').hidden")
