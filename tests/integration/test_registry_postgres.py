"""Registry writes that race on PostgreSQL: concurrent alias moves keep one consistent history,
and concurrent uploads of the same content store one dataset."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.db.tables import Dataset, Model
from app.errors import Conflict
from app.store import aliases, datasets, models

pytestmark = pytest.mark.integration
THREADS = 8


@pytest.fixture
def factory(postgres_url: str) -> Iterator[sessionmaker[Session]]:
    upgrade_to_head(postgres_url)
    engine = make_engine(postgres_url)
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def make_versions(factory: sessionmaker[Session], count: int) -> list[str]:
    with factory() as session, session.begin():
        created = [
            models.create_model(
                session,
                tenant_id="alice",
                name="churn",
                job_id=f"job{i}",
                dataset_id=None,
                architecture={},
                metrics={},
                weights=b"w%d" % i,
            )
            for i in range(count)
        ]
        return [model.id for model in created]


def all_at_once(work: Callable[[int], Any]) -> list[Any]:
    """Run work(0..THREADS-1) in threads released together; their results or exceptions."""
    barrier = threading.Barrier(THREADS)
    results: list[Any] = [None] * THREADS

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_moves_of_one_alias_form_one_chain(factory: sessionmaker[Session]) -> None:
    make_versions(factory, 4)

    def move(index: int) -> aliases.Move:
        with factory() as session, session.begin():
            return aliases.set_alias(session, "alice", "churn", "production", index % 4 + 1, "k")

    results = all_at_once(move)
    assert all(isinstance(result, aliases.Move) for result in results), results
    with factory() as session:
        history = aliases.history(session, "alice", "churn")
        current = aliases.aliases_of_name(session, "alice", "churn")["production"]
    # Exactly one creation, and each later move replaced the version the one before it set.
    assert history[0].previous_version is None
    for before, after in itertools.pairwise(history):
        assert after.previous_version == before.version
    assert history[-1].version == current
    assert sum(result.previous_version is None for result in results) == 1


def test_an_aliased_version_cannot_be_deleted_even_by_a_racing_delete(
    factory: sessionmaker[Session],
) -> None:
    first, _second = make_versions(factory, 2)
    with factory() as session, session.begin():
        aliases.set_alias(session, "alice", "churn", "production", 1, "k")
    with factory() as session, session.begin(), pytest.raises(Conflict):
        models.delete_model(session, "alice", first)
    # Past the store's check, the foreign key still refuses.
    with factory() as session, pytest.raises(IntegrityError, match="foreign key"), session.begin():
        session.execute(delete(Model).where(Model.id == first))


def test_concurrent_uploads_of_the_same_content_store_one_dataset(
    factory: sessionmaker[Session],
) -> None:
    X = np.arange(12, dtype=np.float64).reshape(6, 2)
    y = np.array([0, 1, 0, 1, 0, 1])
    sha = datasets.content_sha256(b"rows", format_name="csv", label_column=None)
    encoded = datasets.encode_dataset(X, y, "binary", [0, 1])

    def upload(index: int) -> tuple[str, bool]:
        with factory() as session, session.begin():
            dataset, created = datasets.store_once(
                session,
                tenant_id="alice",
                name=f"upload {index}",
                dataset=encoded,
                sha256=sha,
                dedupe=True,
            )
            return dataset.id, created

    results = all_at_once(upload)
    assert all(isinstance(result, tuple) for result in results), results
    assert len({dataset_id for dataset_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with factory() as session:
        count = session.scalar(select(func.count()).select_from(Dataset))
    assert count == 1
