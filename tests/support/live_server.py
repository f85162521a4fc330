"""A real `dnn-service serve` process on 127.0.0.1, for tests whose point is the HTTP path."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def spawned_workers(server_pid: int) -> list[int]:
    """Every process the server spawned (training workers, the body-parsing pool), from any of
    its threads: each thread lists the children it started, so the replacements the pool's
    monitor thread starts are found too."""
    children: list[str] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that has just ended
            children += (task / "children").read_text().split()
    pids = []
    for pid in children:
        with contextlib.suppress(FileNotFoundError):  # a process that has just ended
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in command and b"resource_tracker" not in command:
                pids.append(int(pid))
    return pids


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    def __init__(
        self,
        database_url: str,
        log_path: Path,
        workers: int = 2,
        *,
        serve_args: tuple[str, ...] = (),
        **env: str,
    ) -> None:
        self.database_url = database_url
        self.serve_args = serve_args
        self.log_path = log_path
        self.workers = workers
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    @classmethod
    def in_folder(
        cls, folder: Path, workers: int = 2, *, serve_args: tuple[str, ...] = (), **env: str
    ) -> LiveServer:
        """A server whose SQLite file and log live in folder."""
        return cls(
            f"sqlite:///{folder / 'service.db'}",
            folder / "server.log",
            workers,
            serve_args=serve_args,
            **env,
        )

    def __enter__(self) -> LiveServer:
        # `with server.start():` must not start a second server: that one fails to bind, and
        # the first, no longer tracked, outlives the test.
        if self.process is not None and self.process.poll() is None:
            return self
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30.0) -> LiveServer:
        env = {**os.environ, "DNN_DATABASE_URL": self.database_url, **self.env}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *self.serve_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited early; see {self.log_path}:\n{self.log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30.0)
