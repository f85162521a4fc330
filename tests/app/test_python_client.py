"""app.client against a live server: every resource, NumPy in and out, retries, the event stream."""

from __future__ import annotations

import hashlib
import json
import struct
import threading
from email.utils import formatdate
from pathlib import Path
from time import time

import httpx
import numpy as np
import pytest
from job_helpers import TERMINAL, blobs, wait_for
from live_server import LiveServer

from app.client import Client, ClientError, retry_after_seconds

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api(shared_client: httpx.Client) -> Client:
    return Client(str(shared_client.base_url), retries=3, max_retry_wait=2.0)


def digits(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three classes of 8x8 'images': a bright row in one of three places, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.normal(scale=0.1, size=(n, 8, 8))
    X[np.arange(n), 1 + 3 * y, :] += 1.0
    return X, y


def test_arrays_in_and_out_and_every_resource(api: Client, tmp_path: Path) -> None:
    X, y = digits()
    dataset = api.upload_arrays(X, y, name="rows")
    assert dataset["input_shape"] == [8, 8] and dataset["n_samples"] == 60
    assert dataset["id"] in [d["id"] for d in api.list_datasets()]
    assert api.get_dataset(dataset["id"])["task"] == "multiclass"

    accepted = api.train(dataset["id"], {"hidden_layers": [8], "n_iterations": 60}, name="rows")
    assert accepted["id"] == accepted["job_id"]
    job = api.wait(accepted["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert accepted["id"] in [j["id"] for j in api.list_jobs(status="succeeded")]
    assert api.curve(accepted["id"], "svg").lstrip().startswith(b"<?xml")
    assert api.curve(accepted["id"], "png").startswith(b"\x89PNG")

    model_id = job["model_id"]
    assert api.get_model(model_id)["architecture"]["input_shape"] == [8, 8]
    assert [m["id"] for m in api.list_models(name="rows")] == [model_id]
    probabilities = api.predict_proba(model_id, X)
    assert probabilities.shape == (60, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    labels = api.predict_labels("rows", X[:5])  # by name: the latest version
    assert labels.tolist() == np.argmax(probabilities[:5], axis=1).tolist()
    assert api.predict(model_id, X[0].ravel())["predictions"] == labels[:1].tolist()  # one flat row

    weights = api.download_weights(model_id, tmp_path / "rows.safetensors")
    assert (tmp_path / "rows.safetensors").read_bytes() == weights
    assert hashlib.sha256(weights).hexdigest() == api.get_model(model_id)["sha256"]
    (header_length,) = struct.unpack("<Q", weights[:8])
    assert "__metadata__" in json.loads(weights[8 : 8 + header_length])

    with pytest.raises(ClientError) as in_use:
        api.delete_dataset("0" * 32)
    assert in_use.value.status == 404
    api.delete_model(model_id)
    with pytest.raises(ClientError) as gone:
        api.get_model(model_id)
    assert gone.value.status == 404 and gone.value.code == "not_found"
    api.delete_dataset(dataset["id"])
    assert dataset["id"] not in [d["id"] for d in api.list_datasets()]


def test_every_post_carries_an_idempotency_key(api: Client) -> None:
    keys: list[str | None] = []

    def record(request: httpx.Request) -> None:
        if request.method == "POST":
            keys.append(request.headers.get("idempotency-key"))

    with Client(api.url) as recording:
        recording._http.event_hooks["request"].append(record)
        dataset = recording._json("POST", "/datasets", json=blobs())
        recording.train(dataset["id"], {"n_iterations": 2})
    assert len(keys) == 2 and all(keys) and keys[0] != keys[1]
    # The same key again replays the first answer instead of creating a second dataset.
    replay = api._json("POST", "/datasets", json=blobs(), headers={"Idempotency-Key": "k-1"})
    again = api._json("POST", "/datasets", json=blobs(), headers={"Idempotency-Key": "k-1"})
    assert replay["id"] == again["id"]


def test_watch_follows_the_event_stream(api: Client) -> None:
    dataset = api._json("POST", "/datasets", json=blobs(n=200))
    body = {"n_iterations": 300, "validation_fraction": 0.25}
    job_id = api.train(dataset["id"], body)["id"]
    updates = list(api.watch(job_id))
    iterations = [p["iteration"] for u in updates for p in u.points]
    assert iterations == list(range(1, 301))  # every point exactly once, in order
    assert all("val_cost" in p for u in updates for p in u.points)
    final = updates[-1]
    assert final.done and final.job["status"] == "succeeded" and final.job["model_id"]
    assert not any(u.done for u in updates[:-1])
    # Resuming after iteration 250 sends only the points after it.
    resumed = [p["iteration"] for u in api.watch(job_id, since=250) for p in u.points]
    assert resumed == list(range(251, 301))


def test_unknown_job_is_a_clear_error(api: Client) -> None:
    with pytest.raises(ClientError) as unknown:
        list(api.watch("0" * 32))
    assert unknown.value.status == 404


def test_retry_after_is_honoured_on_429(tmp_path: Path) -> None:
    with LiveServer.in_folder(tmp_path, workers=1, DNN_MAX_ACTIVE_JOBS_PER_TENANT="1") as server:
        with Client(server.url, retries=20, max_retry_wait=0.5) as api:
            dataset = api._json("POST", "/datasets", json=blobs())
            busy = api.train(dataset["id"], {"n_iterations": 1_000_000})["id"]
            with server.client() as http:
                wait_for(http, busy, {"running"})
                refused = http.post("/train", json={"dataset_id": dataset["id"]})
                assert refused.status_code == 429 and refused.headers["retry-after"]
                # The slot frees while the client waits and retries.
                threading.Timer(1.0, lambda: http.post(f"/jobs/{busy}/cancel")).start()
                second = api.train(dataset["id"], {"n_iterations": 2})
                assert wait_for(http, second["id"], TERMINAL)["status"] == "succeeded"
        with Client(server.url, retries=0) as impatient:
            blocker = impatient.train(dataset["id"], {"n_iterations": 1_000_000})["id"]
            with pytest.raises(ClientError) as limited:
                impatient.train(dataset["id"], {"n_iterations": 2})
            assert limited.value.status == 429
            impatient.cancel(blocker)


def test_retry_after_forms() -> None:
    assert retry_after_seconds("7", 1.0) == 7.0
    assert retry_after_seconds(None, 1.5) == 1.5
    assert retry_after_seconds("soon", 2.0) == 2.0
    in_ten = retry_after_seconds(formatdate(time() + 10, usegmt=True), 0.0)
    assert 5.0 < in_ten <= 10.0


def test_unreachable_server_is_status_zero() -> None:
    with (
        Client("http://127.0.0.1:9", retries=1, max_retry_wait=0.1) as api,
        pytest.raises(ClientError) as unreachable,
    ):
        api.list_jobs()
    assert unreachable.value.status == 0 and "cannot reach" in str(unreachable.value)
