"""Celery is configured for long CPU-bound jobs, from the same Settings every process reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

# Read in a fresh interpreter: importing the app here would import `core`, which this test
# process resolves to tests/core.
PROBE = """
import json
from app.jobs.celery_app import make_worker_celery
from app.settings import Settings
conf = make_worker_celery(Settings()).conf
print(json.dumps({key: conf[key] for key in (
    "task_acks_late", "task_reject_on_worker_lost", "worker_prefetch_multiplier",
    "task_serializer", "result_serializer", "accept_content", "task_time_limit",
    "broker_transport_options", "broker_url", "task_default_queue", "task_ignore_result")}))
"""


def celery_conf(**env: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    conf: dict[str, Any] = json.loads(result.stdout)
    return conf


def test_celery_runs_one_long_job_per_process_and_never_starts_it_twice() -> None:
    conf = celery_conf(
        DNN_BROKER_URL="redis://127.0.0.1:6379/7",
        DNN_CELERY_QUEUE="jobs-here",
        DNN_JOB_TIME_LIMIT_SECONDS="7200",
    )
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == ["json"]
    assert conf["task_ignore_result"] is True
    # The runner stops at the job limit; Celery's hard limit is a backstop above it, and Redis
    # must not redeliver a message while its job may still be running.
    assert conf["task_time_limit"] > 7200
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    assert conf["broker_url"] == "redis://127.0.0.1:6379/7"
    assert conf["task_default_queue"] == "jobs-here"
