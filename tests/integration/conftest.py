"""Fixtures for the scale-out tests: a fresh PostgreSQL database, a private Redis queue, and
`dnn-service serve` / `dnn-service worker` processes wired to them.

The services are found at DNN_TEST_POSTGRES_URL and DNN_TEST_REDIS_URL (defaults: 127.0.0.1).
When unreachable the tests skip with the reason, except under CI=true, where they fail: CI
starts both services, so a missing one there is a broken build, not a laptop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from live_server import LiveServer
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

POSTGRES_ADMIN_URL = os.environ.get(
    "DNN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
# A Redis database of its own, so tests never touch a developer's queues in db 0.
REDIS_URL = os.environ.get("DNN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: integration services must be running)")
    pytest.skip(reason)


def postgres_engine(url: str) -> Engine:
    return create_engine(url, connect_args={"connect_timeout": 2})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty database of its own on the real PostgreSQL, dropped afterwards."""
    admin = postgres_engine(POSTGRES_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        admin.dispose()
        unavailable(f"PostgreSQL is unreachable at {POSTGRES_ADMIN_URL}: {exc.orig}")
    name = f"dnn_it_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable(f"Redis is unreachable at {REDIS_URL}: {exc}")
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def celery_queue(redis_url: str) -> Iterator[str]:
    """A queue name of this test's own, so parallel test runs never take each other's jobs."""
    queue = f"dnn-test-{uuid.uuid4().hex[:12]}"
    yield queue
    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"*{queue}*"):
        client.delete(key)
    # A killed worker's unacknowledged messages wait in kombu's shared "unacked" hash.
    for tag, message in client.hgetall("unacked").items():
        if queue.encode() in message:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()


WORKER_READY_SECONDS = 60.0


class WorkerProcess:
    """`dnn-service worker` in a session (process group) of its own, so the test can find its
    pool children and clean all of them up."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 1) -> None:
        self.env = env
        self.log_path = log_path
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "app.cli.main",
                    "worker",
                    f"--concurrency={self.concurrency}",
                ],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            time.sleep(0.1)
        raise RuntimeError(f"worker not ready; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL to the `dnn-service worker` process only, as the OOM killer would send it;
        its pool children must not outlive it."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGQUIT is Celery's cold shutdown: a test's leftover job need not run to its end.
        os.killpg(self.process.pid, signal.SIGQUIT)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.kill_group()

    def pids(self) -> set[int]:
        """Live processes of this worker's group: the worker and its pool children."""
        assert self.process is not None
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            # fields: state, ppid, pgrp, ...; a zombie has exited and only awaits reaping.
            if fields[0] != "Z" and int(fields[2]) == self.process.pid:
                found.add(int(stat.parent.name))
        return found


class Cluster:
    """An API replica and its workers, sharing one database and one queue."""

    def __init__(
        self,
        server: LiveServer,
        workers: list[WorkerProcess],
        database_url: str,
        workers_env: dict[str, str],
    ):
        self.server = server
        self.workers = workers
        self.database_url = database_url
        self._workers_env = workers_env

    def add_worker(self) -> WorkerProcess:
        """Start one more worker (stopped with the others) and wait until it is ready."""
        log_path = self.server.log_path.with_name(f"worker-{len(self.workers)}.log")
        worker = WorkerProcess(self._workers_env, log_path).start()
        self.workers.append(worker)
        worker.wait_ready()
        return worker


@pytest.fixture
def start_cluster(
    tmp_path: Path, postgres_url: str, redis_url: str, celery_queue: str
) -> Iterator[Callable[..., Cluster]]:
    """Start an API (celery executor) and N workers sharing one PostgreSQL database."""
    started: list[Cluster] = []

    def start(n_workers: int = 2, **overrides: str) -> Cluster:
        env = {
            "DNN_EXECUTOR": "celery",
            "DNN_DATABASE_URL": postgres_url,
            "DNN_BROKER_URL": redis_url,
            "DNN_CELERY_QUEUE": celery_queue,
            **overrides,
        }
        # The server migrates the fresh database before the workers touch it.
        server = LiveServer(postgres_url, tmp_path / "server.log", workers=0, **env).start()
        workers = [
            WorkerProcess({**os.environ, **env}, tmp_path / f"worker-{i}.log").start()
            for i in range(n_workers)
        ]
        cluster = Cluster(server, workers, postgres_url, {**os.environ, **env})
        started.append(cluster)
        for worker in workers:
            worker.wait_ready()
        return cluster

    yield start
    for cluster in started:
        for worker in cluster.workers:
            worker.stop()
        cluster.server.stop()
