"""The `dnn-service` client commands, run as subprocesses (stdout and stderr are pipes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import LiveServer

from app.cli_options import choices

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


@pytest.fixture(scope="module")
def blobs_csv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 2))
    labels = ["pos" if a + b > 0 else "neg" for a, b in X]
    return write_csv(tmp_path_factory.mktemp("data") / "blobs.csv", X, labels), X


def test_train_watch_prints_model_id_then_every_listing(
    shared_client: httpx.Client, blobs_csv: tuple[Path, np.ndarray]
) -> None:
    url = str(shared_client.base_url)
    data, X = blobs_csv
    run = dnn_service(
        "train", str(data), "--label-column", "y", "--hidden", "8,4", "--iterations", "300",
        "--learning-rate", "0.05", "--validation-fraction", "0.25", "--watch", url=url,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    model_id = run.stdout.strip().splitlines()[-1]
    model = shared_client.get(f"/models/{model_id}").json()
    assert model["architecture"]["layer_dims"] == [2, 8, 4, 1]
    # Not a terminal: plain progress lines with the latest train and validation metrics.
    progress = [line for line in run.stderr.splitlines() if " iter " in line]
    assert progress[-1].startswith("succeeded 100% iter 300/300")
    assert "train cost" in progress[-1] and "val cost" in progress[-1] and "eta" in progress[-1]
    assert "cost (log scale): ▚ train  • validation" in run.stderr
    assert "\x1b[" not in run.stderr  # no colour codes into a pipe

    jobs = dnn_service("jobs", url=url)
    assert jobs.returncode == 0 and "succeeded" in jobs.stdout
    listed = json.loads(dnn_service("jobs", "--output", "json", url=url).stdout)
    job = next(j for j in listed if j["model_id"] == model_id)
    assert job["status"] == "succeeded"
    models = json.loads(dnn_service("models", "-o", "json", url=url).stdout)
    assert model_id in [m["id"] for m in models]
    assert model_id in dnn_service("models", url=url).stdout
    datasets = json.loads(dnn_service("datasets", "-o", "json", url=url).stdout)
    assert "blobs.csv" in [d["name"] for d in datasets]

    shown = dnn_service("show", job["id"], url=url)
    assert shown.returncode == 0 and model_id in shown.stdout and "val_cost" in shown.stdout
    assert "accuracy: ▚ train  • validation" in shown.stdout
    assert json.loads(dnn_service("show", model_id, "-o", "json", url=url).stdout) == model
    assert dnn_service("show", "0" * 32, url=url).returncode == 4

    for reference in (model_id, "blobs.csv"):
        predicted = dnn_service("predict", reference, str(data), "--label-column", "y", url=url)
        assert predicted.returncode == 0, predicted.stderr
        expected = shared_client.post(
            "/predict", json={"model_id": model_id, "instances": X.tolist()}
        ).json()
        assert predicted.stdout.split() == expected["predictions"]
    proba = dnn_service("predict", model_id, str(data), "--label-column", "y", "--proba", url=url)
    header, *rows = proba.stdout.splitlines()
    assert header.split("\t") == ["prediction", "p(neg)", "p(pos)"]
    first = rows[0].split("\t")
    assert first[0] == expected["predictions"][0]
    assert [float(p) for p in first[1:]] == pytest.approx(expected["probabilities"][0], abs=1e-6)


def test_reuse_a_dataset_with_every_hyperparameter_flag(
    shared_client: httpx.Client, blobs_csv: tuple[Path, np.ndarray]
) -> None:
    url = str(shared_client.base_url)
    data, _ = blobs_csv
    uploaded = shared_client.post(
        "/datasets", files={"file": ("b.csv", data.read_bytes())}, data={"label_column": "y"}
    ).json()
    run = dnn_service(
        "train", "--dataset", uploaded["id"], "--iterations", "40", "--batch-size", "16",
        "--l2", "0.001", "--lr-decay", "step", "--decay-rate", "0.9", "--decay-steps", "10",
        "--validation-fraction", "0.2", "--early-stopping", "5", "--min-delta", "0.0001",
        "--optimizer", "momentum", "--momentum", "0.8", "--init", "xavier", "--dtype", "float64",
        "--record-every", "2", "--output", "json", url=url,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    accepted = json.loads(run.stdout)
    assert accepted["dataset_id"] == uploaded["id"] and accepted["id"] == accepted["job_id"]
    job = shared_client.get(f"/jobs/{accepted['id']}").json()
    hyperparameters = job["hyperparameters"]
    assert hyperparameters["batch_size"] == 16 and hyperparameters["l2"] == 0.001
    assert hyperparameters["lr_decay"] == "step" and hyperparameters["decay_steps"] == 10
    assert hyperparameters["early_stopping"] == {
        "patience": 5,
        "min_delta": 0.0001,
        "restore_best": True,
    }
    assert hyperparameters["momentum"] == 0.8 and hyperparameters["dtype"] == "float64"

    watched = dnn_service("watch", accepted["id"], "--no-curves", url=url)
    assert watched.returncode == 0, watched.stderr
    assert watched.stdout.strip() == shared_client.get(f"/jobs/{accepted['id']}").json()["model_id"]
    assert "cost (log scale)" not in watched.stderr

    both = dnn_service("train", str(data), "--dataset", uploaded["id"], url=url)
    assert both.returncode == 2 and "one of them" in both.stderr
    assert dnn_service("train", url=url).returncode == 2


def test_cancel_a_running_job(shared_client: httpx.Client) -> None:
    url = str(shared_client.base_url)
    dataset = shared_client.post(
        "/datasets", json={"name": "xor", "features": [[0, 0], [0, 1], [1, 0], [1, 1]],
                           "labels": [0, 1, 1, 0]},
    ).json()  # fmt: skip
    job_id = dnn_service("train", "--dataset", dataset["id"], "--iterations", "1000000", url=url)
    job_id_text = job_id.stdout.strip()
    cancelled = dnn_service("cancel", job_id_text, url=url)
    assert cancelled.returncode == 0 and job_id_text in cancelled.stdout
    assert "cancel" in cancelled.stdout
    watched = dnn_service("watch", job_id_text, "--no-curves", url=url)
    assert watched.returncode == 3 and "was cancelled" in watched.stderr
    again = dnn_service("cancel", job_id_text, "-o", "json", url=url)
    assert again.returncode == 4 and "HTTP 409" in again.stderr


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


def test_choices_come_from_the_api_schema() -> None:
    assert choices("optimizer") == ["gd", "momentum", "nesterov", "adam"]
    assert "inverse_time" in choices("lr_decay")
