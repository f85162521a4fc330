"""The embedded executor (local worker processes) on a PostgreSQL that stops taking writes
mid-job: unreachable for a while, or refusing the model as a full disk would.

A job whose worker cannot record how its attempt ended must not stay `running` for good (the
pool never takes a live worker's job by its lease), a refused model write fails the job saying
why, and nothing stored before is lost.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from job_helpers import TERMINAL, all_points, blobs, submit, wait_for
from live_server import LiveServer, spawned_workers
from sqlalchemy import Engine, create_engine, make_url, text

from app.jobs.local import OUTAGE_FIRST_WAIT_SECONDS, OUTAGE_MAX_WAIT_SECONDS, _Outage

pytestmark = [pytest.mark.integration, pytest.mark.slow]

N_ITERATIONS = 3000
HYPERPARAMETERS = {
    "hidden_layers": [32, 32],
    "batch_size": 16,
    "n_iterations": N_ITERATIONS,
    "seed": 3,
}
SETTINGS = {"DNN_CHECKPOINT_SECONDS": "1", "DNN_WORKER_NICE": "0", "DNN_JOB_LEASE_SECONDS": "3"}
TIMEOUT = 600  # generous for a loaded machine; nothing here asserts a duration
OUTAGE_SECONDS = 6


@pytest.fixture
def admin(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def server(postgres_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(postgres_url, tmp_path / "server.log", 1, **SETTINGS) as live:
        yield live


def job_state(admin: Engine, job_id: str) -> tuple[str, str | None, int]:
    """status, worker_id, checkpoint iteration (0 if none)."""
    with admin.connect() as connection:
        status, worker_id, checkpoint = connection.execute(
            text(
                "SELECT status, worker_id, "
                "(SELECT iteration FROM job_checkpoints WHERE job_id = jobs.id) "
                "FROM jobs WHERE id = :id"
            ),
            {"id": job_id},
        ).one()
    return status, worker_id, int(checkpoint or 0)


def wait_for_checkpoint(admin: Engine, job_id: str) -> str:
    """The worker id of the job's first attempt, once it has stored a checkpoint."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        status, worker_id, checkpoint = job_state(admin, job_id)
        assert status in {"queued", "running"}, f"the job ended ({status}) too soon"
        if status == "running" and checkpoint > 0 and worker_id:
            return worker_id
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stored no checkpoint")


def set_reachable(database_url: str, reachable: bool) -> None:
    """Let sessions connect to the database or not; when not, cut the ones it has, so every
    write fails as during a long PostgreSQL restart."""
    url = make_url(database_url)
    name = url.database
    # From another database: no session of its own may be on the one it closes.
    engine = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {reachable}'))
            if not reachable:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name"
                    ),
                    {"name": name},
                )
    finally:
        engine.dispose()


def outage(database_url: str) -> None:
    set_reachable(database_url, False)
    time.sleep(OUTAGE_SECONDS)
    set_reachable(database_url, True)


def trained_model(client: httpx.Client, dataset: str) -> tuple[str, str]:
    """A model trained before the trouble: its id and the sha256 of its weights."""
    job = wait_for(client, submit(client, dataset, n_iterations=20), TERMINAL, TIMEOUT)
    assert job["status"] == "succeeded", job
    weights = client.get(f"/models/{job['model_id']}/weights").content
    return job["model_id"], hashlib.sha256(weights).hexdigest()


def assert_intact(client: httpx.Client, model_id: str, sha256: str) -> None:
    weights = client.get(f"/models/{model_id}/weights")
    assert weights.status_code == 200
    assert hashlib.sha256(weights.content).hexdigest() == sha256
    predicted = client.post("/predict", json={"model_id": model_id, "instances": [[0.0] * 4]})
    assert predicted.status_code == 200, predicted.text


