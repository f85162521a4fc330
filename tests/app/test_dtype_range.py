"""A dataset holding values beyond the training dtype's range is refused at POST /train (422),
whatever form it was uploaded in, instead of a 202 and a job the worker then fails."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import TERMINAL, wait_for
from sqlalchemy import update

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Dataset
from app.errors import InvalidInput
from app.jobs.local import LocalWorkerPool
from app.jobs.submit import check_standardization_fits, submit_and_dispatch
from app.schemas.jobs import Hyperparameters, TrainRequest
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


# Every value fits float32, but the mean of the first feature is -1.13e38 and its first sample
# sits 4.5e38 from it: the worker's float32 ``X - mean`` was infinite.
SPREAD = [[3.4e38, 1.0], [-3.4e38, 2.0], [-3.4e38, 3.0], [0.0, 4.0]]
SPREAD_LABELS = [0, 1, 0, 1]


def assert_refused_to_standardize(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    message = error["message"]
    assert "feature 0 (0-based)" in message and "standardize in float32" in message, message
    assert '"float64"' in message and "standardize false" in message, message
    assert error["details"][0]["loc"][-1] == "dtype"


def test_a_spread_beyond_float32_is_refused_at_submission(shared_client: httpx.Client) -> None:
    body = {"name": "spread", "features": SPREAD, "labels": SPREAD_LABELS}
    dataset = upload(shared_client, json=body)
    assert_refused_to_standardize(train(shared_client, {"dataset_id": dataset}))
    sweep = shared_client.post("/sweeps", json={"dataset_id": dataset, "grid": {"seed": [1]}})
    assert_refused_to_standardize(sweep)
    # The same data trains in float64; unstandardized it is the client's choice (accepted).
    as_float64 = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 2, "dtype": "float64"}}
    accepted = shared_client.post("/train", json=as_float64)
    assert accepted.status_code == 202, accepted.text
    assert wait_for(shared_client, accepted.json()["id"], TERMINAL)["status"] == "succeeded"
    raw = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 2, "standardize": False}}
    assert shared_client.post("/train", json=raw).status_code == 202


def test_the_check_follows_the_training_split(shared_client: httpx.Client) -> None:
    # Rows 0 and 1 alone standardize to ±1; the verdict depends on which rows the seed puts in
    # training, so the check draws the worker's split rather than guessing from the whole set.
    features = [[3.4e38], [-3.4e38], [-3.4e38], [-3.4e38]]
    dataset = upload(shared_client, json={"name": "split", "features": features, "labels": LABELS})
    outcomes = {}
    for seed in range(6):
        hp = {"n_iterations": 2, "validation_fraction": 0.5, "seed": seed}
        response = shared_client.post("/train", json={"dataset_id": dataset, "hyperparameters": hp})
        assert response.status_code in (202, 422), response.text
        if response.status_code == 202:
            job = wait_for(shared_client, response.json()["id"], TERMINAL)
            outcomes[seed] = job["status"]
        else:
            outcomes[seed] = "refused"
    assert "failed" not in outcomes.values(), outcomes
    assert {"succeeded", "refused"} <= set(outcomes.values()), outcomes


def test_a_dataset_far_below_the_bound_is_not_read(tmp_path: Path) -> None:
    # The common case costs no decode: the stored largest |value| settles it (an unreadable
    # blob here proves the data is never opened).
    dataset = Dataset(data=b"not an npz", max_abs_value=1e30, n_samples=4, task="binary")
    hp = Hyperparameters.model_validate({"n_iterations": 2})
    check_standardization_fits(hp, dataset)
    with pytest.raises(ValueError):
        check_standardization_fits(hp, Dataset(data=b"x", max_abs_value=1e38, n_samples=4))


def test_a_float64_feature_whose_variance_overflows_is_refused() -> None:
    # 1e200 fits float64, but its square does not: the fit's standard deviation was infinite
    # and the feature silently standardized to zeros.
    X, y = np.array([[1e200], [-1e200], [0.0]]), np.array([0, 1, 0])
    dataset = Dataset(
        data=datasets.encode_arrays(X, y), max_abs_value=1e200, n_samples=3, task="binary"
    )
    hp = Hyperparameters.model_validate({"n_iterations": 2, "dtype": "float64"})
    with pytest.raises(InvalidInput, match=r"feature 0 .* in float64"):
        check_standardization_fits(hp, dataset)
