"""Races the database must decide, on PostgreSQL (the scaled-out deployment) and on SQLite.

The HTTP races are fired truly concurrently: an asyncio httpx client sends every request at
once (asyncio.gather) to a live `dnn-service serve` whose threadpool runs them in parallel
transactions. The model-version race runs in threads, each with its own connection, as two
workers finishing models would.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from job_helpers import blobs
from live_server import LiveServer
from sqlalchemy.orm import Session, sessionmaker

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import alembic_config, upgrade_to_head
from app.store import models

pytestmark = pytest.mark.integration

BACKENDS = ["postgresql", "sqlite"]


@pytest.fixture
def api(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, celery_queue: str
) -> Iterator[Callable[..., str]]:
    """Start an API on the parametrized backend with no worker: accepted jobs stay queued."""
    servers: list[LiveServer] = []

    def start(**env: str) -> str:
        if request.param == "postgresql":
            start_cluster = request.getfixturevalue("start_cluster")
            url: str = start_cluster(n_workers=0, **env).server.url
            return url
        server = LiveServer.in_folder(
            tmp_path,
            workers=0,
            DNN_EXECUTOR="celery",
            DNN_BROKER_URL=redis_url,
            DNN_CELERY_QUEUE=celery_queue,
            **env,
        ).start()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.stop()


async def fire(url: str, n: int, method: str, path: str, **kwargs: Any) -> list[httpx.Response]:
    """n identical requests, all in flight at once, each on its own connection."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=limits) as http:
        return list(await asyncio.gather(*(http.request(method, path, **kwargs) for _ in range(n))))


def first_answers(responses: list[httpx.Response], created: int) -> list[dict[str, Any]]:
    """The bodies of the requests that got the first answer; every other one must be a 409
    "in progress" with Retry-After. Never a 500."""
    bodies = []
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "request_in_progress", response.text
            assert int(response.headers["retry-after"]) > 0
            continue
        assert response.status_code == created, response.text
        bodies.append(response.json())
    assert bodies, "at least the first request was answered"
    return bodies


@pytest.mark.parametrize("api", BACKENDS, indirect=True)
def test_concurrent_requests_with_one_idempotency_key_make_one_resource(
    api: Callable[..., str],
) -> None:
    url = api()
    headers = {"Idempotency-Key": "race-upload"}
    uploads = asyncio.run(fire(url, 10, "POST", "/datasets", json=blobs(30), headers=headers))
    datasets = first_answers(uploads, 201)
    assert len({body["id"] for body in datasets}) == 1
    listed = httpx.get(f"{url}/datasets").json()["items"]
    assert [d["id"] for d in listed] == [datasets[0]["id"]]

    train = {"dataset_id": datasets[0]["id"], "hyperparameters": {"n_iterations": 5}}
    headers = {"Idempotency-Key": "race-train"}
    trains = asyncio.run(fire(url, 10, "POST", "/train", json=train, headers=headers))
    accepted = first_answers(trains, 202)
    assert len({body["job_id"] for body in accepted}) == 1
    jobs = httpx.get(f"{url}/jobs").json()["items"]
    assert [job["id"] for job in jobs] == [accepted[0]["job_id"]]


@pytest.mark.parametrize("api", BACKENDS, indirect=True)
def test_concurrent_submissions_never_pass_the_active_job_limit(api: Callable[..., str]) -> None:
    url = api(DNN_MAX_ACTIVE_JOBS_PER_TENANT="5")
    dataset = httpx.post(f"{url}/datasets", json=blobs(30)).json()["id"]
    train = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 5}}
    responses = asyncio.run(fire(url, 30, "POST", "/train", json=train))
    statuses = Counter(response.status_code for response in responses)
    assert statuses == {202: 5, 429: 25}, statuses
    listed = httpx.get(f"{url}/jobs", params={"limit": 100}).json()["items"]
    assert len(listed) == 5 and {job["status"] for job in listed} == {"queued"}


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def test_a_dataset_deleted_while_a_job_on_it_is_accepted_is_one_or_the_other(
    start_cluster: Callable[..., Any], postgres_url: str
) -> None:
    """DELETE /datasets/{id} checked for active jobs before a POST /train on the dataset had
    committed, then deleted it: both succeeded, and the accepted job failed "the dataset was
    deleted". Made deterministic by holding a key-share lock on the dataset row (as a foreign
    key check does) so the DELETE waits after its check while the train is sent."""
    url = start_cluster(n_workers=0).server.url
    dataset = httpx.post(f"{url}/datasets", json=blobs(30)).json()["id"]
    engine = sa.create_engine(postgres_url)
    holder = engine.connect()
    holder.execute(sa.text("SELECT id FROM datasets WHERE id = :id FOR KEY SHARE"), {"id": dataset})

    def waiting_on_locks() -> int:
        with engine.connect() as connection:
            query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            return int(connection.execute(sa.text(query)).scalar_one())

    answers: dict[str, httpx.Response] = {}

    def send(method: str, path: str, **kwargs: Any) -> threading.Thread:
        thread = threading.Thread(
            target=lambda: answers.update({method: httpx.request(method, url + path, **kwargs)})
        )
        thread.start()
        return thread

    try:
        deleting = send("DELETE", f"/datasets/{dataset}", timeout=60)
        wait_until(lambda: waiting_on_locks() >= 1)
        train = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 5}}
        training = send("POST", "/train", json=train, timeout=60)
        # The train either finishes at once, or waits for the delete to decide.
        wait_until(lambda: "POST" in answers or waiting_on_locks() >= 2)
    finally:
        holder.rollback()
        holder.close()
    deleting.join(60)
    training.join(60)
    engine.dispose()
    statuses = (answers["DELETE"].status_code, answers["POST"].status_code)
    assert statuses in {(204, 404), (409, 202)}, (statuses, answers["POST"].text)
    jobs = httpx.get(f"{url}/jobs").json()["items"]
    assert all(job["dataset_id"] == dataset for job in jobs), jobs


