"""The user's path through a real server: upload a CSV, train, watch the curve grow, predict."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
from job_helpers import wait_for

pytestmark = pytest.mark.slow


def two_blobs_csv(n: int = 200, seed: int = 0) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 3)) + np.where(y[:, None] == 1, 1.5, -1.5)
    labels = np.where(y == 1, "spam", "ham")
    lines = ["f1,f2,f3,kind"] + [
        f"{a:.5f},{b:.5f},{c:.5f},{k}" for (a, b, c), k in zip(X, labels, strict=True)
    ]
    return ("\n".join(lines) + "\n").encode(), X, labels


def test_upload_train_watch_predict(client: httpx.Client) -> None:
    data, X, labels = two_blobs_csv()
    upload = client.post(
        "/datasets", files={"file": ("blobs.csv", data, "text/csv")}, data={"label_column": "kind"}
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    assert (dataset["n_samples"], dataset["n_features"], dataset["task"]) == (200, 3, "binary")
    assert dataset["classes"] == ["ham", "spam"]

    hyperparameters = {
        "hidden_layers": [8, 4],
        "n_iterations": 3000,
        "learning_rate": 0.05,
        "optimizer": "gd",
    }
    submitted = client.post(
        "/train", json={"dataset_id": dataset["id"], "hyperparameters": hyperparameters}
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    assert submitted.headers["location"] == f"/jobs/{job_id}"

    # While it runs, the curve grows and ?since returns only the new points.
    seen: list[int] = []
    since = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = client.get(f"/jobs/{job_id}/history", params={"since": since}).json()
        iterations = [point["iteration"] for point in page["points"]]
        assert all(i > since for i in iterations)
        seen += iterations
        since = iterations[-1] if iterations else since
        if page["status"] == "succeeded" and since == 3000:
            break
        time.sleep(0.02)
    assert seen == list(range(1, 3001)), "every point once, in order"

    job = wait_for(client, job_id, {"succeeded"})
    assert job["progress"] == 1.0 and job["error"] is None
    # 3,000 points: more than GET /jobs/{id} returns by default, so a thinned view of them.
    assert job["points_total"] == 3000 and job["thinned"]
    assert len(job["history"]) <= 2000
    assert job["history"][0]["iteration"] == 1
    final = job["history"][-1]
    assert final["iteration"] == 3000
    assert final["cost"] < job["history"][0]["cost"]

    model = client.get(f"/models/{job['model_id']}").json()
    assert model["architecture"]["layer_dims"] == [3, 8, 4, 1]
    assert len(model["sha256"]) == 64

    predicted = client.post("/predict", json={"model_id": job["model_id"], "instances": X.tolist()})
    assert predicted.status_code == 200, predicted.text
    body = predicted.json()
    accuracy = float(np.mean(np.asarray(body["predictions"]) == labels))
    # The last recorded point is measured before the last update, so allow one step of drift.
    assert abs(accuracy - final["accuracy"]) <= 0.02
    assert accuracy > 0.9
    probabilities = np.asarray(body["probabilities"])
    assert probabilities.shape == (200, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)

    weights = client.get(f"/models/{job['model_id']}/weights")
    assert weights.status_code == 200
    assert weights.headers["x-content-sha256"] == model["sha256"]