def test_a_job_whose_database_is_unreachable_for_a_while_resumes_once_it_is_back(
    server: LiveServer, admin: Engine, postgres_url: str
) -> None:
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        earlier = trained_model(client, dataset)
        job_id = submit(client, dataset, **HYPERPARAMETERS)
        wait_for_checkpoint(admin, job_id)
        # Every write of the worker fails now, the one ending its attempt included; before the
        # fix the job then stayed `running` for good, its worker alive and idle.
        outage(postgres_url)

        job = wait_for(client, job_id, TERMINAL, TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        assert [p["iteration"] for p in all_points(client, job_id)] == list(
            range(1, N_ITERATIONS + 1)
        )
        assert_intact(client, *earlier)


def test_a_worker_killed_while_the_database_is_unreachable_is_replaced_and_its_job_resumed(
    server: LiveServer, admin: Engine, postgres_url: str
) -> None:
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        job_id = submit(client, dataset, **HYPERPARAMETERS)
        worker_id = wait_for_checkpoint(admin, job_id)
        set_reachable(postgres_url, False)
        # The pool cannot queue the dead worker's job again now; before the fix that error
        # ended the pool's monitor thread, so no worker was started again and the job never ran.
        os.kill(int(worker_id.rsplit(":", 1)[1]), signal.SIGKILL)
        time.sleep(OUTAGE_SECONDS)
        set_reachable(postgres_url, True)

        job = wait_for(client, job_id, TERMINAL, TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 2
        assert "could not re-queue the job of worker pid" in server.log_path.read_text()


def test_a_model_the_database_refuses_to_store_fails_its_job_saying_why(
    server: LiveServer, admin: Engine
) -> None:
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs(n=400)).json()["id"]
        earlier = trained_model(client, dataset)
        # The model store refuses new models as PostgreSQL does when its disk is full.
        with admin.connect() as connection:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'could not extend file: No space left on device' "
                    "USING ERRCODE = 'disk_full'; END $$"
                )
            )
            connection.execute(
                text("CREATE TRIGGER disk_full BEFORE INSERT ON models EXECUTE FUNCTION refuse()")
            )
        job_id = submit(client, dataset, **HYPERPARAMETERS)
        job = wait_for(client, job_id, TERMINAL, TIMEOUT)
        assert job["status"] == "failed", job
        assert job["attempts"] == 1  # not retried: another attempt would be refused again
        assert "database refused to store" in job["error"], job["error"]
        assert "No space left on device" in job["error"] and "resume_from_job" in job["error"]
        assert job["model_id"] is None
        assert_intact(client, *earlier)

        with admin.connect() as connection:
            connection.execute(text("DROP TRIGGER disk_full ON models"))
        continued = client.post(
            "/train", json={"resume_from_job": job_id, "hyperparameters": {"n_iterations": 10}}
        )
        assert continued.status_code == 202, continued.text
        again = wait_for(client, continued.json()["id"], TERMINAL, TIMEOUT)
        assert again["status"] == "succeeded", again
        assert again["start_iteration"] > 0


def worker_pids(server: LiveServer) -> set[int]:
    """The server's spawned children: its training workers (with no body-parsing pool)."""
    assert server.process is not None
    return set(spawned_workers(server.process.pid))


def refusals(admin: Engine, sequence: str = "claim_refusals") -> int:
    """How many refusals a trigger counted in its sequence (nextval survives the rollback)."""
    with admin.connect() as connection:
        value, called = connection.execute(
            text(f"SELECT last_value, is_called FROM {sequence}")
        ).one()
    return int(value) if called else 0


