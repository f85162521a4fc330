"""Celery is configured for long CPU-bound jobs, from the same Settings every process reads."""

from __future__ import annotations

from typing import Any

from app.jobs.celery_app import make_worker_celery
from app.settings import Settings


def celery_conf(**overrides: Any) -> dict[str, Any]:
    conf = make_worker_celery(Settings(**overrides)).conf
    keys = (
        "task_acks_late",
        "task_reject_on_worker_lost",
        "worker_prefetch_multiplier",
        "task_serializer",
        "result_serializer",
        "accept_content",
        "task_time_limit",
        "broker_transport_options",
        "broker_url",
        "task_default_queue",
        "task_ignore_result",
    )
    return {key: conf[key] for key in keys}


def test_celery_runs_one_long_job_per_process_and_never_starts_it_twice() -> None:
    conf = celery_conf(
        broker_url="redis://127.0.0.1:6379/7",
        celery_queue="jobs-here",
        job_time_limit_seconds="7200",
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
