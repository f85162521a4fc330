"""The embedded executor's worker pool on PostgreSQL when the database cuts its connections."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for
from live_server import LiveServer, spawned_workers
from sqlalchemy import create_engine, make_url, text

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_pool_still_replaces_workers_after_the_database_cut_it_off(
    postgres_url: str, tmp_path: Path
) -> None:
    database = make_url(postgres_url).database
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    locker = create_engine(postgres_url)
    with LiveServer(
        postgres_url, tmp_path / "server.log", workers=2, DNN_PARSE_WORKERS="0"
    ) as server:
        assert server.process is not None
        with server.client() as client:
            dataset = client.post("/datasets", json=blobs(n=100)).json()["id"]
            before = spawned_workers(server.process.pid)
            assert len(before) == 2
            waiting = text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db "
                "AND pid <> pg_backend_pid() AND wait_event_type = 'Lock'"
            )
            with locker.connect() as holder, admin.connect() as connection:
                # With the jobs table held, a worker dies: the pool's re-queue of its job waits
                # on the table, and every backend waiting there is cut off, as a failover would.
                holder.execute(text("LOCK TABLE jobs IN ACCESS EXCLUSIVE MODE"))
                os.kill(before[0], signal.SIGKILL)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    for pid in connection.execute(waiting, {"db": database}).scalars():
                        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                    time.sleep(0.05)
                holder.rollback()
            # The pool is whole again, and it trains.
            job = wait_for(client, submit(client, dataset, n_iterations=20), TERMINAL, 60)
            assert job["status"] == "succeeded", job
            deadline = time.monotonic() + 30
            while len(spawned_workers(server.process.pid)) < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(spawned_workers(server.process.pid)) == 2
            assert not set(spawned_workers(server.process.pid)) & {before[0]}
    locker.dispose()
    admin.dispose()