# --- model versions -------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(
        "postgres_url" if request.param == "postgresql" else "sqlite_url"
    )
    return url


def factory_for(url: str) -> sessionmaker[Session]:
    upgrade_to_head(url)
    return make_session_factory(make_engine(url))


def add_model(factory: sessionmaker[Session], tenant: str, name: str) -> tuple[str, int]:
    with transaction(factory) as session:
        model = models.create_model(
            session,
            tenant_id=tenant,
            name=name,
            job_id="job",
            dataset_id=None,
            architecture={},
            metrics={},
            weights=b"w",
        )
        return model.id, model.version


def test_models_finished_at_once_get_distinct_versions(database_url: str) -> None:
    factory = factory_for(database_url)
    n = 8
    barrier = threading.Barrier(n)
    versions: list[int] = []
    errors: list[BaseException] = []

    def finish() -> None:
        try:
            barrier.wait()
            versions.append(add_model(factory, "t", "m")[1])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=finish) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(versions) == list(range(1, n + 1))


def test_a_deleted_latest_version_is_never_minted_again(database_url: str) -> None:
    factory = factory_for(database_url)
    add_model(factory, "t", "m")
    latest, version = add_model(factory, "t", "m")
    assert version == 2
    with transaction(factory) as session:
        models.delete_model(session, "t", latest)
    assert add_model(factory, "t", "m")[1] == 3
    assert add_model(factory, "t", "other")[1] == 1
    assert add_model(factory, "u", "m")[1] == 1


def test_the_migration_renumbers_duplicate_versions_before_making_them_unique(
    postgres_url: str,
) -> None:
    config = alembic_config(postgres_url)
    script = ScriptDirectory.from_config(config)
    # The revision just before the one that adds the counters and the unique constraint.
    before = next(
        rev.down_revision
        for rev in script.walk_revisions()
        if "model_version_counters" in Path(rev.path).read_text()
    )
    assert isinstance(before, str)
    command.upgrade(config, before)

    table = sa.table(
        "models",
        *(sa.column(c) for c in ("id", "tenant_id", "name", "version", "job_id", "dataset_id")),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("architecture", sa.JSON),
        sa.column("metrics", sa.JSON),
        *(sa.column(c) for c in ("sha256", "size_bytes")),
        sa.column("weights", sa.LargeBinary),
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    stored = [  # (id, tenant, name, version), oldest first
        ("a", "t", "m", 1),
        ("b", "t", "m", 2),
        ("c", "t", "m", 2),
        ("d", "t", "m", 3),
        ("e", "t", "m", 3),
        ("f", "t", "m", 3),
        ("g", "t", "n", 1),
        ("h", "u", "m", 1),
        ("i", "u", "m", 1),
    ]
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "id": model_id,
                    "tenant_id": tenant,
                    "name": name,
                    "version": version,
                    "job_id": None,
                    "dataset_id": None,
                    "created_at": start + timedelta(minutes=i),
                    "architecture": {},
                    "metrics": {},
                    "sha256": "0" * 64,
                    "size_bytes": 1,
                    "weights": b"w",
                }
                for i, (model_id, tenant, name, version) in enumerate(stored)
            ],
        )
    upgrade_to_head(postgres_url)

    with engine.connect() as connection:
        versions = dict(connection.execute(sa.text("SELECT id, version FROM models")).all())
        counters = {
            (tenant, name): last
            for tenant, name, last in connection.execute(
                sa.text("SELECT tenant_id, name, last_version FROM model_version_counters")
            )
        }
    engine.dispose()
    # The oldest of each duplicate group keeps its number; the others go above the highest.
    assert versions == {"a": 1, "b": 2, "c": 4, "d": 3, "e": 5, "f": 6, "g": 1, "h": 1, "i": 2}
    assert counters == {("t", "m"): 6, ("t", "n"): 1, ("u", "m"): 2}
    factory = make_session_factory(make_engine(postgres_url))
    assert add_model(factory, "t", "m")[1] == 7
    with pytest.raises(sa.exc.IntegrityError), transaction(factory) as session:
        session.execute(
            table.insert().values(
                id="dup",
                tenant_id="t",
                name="n",
                version=1,
                created_at=start,
                architecture={},
                metrics={},
                sha256="0" * 64,
                size_bytes=1,
                weights=b"w",
            )
        )
