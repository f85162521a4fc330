"""The runner builds what the job stored: its re-validated hyperparameters, its decided task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Job, Model
from app.job_status import JobStatus
from app.jobs.runner import run_training_job
from app.settings import Settings
from app.store import datasets, jobs

WORKER = "host:1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'runner.db'}"
    upgrade_to_head(url)
    return Settings(database_url=url, workers=0)


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def queue_job(factory: sessionmaker[Session], hyperparameters: dict[str, Any]) -> str:
    rng = np.random.default_rng(0)
    with transaction(factory) as session:
        dataset = datasets.create_dataset(
            session,
            tenant_id="t1",
            name="d",
            X=rng.standard_normal((12, 2)).astype(np.float32),
            y=np.array(["no", "yes"] * 6),
            task="binary",
            classes=["no", "yes"],
        )
        job = jobs.create_job(
            session,
            tenant_id="t1",
            dataset_id=dataset.id,
            hyperparameters=hyperparameters,
            model_name="m",
            n_iterations=int(hyperparameters.get("n_iterations", 500)),
        )
        return job.id


def finished(factory: sessionmaker[Session], job_id: str) -> tuple[Job, Model | None]:
    with transaction(factory) as session:
        job = session.get_one(Job, job_id)
        return job, session.get(Model, job.model_id) if job.model_id else None


def test_a_job_stored_before_the_task_was_decided_at_submission_still_trains(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    # A row written by the previous version: "auto", and none of the newer fields.
    job_id = queue_job(factory, {"task": "auto", "hidden_layers": [3], "n_iterations": 2})
    assert run_training_job(factory, job_id, WORKER, settings) == JobStatus.SUCCEEDED
    _, model = finished(factory, job_id)
    assert model is not None and model.architecture["task"] == "binary"
    assert model.architecture["layer_dims"] == [2, 3, 1]


def test_the_stored_options_reach_the_core(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    stored = {
        "task": "multiclass",
        "hidden_layers": [4],
        "n_iterations": 3,
        "optimizer": "adam",
        "beta1": 0.5,
        "shuffle": False,
        "batch_size": 5,
        "validation_fraction": 0.25,
        "early_stopping": {"patience": 1, "restore_best": False},
        "dtype": "float64",
    }
    job_id = queue_job(factory, stored)
    assert run_training_job(factory, job_id, WORKER, settings) == JobStatus.SUCCEEDED
    _, model = finished(factory, job_id)
    assert model is not None
    assert model.architecture["output"] == "softmax" and model.architecture["dtype"] == "float64"
    assert model.architecture["layer_dims"] == [2, 4, 2]


def test_stored_hyperparameters_that_no_longer_validate_fail_the_job_with_the_reason(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    job_id = queue_job(factory, {"task": "binary", "optimizer": "rmsprop", "n_iterations": 2})
    assert run_training_job(factory, job_id, WORKER, settings) == JobStatus.FAILED
    job, model = finished(factory, job_id)
    assert model is None
    assert job.error is not None and job.error.startswith("invalid training setup")
    assert "optimizer" in job.error


def test_a_model_the_database_has_no_room_for_fails_its_job_saying_why(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    job_id = queue_job(factory, {"hidden_layers": [256, 256], "n_iterations": 3})
    engine = make_engine(settings.database_url)
    with engine.connect() as connection:
        pages = int(connection.exec_driver_sql("PRAGMA page_count").scalar_one())
    engine.dispose()  # every connection from here on is made with the limit below

    # SQLite's own limit on the file's size: the small writes of a run fit in the room left,
    # the model (about a megabyte of weights and Adam moments) does not, as on a full disk.
    @event.listens_for(engine, "connect")
    def little_room(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + 16}")

    full = make_session_factory(engine)
    assert run_training_job(full, job_id, WORKER, settings) == JobStatus.FAILED
    engine.dispose()
    job, model = finished(factory, job_id)
    assert job.status == JobStatus.FAILED and model is None
    assert job.error is not None and "database or disk is full" in job.error
    assert "resume_from_job" in job.error
