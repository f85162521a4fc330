"""The `dnn-service` client commands, run as subprocesses against a live server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import LiveServer

from app.cli_client import ascii_curve

pytestmark = pytest.mark.slow


def dnn_service(*args: str, url: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_csv(path: Path, X: np.ndarray, labels: list[str]) -> Path:
    lines = ["a,b,y"] + [f"{a:.6g},{b:.6g},{k}" for (a, b), k in zip(X, labels, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_train_watch_prints_model_id_then_jobs_and_predict(
    live_server: LiveServer, client: httpx.Client, tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2))
    labels = ["pos" if a + b > 0 else "neg" for a, b in X]
    data = write_csv(tmp_path / "blobs.csv", X, labels)

    run = dnn_service(
        "train", str(data), "--label-column", "y", "--hidden", "8,4", "--iterations", "300",
        "--learning-rate", "0.05", "--watch", url=live_server.url,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    model_id = run.stdout.strip().splitlines()[-1]
    model = client.get(f"/models/{model_id}")
    assert model.status_code == 200
    assert model.json()["architecture"]["layer_dims"] == [2, 8, 4, 1]
    assert "100%" in run.stderr and "cost" in run.stderr and "accuracy" in run.stderr
    assert "cost over 300 recorded iterations" in run.stderr

    jobs = dnn_service("jobs", url=live_server.url)
    assert jobs.returncode == 0, jobs.stderr
    assert "succeeded" in jobs.stdout and model_id in jobs.stdout

    for reference in (model_id, "blobs.csv"):
        predicted = dnn_service(
            "predict", reference, str(data), "--label-column", "y", url=live_server.url
        )
        assert predicted.returncode == 0, predicted.stderr
        expected = client.post("/predict", json={"model_id": model_id, "instances": X.tolist()})
        assert predicted.stdout.split() == expected.json()["predictions"]


def test_failing_job_and_refused_request_exit_non_zero(
    live_server: LiveServer, tmp_path: Path
) -> None:
    rng = np.random.default_rng(4)
    # Regression on raw features in the thousands, plain gradient descent at the largest
    # allowed rate: the cost overflows within a few iterations and the job fails.
    X = rng.normal(size=(60, 2)) * 5000
    targets = [f"{0.37 * a + 1000.5:.3f}" for a, _ in X]
    data = write_csv(tmp_path / "big.csv", X, targets)

    diverging = dnn_service(
        "train", str(data), "--optimizer", "gd", "--learning-rate", "100", "--no-standardize",
        "--iterations", "200", "--watch", url=live_server.url,
    )  # fmt: skip
    assert diverging.returncode == 1, diverging.stderr
    assert "failed: training diverged" in diverging.stderr
    assert diverging.stdout.strip() == ""

    refused = dnn_service("train", str(data), "--learning-rate", "1e6", url=live_server.url)
    assert refused.returncode == 4
    assert "learning_rate" in refused.stderr

    unreachable = dnn_service("jobs", url="http://127.0.0.1:9")
    assert unreachable.returncode == 4 and "cannot reach" in unreachable.stderr


def test_ascii_curve_draws_one_mark_per_column() -> None:
    drawing = ascii_curve([5.0, 4.0, 3.0, 2.0, 1.0], "cost", width=5, height=5).splitlines()
    assert drawing[0] == "cost over 5 recorded iterations"
    rows = [line.split("|", 1)[1] for line in drawing[1:6]]
    assert rows == ["*    ", " *   ", "  *  ", "   * ", "    *"]