def test_a_worker_whose_claim_is_refused_waits_for_the_database_instead_of_dying(
    postgres_url: str, tmp_path: Path, admin: Engine
) -> None:
    # No body-parsing pool: the server's only spawned child is then its one worker.
    with (
        LiveServer(postgres_url, tmp_path / "server.log", 1, DNN_PARSE_WORKERS="0") as server,
        server.client() as client,
    ):
        dataset = client.post("/datasets", json=blobs(n=100)).json()["id"]
        workers = worker_pids(server)
        assert len(workers) == 1
        # Claiming a job (queued -> running) is refused as on a full disk; nothing else is. The
        # sequence counts the refusals: nextval is not undone with the refused transaction.
        with admin.connect() as connection:
            connection.execute(text("CREATE SEQUENCE claim_refusals"))
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "IF OLD.status = 'queued' AND NEW.status = 'running' THEN "
                    "PERFORM nextval('claim_refusals'); RAISE EXCEPTION "
                    "'could not extend file: No space left on device' USING ERRCODE = 'disk_full';"
                    " END IF; RETURN NEW; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_claim BEFORE UPDATE ON jobs FOR EACH ROW "
                    "EXECUTE FUNCTION refuse_claim()"
                )
            )
        job_id = submit(client, dataset, n_iterations=20)
        deadline = time.monotonic() + TIMEOUT
        while refusals(admin) < 3:
            # Before the fix the worker died on the first refusal and the pool started another
            # that died the same way, again and again.
            assert worker_pids(server) == workers
            assert job_state(admin, job_id)[0] == "queued"
            assert time.monotonic() < deadline, "the worker never tried to claim the job"
            time.sleep(0.05)
        assert worker_pids(server) == workers
        with admin.connect() as connection:
            connection.execute(text("DROP TRIGGER refuse_claim ON jobs"))

        job = wait_for(client, job_id, TERMINAL, TIMEOUT)
        assert job["status"] == "succeeded", job
        assert job["attempts"] == 1
        assert worker_pids(server) == workers
        log = server.log_path.read_text()
        assert log.count("cannot read or write the database") == 1, log
        assert "the database answers again" in log, log


def test_the_wait_between_tries_grows_to_its_cap_and_resets_once_the_database_answers() -> None:
    outage = _Outage()
    waits = [outage.failed() for _ in range(5000)]  # hours of outage: no float overflow
    assert waits[:3] == [OUTAGE_FIRST_WAIT_SECONDS, 2 * OUTAGE_FIRST_WAIT_SECONDS, 2.0]
    assert waits == sorted(waits) and waits[-1] == OUTAGE_MAX_WAIT_SECONDS
    outage.ended()
    assert outage.failed() == OUTAGE_FIRST_WAIT_SECONDS


def test_a_job_whose_end_the_database_refuses_is_handed_back_by_its_live_worker(
    postgres_url: str, tmp_path: Path, admin: Engine
) -> None:
    with (
        LiveServer(postgres_url, tmp_path / "server.log", 1, DNN_PARSE_WORKERS="0") as server,
        server.client() as client,
    ):
        dataset = client.post("/datasets", json=blobs(n=100)).json()["id"]
        # The mode row says what the database refuses: claims, then a job's failing, then none.
        with admin.connect() as connection:
            connection.execute(text("CREATE SEQUENCE fail_refusals"))
            connection.execute(text("CREATE TABLE refusal (mode text)"))
            connection.execute(text("INSERT INTO refusal VALUES ('claim')"))
            connection.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "DECLARE m text := (SELECT mode FROM refusal); BEGIN "
                    "IF (m = 'claim' AND OLD.status = 'queued' AND NEW.status = 'running') OR "
                    "(m = 'fail' AND NEW.status = 'failed') THEN "
                    "IF m = 'fail' THEN PERFORM nextval('fail_refusals'); END IF; RAISE EXCEPTION "
                    "'could not extend file: No space left on device' USING ERRCODE = 'disk_full';"
                    " END IF; RETURN NEW; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        job_id = submit(client, dataset, n_iterations=20)
        with admin.connect() as connection:
            # Stored settings the runner cannot read: it claims the job, then fails it, which is
            # refused, after the claim was committed.
            connection.execute(
                text('UPDATE jobs SET hyperparameters = \'{"hidden_layers": "x"}\' WHERE id = :id'),
                {"id": job_id},
            )
            connection.execute(text("UPDATE refusal SET mode = 'fail'"))
        deadline = time.monotonic() + 60
        while refusals(admin, "fail_refusals") < 2:
            assert time.monotonic() < deadline, "the job is stuck: its worker never handed it back"
            time.sleep(0.05)
        with admin.connect() as connection:
            connection.execute(text("UPDATE refusal SET mode = 'none'"))

        # Before the fix of the worker's handing back, the job stayed running for good: its
        # worker lived on, and the pool never takes a live worker's job.
        job = wait_for(client, job_id, TERMINAL, 60)
        assert job["status"] == "failed", job
        assert job["attempts"] >= 2, job  # handed back after the refusal, and claimed again
        # Failed by an attempt that could read its settings' error, or, on the last attempt,
        # closed as the pool closes a dead worker's.
        assert "invalid training setup" in job["error"] or "interrupted" in job["error"], job
