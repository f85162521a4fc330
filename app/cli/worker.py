"""`dnn-service worker [--concurrency N]`: a Celery worker that runs training jobs.

It reads the same Settings (DNN_DATABASE_URL, DNN_BROKER_URL, ...) as `dnn-service serve`, and
does not migrate: the schema is the API's or the migrate step's business.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from app.settings import Settings


def _on_child_start(**_kwargs: Any) -> None:
    from app.jobs.local import die_with_parent

    # A pool child outliving its worker would keep training a job nobody will acknowledge.
    die_with_parent()


def _worker(args: argparse.Namespace) -> int:
    # Imported here so the other subcommands (migrate, keys) load neither Celery nor the core.
    from celery.signals import worker_process_init

    from app.jobs.celery_app import make_worker_celery

    settings = Settings()
    # A worker host trains only: every core, unless DNN_WORKERS says otherwise (the default of
    # cpus - 1 leaves a core to an API on the same machine).
    workers = settings.workers if "workers" in settings.model_fields_set else os.cpu_count()
    concurrency = args.concurrency or max(workers or 1, 1)
    worker_process_init.connect(_on_child_start, weak=False)
    app = make_worker_celery(settings)
    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--queues={settings.celery_queue}",
            # Two workers on one host need distinct node names.
            f"--hostname=dnn-worker-{os.getpid()}@%h",
            f"--loglevel={args.log_level}",
            # Jobs are coordinated through the database, not worker-to-worker chatter.
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        # argparse's own message would name this function ("invalid _positive_int value").
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `worker` subcommand to the `dnn-service` parser's subcommands."""
    worker = commands.add_parser("worker", help="run a Celery worker that trains queued jobs")
    worker.add_argument(
        "--concurrency",
        type=_positive_int,
        default=None,
        help="training processes in this worker (default: DNN_WORKERS, else the CPU count)",
    )
    worker.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    worker.set_defaults(handler=_worker)
