"""Configured limits answer with their status codes; Idempotency-Key replays the first response."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for
from live_server import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    folder: Path = tmp_path_factory.mktemp("limited")
    with (
        LiveServer.in_folder(
            folder,
            workers=1,
            DNN_MAX_ACTIVE_JOBS_PER_TENANT="2",
            DNN_JOB_TIME_LIMIT_SECONDS="1",
            DNN_MAX_PREDICT_ROWS="5",
            DNN_MAX_DATASET_CELLS="1000",
            DNN_MAX_BODY_BYTES="200000",
        ) as server,
        server.client() as http,
    ):
        yield http


def test_dataset_cells_and_body_size(limited: httpx.Client) -> None:
    too_many_cells = {"name": "big", "features": [[1.0] * 10] * 101, "labels": [0, 1] * 50 + [0]}
    assert limited.post("/datasets", json=too_many_cells).status_code == 413
    huge = {"name": "huge", "features": [[1.0]] * 30_000, "labels": [0, 1] * 15_000}
    response = limited.post("/datasets", json=huge)
    assert response.status_code == 413
    assert "200000 bytes" in response.json()["error"]["message"]


def test_active_jobs_per_tenant_time_limit_and_predict_rows(limited: httpx.Client) -> None:
    dataset = limited.post("/datasets", json=blobs(50)).json()["id"]
    first = submit(limited, dataset, n_iterations=1_000_000)
    second = submit(limited, dataset, n_iterations=1_000_000)
    refused = limited.post("/train", json={"dataset_id": dataset})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.json()["error"]["code"] == "too_many_requests"

    for job_id in (first, second):
        job = wait_for(limited, job_id, TERMINAL, timeout=30)
        assert job["status"] == "failed"
        assert "time limit of 1 s" in job["error"]
        assert job["history"], "the curve up to the limit is kept"

    quick = wait_for(limited, submit(limited, dataset, n_iterations=5), TERMINAL)
    rows = {"model_id": quick["model_id"], "instances": [[0.0] * 4] * 6}
    assert limited.post("/predict", json=rows).status_code == 413
    rows["instances"] = rows["instances"][:5]
    assert limited.post("/predict", json=rows).status_code == 200


def test_idempotent_train_and_upload(limited: httpx.Client) -> None:
    body = blobs(20)
    headers = {"Idempotency-Key": "upload-1"}
    first = limited.post("/datasets", json=body, headers=headers)
    again = limited.post("/datasets", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    names = [d["id"] for d in limited.get("/datasets").json()["items"]]
    assert names.count(first.json()["id"]) == 1
    changed = limited.post("/datasets", json={**body, "name": "other"}, headers=headers)
    assert changed.status_code == 409

    upload = {"file": ("d.csv", b"a,b\n1,0\n2,1\n")}
    csv_first = limited.post("/datasets", files=upload, headers={"Idempotency-Key": "csv-1"})
    csv_again = limited.post("/datasets", files=upload, headers={"Idempotency-Key": "csv-1"})
    assert csv_first.status_code == 201 and csv_again.json() == csv_first.json()

    train = {"dataset_id": first.json()["id"], "hyperparameters": {"n_iterations": 5}}
    job = limited.post("/train", json=train, headers={"Idempotency-Key": "train-1"})
    retry = limited.post("/train", json=train, headers={"Idempotency-Key": "train-1"})
    assert job.status_code == retry.status_code == 202
    assert job.json()["job_id"] == retry.json()["job_id"]
    assert retry.headers["location"] == f"/jobs/{job.json()['job_id']}"
    other = {**train, "hyperparameters": {"n_iterations": 6}}
    assert (
        limited.post("/train", json=other, headers={"Idempotency-Key": "train-1"}).status_code
        == 409
    )
    assert limited.post("/train", json=train, headers={"Idempotency-Key": ""}).status_code == 422
    wait_for(limited, job.json()["job_id"], TERMINAL)
    jobs = [j["id"] for j in limited.get("/jobs", params={"limit": 500}).json()["items"]]
    assert jobs.count(job.json()["job_id"]) == 1
