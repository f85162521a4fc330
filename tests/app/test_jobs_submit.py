"""submit_and_dispatch, the service work of POST /train, against real executors; no server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.db.tables import Dataset, IdempotencyRecord, Job
from app.errors import InvalidInput, LimitExceeded, ServiceUnavailable
from app.job_status import JobStatus
from app.jobs.dispatch import CeleryExecutor
from app.jobs.local import LocalWorkerPool
from app.jobs.submit import NOT_DISPATCHED, check_limits, submit_and_dispatch
from app.schemas.jobs import Hyperparameters, TrainRequest
from app.settings import Settings

TENANT = "t1"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'submit.db'}"
    upgrade_to_head(url)
    # Port 9 (discard) on loopback: nothing listens, so publishing fails at once.
    return Settings(database_url=url, workers=0, broker_url="redis://127.0.0.1:9/0")


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    yield make_session_factory(engine)
    engine.dispose()


def request(labels: list[object], **hyperparameters: object) -> TrainRequest:
    return TrainRequest.model_validate(
        {
            "dataset": {"features": [[float(i)] for i in range(len(labels))], "labels": labels},
            "hyperparameters": hyperparameters,
        }
    )


def count(
    factory: sessionmaker[Session], table: type[Job] | type[Dataset] | type[IdempotencyRecord]
) -> int:
    with transaction(factory) as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_a_dispatched_job_is_queued_with_its_task_decided(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    with factory() as session:
        outcome = submit_and_dispatch(
            session,
            LocalWorkerPool(settings, 0),
            TENANT,
            request([0, 1, 2, 0]),
            settings,
            idempotency_key="k1",
            digest="d1",
        )
    assert outcome.status_code == 202 and not outcome.replayed
    with transaction(factory) as session:
        stored = session.get_one(Job, outcome.response["job_id"])
        assert stored.status == JobStatus.QUEUED and stored.dispatched_at is not None
        assert stored.hyperparameters["task"] == "multiclass"


def test_an_unreachable_queue_closes_the_job_and_answers_503(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    executor = CeleryExecutor(settings)
    try:
        with factory() as session, pytest.raises(ServiceUnavailable):
            submit_and_dispatch(
                session,
                executor,
                TENANT,
                request([0, 1, 0, 1]),
                settings,
                idempotency_key="k1",
                digest="d1",
            )
    finally:
        executor.stop()
    # The key is released, so a retry once the queue is back runs anew.
    assert count(factory, IdempotencyRecord) == 0
    with transaction(factory) as session:
        job = session.scalars(select(Job)).one()
        assert (job.status, job.error, job.dispatched_at) == (
            JobStatus.FAILED,
            NOT_DISPATCHED,
            None,
        )


def test_a_replay_writes_nothing(settings: Settings, factory: sessionmaker[Session]) -> None:
    pool = LocalWorkerPool(settings, 0)
    answers = []
    for _ in range(2):
        with factory() as session:
            answers.append(
                submit_and_dispatch(
                    session,
                    pool,
                    TENANT,
                    request([0, 1]),
                    settings,
                    idempotency_key="k1",
                    digest="d1",
                )
            )
    assert [a.replayed for a in answers] == [False, True]
    assert answers[0].response == answers[1].response
    assert count(factory, Job) == count(factory, Dataset) == 1


def test_a_task_the_labels_do_not_fit_writes_nothing(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    with factory() as session, pytest.raises(InvalidInput, match="strings"):
        submit_and_dispatch(
            session,
            LocalWorkerPool(settings, 0),
            TENANT,
            request(["a", "b", "a", "b"], task="regression"),
            settings,
            idempotency_key="k1",
            digest="d1",
        )
    # The key is not taken by a refused request.
    assert count(factory, IdempotencyRecord) == 0
    # The inline dataset went with the refused job: one transaction.
    assert count(factory, Job) == count(factory, Dataset) == 0


def test_a_default_beyond_the_servers_limit_is_named_as_the_default() -> None:
    """A server with DNN_MAX_ITERATIONS=20 told a client that sent no n_iterations that it
    had "requested" 500."""
    settings = Settings(max_iterations=20, max_layer_width=4)
    with pytest.raises(LimitExceeded) as default:
        check_limits(Hyperparameters(hidden_layers=[4]), settings)
    assert "500 iterations" in default.value.message and "the default" in default.value.message
    assert default.value.details[0]["loc"] == ["hyperparameters", "n_iterations"]
    with pytest.raises(LimitExceeded) as sent:
        check_limits(Hyperparameters(hidden_layers=[4], n_iterations=30), settings)
    assert "the default" not in sent.value.message
    with pytest.raises(LimitExceeded, match=r"16 units.*the default"):
        check_limits(Hyperparameters(n_iterations=5), settings)
