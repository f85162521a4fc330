"""`dnn-service serve`: one process, or a supervisor with N API processes (--api-workers N).

With N > 1 the serve parent is the supervisor: it migrates, decides the auth mode once, runs the
training-worker pool and its reconciler, and starts N uvicorn worker processes that only serve
HTTP, each with its own model cache and parsing pool. They share the listening socket (the kernel
spreads connections over them) and write their Prometheus samples to a directory the parent
creates and removes, so /metrics, answered by any of them, sums the counters of all.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import socket
import tempfile

import uvicorn
from fastapi import FastAPI

from app.auth import AuthMode
from app.settings import Settings

log = logging.getLogger("app")

# How the parent tells its API processes the auth mode it decided (they do not decide again).
AUTH_MODE_VARIABLE = "DNN_SERVE_AUTH_MODE"
MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def api_process_app() -> FastAPI:
    """The app of one API process under the supervisor (uvicorn's factory, in the child)."""
    from app.main import create_app

    mode = AuthMode(os.environ.get(AUTH_MODE_VARIABLE, AuthMode.KEYS.value))
    return create_app(Settings(), auth_mode=mode, run_executor=False)


def serve(args: argparse.Namespace, settings: Settings, mode: AuthMode) -> None:
    if settings.api_workers == 1:
        from app.main import create_app

        app = create_app(settings, auth_mode=mode)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
        return
    supervise(args, settings, mode)


class TcpConfig(uvicorn.Config):
    """uvicorn's config, with a listening socket that says it is TCP.

    uvicorn binds the shared socket of its worker processes as socket.socket(family) (proto 0),
    and asyncio sets TCP_NODELAY only on connections whose socket says IPPROTO_TCP: every
    connection then had Nagle's algorithm on, and small answers waited ~40 ms for the client's
    delayed ACK (340 req/s against 2,100 with one process, measured).
    """

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
            tcp.set_inheritable(True)
            return tcp
        return sock


def supervise(args: argparse.Namespace, settings: Settings, mode: AuthMode) -> None:
    from app.jobs.dispatch import make_executor

    # Celery: each API process publishes and reconciles itself, as separate replicas would.
    executor = make_executor(settings) if settings.executor == "local" else None
    metrics_dir = tempfile.mkdtemp(prefix="dnn-service-metrics-")
    os.environ[MULTIPROC_VARIABLE] = metrics_dir
    os.environ[AUTH_MODE_VARIABLE] = mode.value
    log.info(
        "supervising %d API processes; training workers: %s",
        settings.api_workers,
        settings.workers if executor is not None else "celery",
    )
    try:
        if executor is not None:
            executor.start()
        from uvicorn.supervisors import Multiprocess

        config = TcpConfig(
            "app.cli.serve:api_process_app",
            factory=True,
            workers=settings.api_workers,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if executor is not None:
            executor.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
