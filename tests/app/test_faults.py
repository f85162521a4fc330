"""Fault injection: SIGKILL a training worker, then the server, mid-job; nothing is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from job_helpers import TERMINAL, blobs, stored_points, submit, wait_for, wait_for_history
from live_server import LiveServer, spawned_workers

pytestmark = pytest.mark.slow


def history_count(db_path: str, job_id: str) -> int:
    return stored_points(f"sqlite:///{db_path}", job_id)


def worker_pid(db_path: str, job_id: str) -> int:
    with sqlite3.connect(db_path) as db:
        (worker_id,) = db.execute("SELECT worker_id FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return int(worker_id.rsplit(":", 1)[1])


def test_killing_a_worker_then_the_server_loses_nothing(sqlite_url: str, tmp_path: Path) -> None:
    db_path = sqlite_url.removeprefix("sqlite:///")
    log = tmp_path / "server.log"
    # One attempt: the job fails with its reason (re-queueing is covered by test_resume_crash.py).
    server = LiveServer(sqlite_url, log, workers=2, DNN_MAX_ATTEMPTS="1").start()
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs()).json()["id"]
        victim = submit(client, dataset, n_iterations=1_000_000)
        survivor = submit(client, dataset, n_iterations=1_000_000)
        for job_id in (victim, survivor):
            wait_for(client, job_id, {"running"})
            wait_for_history(client, job_id, 10)

        os.kill(worker_pid(db_path, victim), signal.SIGKILL)
        closed = wait_for(client, victim, TERMINAL, timeout=15)
        assert closed["status"] == "failed" and "interrupted" in closed["error"]
        kept = history_count(db_path, victim)
        assert closed["points_total"] == kept >= 10

        # The pool replaced the dead worker: a new job still runs to the end.
        assert (
            wait_for(client, submit(client, dataset, n_iterations=20), TERMINAL)["status"]
            == "succeeded"
        )
        before_crash = history_count(db_path, survivor)
    server.kill()
    time.sleep(0.5)
    frozen = history_count(db_path, survivor)
    assert frozen >= before_crash

    restarted = LiveServer(sqlite_url, log, workers=2, DNN_MAX_ATTEMPTS="1").start()
    try:
        with restarted.client() as client:
            jobs = client.get("/jobs", params={"limit": 500}).json()["items"]
            assert {job["status"] for job in jobs} <= TERMINAL
            assert wait_for(client, survivor, TERMINAL)["status"] == "failed"
            assert client.get(f"/jobs/{survivor}").json()["points_total"] == frozen
            assert history_count(db_path, victim) == kept
    finally:
        restarted.stop()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_job_that_records_rarely_keeps_its_lease(sqlite_url: str, tmp_path: Path) -> None:
    db_path = sqlite_url.removeprefix("sqlite:///")
    server = LiveServer(sqlite_url, tmp_path / "server.log", DNN_JOB_LEASE_SECONDS="1").start()
    try:
        with server.client() as client:
            dataset = client.post("/datasets", json=blobs()).json()["id"]
            quiet = submit(client, dataset, n_iterations=1_000_000, record_every=1_000_000)
            wait_for(client, quiet, {"running"})
            time.sleep(3)  # three leases without a recorded point
            assert server.process is not None
            idle = [
                pid
                for pid in spawned_workers(server.process.pid)
                if pid != worker_pid(db_path, quiet)
            ]
            assert idle, "the pool has a second, idle worker"
            # A worker's death makes the pool close every job whose lease ran out.
            os.kill(idle[0], signal.SIGKILL)
            time.sleep(2)
            assert client.get(f"/jobs/{quiet}").json()["status"] == "running"
            assert client.post(f"/jobs/{quiet}/cancel").status_code == 202
    finally:
        server.stop()


def test_a_killed_server_leaves_no_process_behind(sqlite_url: str, tmp_path: Path) -> None:
    # Training workers and the body-parsing pool are spawned children; the pool's processes
    # outlived a SIGKILLed server (each holding ~100 MB) until the machine restarted. Every
    # upload goes to the pool here, so one upload shows it has started.
    server = LiveServer(
        sqlite_url, tmp_path / "server.log", workers=1, DNN_PARSE_OFFLOAD_BYTES="1"
    ).start()
    assert server.process is not None
    with server.client() as client:
        dataset = client.post("/datasets", json=blobs()).json()["id"]
        assert wait_for(client, submit(client, dataset, n_iterations=5), TERMINAL)
    children = spawned_workers(server.process.pid)
    assert len(children) >= 2, children  # a training worker and a parsing process
    server.kill()
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive, f"left running after the server died: {alive}"


def running(pid: int) -> bool:
    """Whether the process runs: a killed one not yet reaped (a zombie) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}
