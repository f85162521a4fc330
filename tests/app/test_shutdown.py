"""Stopping the server leaves nothing behind: no leaked semaphores, whichever signal stops it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for
from live_server import LiveServer

pytestmark = pytest.mark.slow


def resource_tracker(server_pid: int) -> int:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    for pid in children:
        if b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError("the server started no resource tracker")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_no_leaked_semaphores_at_shutdown(tmp_path: Path, stop_signal: signal.Signals) -> None:
    server = LiveServer.in_folder(tmp_path, workers=2).start()
    assert server.process is not None
    with server.client() as client:
        # A job makes the pool use its wake-up queue (and so its feeder thread) too.
        dataset = client.post("/datasets", json=blobs()).json()["id"]
        wait_for(client, submit(client, dataset, n_iterations=5), TERMINAL)
    tracker = resource_tracker(server.process.pid)
    server.process.send_signal(stop_signal)
    server.process.wait(30)
    # The tracker reports leaks when the server has gone, then exits itself.
    deadline = time.monotonic() + 15
    while Path(f"/proc/{tracker}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = server.log_path.read_text()
    assert "Application shutdown complete" in log
    assert "leaked" not in log, log[-2000:]
