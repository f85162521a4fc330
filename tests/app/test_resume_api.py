"""POST /train with resume_from (a model) and resume_from_job (a stopped job), on a real server."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for, wait_for_history

from core import Network

pytestmark = pytest.mark.slow

BASE = {
    "hidden_layers": [8, 4],
    "optimizer": "adam",
    "learning_rate": 0.005,
    "batch_size": 16,
    "validation_fraction": 0.2,
    "record_every": 1,
    "seed": 7,
}


@pytest.fixture(scope="module")
def dataset_id(shared_client: httpx.Client) -> str:
    response = shared_client.post("/datasets", json=blobs(n=200))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def train(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/train", json=body)
    assert response.status_code == 202, response.text
    job = wait_for(client, response.json()["job_id"], TERMINAL)
    assert job["status"] == "succeeded", job
    return job


def weights(client: httpx.Client, model_id: str) -> Network:
    response = client.get(f"/models/{model_id}/weights")
    assert response.status_code == 200
    return Network.from_bytes(response.content)


def assert_same_curve(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> None:
    assert [p["iteration"] for p in a] == [p["iteration"] for p in b]
    for p, q in zip(a, b, strict=True):
        assert p == pytest.approx(q, rel=1e-6, abs=1e-9)


def test_continuing_a_model_equals_training_it_straight(
    shared_client: httpx.Client, dataset_id: str
) -> None:
    client = shared_client
    first = train(
        client,
        {"dataset_id": dataset_id, "name": "cont", "hyperparameters": BASE | {"n_iterations": 60}},
    )
    parent = client.get(f"/models/{first['model_id']}").json()
    # Left out: every hyperparameter but n_iterations, so the parent's (not the defaults).
    more = train(client, {"resume_from": parent["id"], "hyperparameters": {"n_iterations": 60}})
    straight = train(
        client,
        {"dataset_id": dataset_id, "name": "flat", "hyperparameters": BASE | {"n_iterations": 120}},
    )

    assert more["hyperparameters"]["learning_rate"] == 0.005
    assert more["hyperparameters"]["batch_size"] == 16
    assert (more["start_iteration"], more["parent_model_id"]) == (60, parent["id"])
    assert more["dataset_id"] == dataset_id and more["progress"] == 1.0
    assert [p["iteration"] for p in more["history"]] == list(range(61, 121))
    assert_same_curve(first["history"] + more["history"], straight["history"])

    child = client.get(f"/models/{more['model_id']}").json()
    assert (child["name"], child["version"]) == ("cont", parent["version"] + 1)
    assert child["parent_model_id"] == parent["id"]
    assert child["metrics"]["iteration"] == 120
    assert child["metrics"]["n_iterations_run"] == 60
    net, reference = weights(client, child["id"]), weights(client, straight["model_id"])
    for p, q in zip(net.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p, q, rtol=0, atol=1e-6)


def test_an_early_stopped_model_reports_and_continues_from_the_weights_it_holds(
    shared_client: httpx.Client, dataset_id: str
) -> None:
    client = shared_client
    hyperparameters = BASE | {
        "optimizer": "momentum",
        "learning_rate": 0.5,
        "batch_size": None,
        "n_iterations": 500,
        # An improvement must exceed min_delta, so patience surely runs out before 500.
        "early_stopping": {"patience": 2, "min_delta": 0.01},
    }
    job = train(client, {"dataset_id": dataset_id, "hyperparameters": hyperparameters})
    model = client.get(f"/models/{job['model_id']}").json()
    metrics = model["metrics"]
    assert metrics["stopped_early"], metrics
    assert metrics["iteration"] == metrics["best_iteration"] < job["history"][-1]["iteration"]
    [held] = [p for p in job["history"] if p["iteration"] == metrics["iteration"]]
    assert {key: metrics[key] for key in held} == held

    # Full batch: the kept weights are those before the best iteration's update, so the
    # continued run measures that iteration again, with the same result.
    more = train(client, {"resume_from": model["id"], "hyperparameters": {"n_iterations": 5}})
    assert more["start_iteration"] == metrics["iteration"] - 1
    assert more["history"][0] == pytest.approx(held, rel=1e-6)


def test_what_may_change_and_what_may_not(shared_client: httpx.Client, dataset_id: str) -> None:
    client = shared_client
    job = train(client, {"dataset_id": dataset_id, "hyperparameters": BASE | {"n_iterations": 20}})
    model_id = job["model_id"]

    def resume(**body: Any) -> httpx.Response:
        return client.post("/train", json={"resume_from": model_id, **body})

    for change in ({"hidden_layers": [8, 5]}, {"activation": "tanh"}, {"task": "regression"}):
        refused = resume(hyperparameters=change)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "invalid_input"
        assert next(iter(change)) in refused.json()["error"]["message"]
    # Nothing sent: the parent's hyperparameters, dataset and name make a valid request.
    assert resume().status_code == 202

    other_shape = blobs(n=50) | {"features": [[1.0, 2.0, 3.0]] * 25 + [[3.0, 2.0, 1.0]] * 25}
    other_shape["labels"] = [0] * 25 + [1] * 25
    three = client.post("/datasets", json=other_shape).json()["id"]
    refused = resume(dataset_id=three)
    assert refused.status_code == 422 and "features" in refused.text

    assert resume(hyperparameters={"n_iterations": 5}, dataset_id="nope").status_code == 404
    assert client.post("/train", json={"resume_from": "nope"}).status_code == 404
    both = client.post("/train", json={"resume_from": model_id, "resume_from_job": job["id"]})
    assert both.status_code == 422

    # Fine-tuning on other rows with the same features, with another optimizer.
    fresh = client.post("/datasets", json=blobs(n=80, seed=3)).json()["id"]
    tuned = train(
        client,
        {
            "resume_from": model_id,
            "dataset_id": fresh,
            "hyperparameters": {"n_iterations": 10, "optimizer": "gd", "learning_rate": 0.1},
        },
    )
    assert [p["iteration"] for p in tuned["history"]] == list(range(21, 31))
    assert tuned["hyperparameters"]["optimizer"] == "gd"
    before, after = weights(client, model_id), weights(client, tuned["model_id"])
    # The standardization is the parent's, not refitted on the new rows.
    np.testing.assert_array_equal(after.feature_mean, before.feature_mean)  # type: ignore[arg-type]


def test_a_cancelled_job_continues_where_it_stopped(
    shared_client: httpx.Client, dataset_id: str
) -> None:
    client = shared_client
    job_id = submit(client, dataset_id, **(BASE | {"n_iterations": 1_000_000}))
    wait_for_history(client, job_id, 20)
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
    cancelled = wait_for(client, job_id, TERMINAL)
    assert cancelled["status"] == "cancelled"
    stopped_at = cancelled["history"][-1]["iteration"]

    more = train(client, {"resume_from_job": job_id, "hyperparameters": {"n_iterations": 15}})
    assert more["parent_job_id"] == job_id and more["start_iteration"] == stopped_at
    assert [p["iteration"] for p in more["history"]] == list(range(stopped_at + 1, stopped_at + 16))
    assert more["hyperparameters"]["learning_rate"] == 0.005

    refused = client.post("/train", json={"resume_from_job": more["id"]})
    assert refused.status_code == 409 and "resume_from" in refused.json()["error"]["message"]
