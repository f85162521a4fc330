"""A dataset holding values beyond the training dtype's range is refused at POST /train (422),
whatever form it was uploaded in, instead of a 202 and a job the worker then fails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import update

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Dataset
from app.errors import InvalidInput
from app.jobs.local import LocalWorkerPool
from app.jobs.submit import submit_and_dispatch
from app.schemas.jobs import TrainRequest
from app.settings import Settings
from app.store import datasets

pytestmark = pytest.mark.slow
FLOAT32_MAX = "±3.40282e+38"
FEATURES = [[0.0, 1.0], [1.0, 1e39], [2.0, 0.5], [3.0, 0.25]]
LABELS = [0, 1, 0, 1]


def npz_upload(X: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    return {"files": {"file": ("data.npz", buffer.getvalue(), "application/octet-stream")}}


def upload(http: httpx.Client, **request: Any) -> str:
    response = http.post("/datasets", params={"dedupe": "false"}, **request)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def train(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post("/train", json={"hyperparameters": {"n_iterations": 2}, **body})


def assert_refused_for_float32(response: httpx.Response, where: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert where in error["message"] and FLOAT32_MAX in error["message"], error["message"]
    assert "float32" in error["message"] and "float64" in error["message"]
    assert error["details"][0]["loc"][-1] == "dtype"  # under "trials" for a sweep


CSV = b"big,small,label\n0,1,0\n1e39,1,1\n2,0.5,0\n3,0.25,1\n"
UPLOADS: dict[str, dict[str, Any]] = {
    "json": {"json": {"name": "big", "features": FEATURES, "labels": LABELS}},
    "csv": {"files": {"file": ("big.csv", CSV, "text/csv")}, "data": {"label_column": "label"}},
    "npz": npz_upload(np.array(FEATURES), np.array(LABELS)),
}
WHERE = {"json": "feature 1 (0-based) of sample 1", "csv": "feature 0 (0-based) of sample 1"}


@pytest.mark.parametrize("form", sorted(UPLOADS))
def test_each_upload_form_is_refused_at_submission_for_float32_only(
    shared_client: httpx.Client, form: str
) -> None:
    dataset = upload(shared_client, **UPLOADS[form])
    where = WHERE.get(form, WHERE["json"])
    assert_refused_for_float32(train(shared_client, {"dataset_id": dataset}), where)
    float64 = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 2, "dtype": "float64"}}
    accepted = shared_client.post("/train", json=float64)
    assert accepted.status_code == 202, accepted.text


def test_an_inline_dataset_is_refused(shared_client: httpx.Client) -> None:
    inline = {"dataset": {"features": FEATURES, "labels": LABELS}}
    assert_refused_for_float32(train(shared_client, inline), WHERE["json"])


def test_a_sweep_over_such_a_dataset_is_refused(shared_client: httpx.Client) -> None:
    dataset = upload(shared_client, **UPLOADS["json"])
    response = shared_client.post("/sweeps", json={"dataset_id": dataset, "grid": {"seed": [1]}})
    assert_refused_for_float32(response, WHERE["json"])


def test_a_regression_target_beyond_float32_is_refused(shared_client: httpx.Client) -> None:
    X = np.arange(8.0).reshape(4, 2)
    y = np.array([[0.5, 1.0], [0.5, 2.0], [0.5, -3e39], [0.5, 4.0]])
    dataset = upload(shared_client, **npz_upload(X, y))
    response = train(shared_client, {"dataset_id": dataset})
    assert_refused_for_float32(response, "regression target (output 1) of sample 2 is -3e+39")


def test_values_within_float32_and_class_labels_are_not_refused(
    shared_client: httpx.Client,
) -> None:
    # The largest float32 itself fits; a class label's value is never cast (it becomes an index).
    features = [[0.0], [3.4028234663852886e38], [-3.4028234663852886e38], [1.0]]
    json_body = {"name": "edge", "features": features, "labels": [0, 2**62, 0, 2**62]}
    response = train(shared_client, {"dataset_id": upload(shared_client, json=json_body)})
    assert response.status_code == 202, response.text


def test_float16_is_not_a_training_dtype(shared_client: httpx.Client) -> None:
    dataset = upload(shared_client, **UPLOADS["json"])
    response = shared_client.post(
        "/train", json={"dataset_id": dataset, "hyperparameters": {"dtype": "float16"}}
    )
    assert response.status_code == 422, response.text


def test_a_dataset_stored_before_its_magnitude_was_recorded_is_checked_from_its_data(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'legacy.db'}"
    upgrade_to_head(url)
    settings = Settings(database_url=url, workers=0)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with transaction(factory) as session:
        stored = datasets.create_dataset(
            session,
            tenant_id="t",
            name="old",
            X=np.array(FEATURES),
            y=np.array(LABELS),
            task="binary",
            classes=[0, 1],
        )
        dataset_id = stored.id
        session.execute(update(Dataset).values(max_abs_value=None))
    by_id = TrainRequest.model_validate({"dataset_id": dataset_id})
    with factory() as session, pytest.raises(InvalidInput, match="sample 1 is 1e\\+39"):
        submit_and_dispatch(
            session,
            LocalWorkerPool(settings, 0),
            "t",
            by_id,
            settings,
            idempotency_key=None,
            digest="d2",
        )
    engine.dispose()
