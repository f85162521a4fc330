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
import tempfile

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
    import uvicorn

    if settings.api_workers == 1:
        from app.main import create_app

        app = create_app(settings, auth_mode=mode)
        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
        return
    supervise(args, settings, mode)


def supervise(args: argparse.Namespace, settings: Settings, mode: AuthMode) -> None:
    import uvicorn

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
        uvicorn.run(
            "app.cli_serve:api_process_app",
            factory=True,
            workers=settings.api_workers,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    finally:
        if executor is not None:
            executor.stop()
        shutil.rmtree(metrics_dir, ignore_errors=True)
