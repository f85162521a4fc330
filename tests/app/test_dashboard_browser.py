"""The dashboard in real headless Chromium: upload a CSV, start training, watch the chart grow.

Chromium is driven over the Chrome DevTools Protocol (its --remote-debugging-port websocket).
Outside CI the test skips when Chromium is not installed; with CI=true it fails instead, so
the browser check can never silently vanish from the pipeline (scripts/install-test-tools).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import websocket
from live_server import LiveServer

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to its profile
    "--window-size=1280,1100",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed (scripts/install-test-tools installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


class DevTools:
    """Just enough CDP: numbered calls on one page target; events are read and ignored."""

    def __init__(self, websocket_url: str) -> None:
        # Chromium refuses websocket clients that send an Origin it does not allow.
        self._ws = websocket.create_connection(websocket_url, timeout=30, suppress_origin=True)
        self._next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(
        self, expression: str, until: Callable[[Any], bool] = bool, timeout: float = 60.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if until(value):
                return value
            time.sleep(0.05)
        raise AssertionError(f"{expression!r} never satisfied the condition; last: {value!r}")

    def close(self) -> None:
        self._ws.close()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "chromium.log").open("wb"),
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert process.poll() is None, (tmp_path / "chromium.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "chromium did not open its debugging port"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(target for target in targets if target["type"] == "page")
        devtools = DevTools(page["webSocketDebuggerUrl"])
        yield devtools
        devtools.close()
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


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
    page.wait_for(f"document.querySelector('#jobs-table').textContent.includes('{job_id}')")

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
