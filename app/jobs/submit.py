"""Accepting a training request: resolve its dataset, check the task fits, write the job row."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import ingest, names
from app.db.tables import Dataset, Job
from app.errors import InvalidInput, LimitExceeded, TooManyRequests
from app.schemas.jobs import TrainRequest
from app.settings import Settings
from app.store import datasets, jobs

COMPATIBLE_TASKS = {
    "binary": {"binary"},
    "multiclass": {"binary", "multiclass"},
    "regression": {"regression", "binary", "multiclass"},
}


def _check_limits(request: TrainRequest, settings: Settings) -> None:
    hp = request.hyperparameters
    if len(hp.hidden_layers) > settings.max_hidden_layers:
        raise LimitExceeded(
            f"{len(hp.hidden_layers)} hidden layers requested; at most {settings.max_hidden_layers}"
        )
    widest = max(hp.hidden_layers, default=0)
    if widest > settings.max_layer_width:
        raise LimitExceeded(f"a hidden layer of {widest} units; at most {settings.max_layer_width}")
    if hp.n_iterations > settings.max_iterations:
        raise LimitExceeded(
            f"{hp.n_iterations} iterations requested; at most {settings.max_iterations}"
        )


def _check_task(task: str, dataset: Dataset) -> None:
    if task == "auto":
        return
    if dataset.task not in COMPATIBLE_TASKS[task]:
        raise InvalidInput(
            f"task {task!r} does not fit this dataset, whose labels make it a {dataset.task} task",
            [{"loc": ["hyperparameters", "task"], "msg": f"dataset task is {dataset.task}"}],
        )
    if task == "binary" and len(dataset.classes or []) != 2:
        raise InvalidInput("task 'binary' needs exactly two classes")


def submit_training(
    session: Session, tenant_id: str, request: TrainRequest, settings: Settings
) -> Job:
    _check_limits(request, settings)
    active = jobs.count_active_jobs(session, tenant_id)
    if active >= settings.max_active_jobs_per_tenant:
        raise TooManyRequests(
            f"{active} jobs are already queued or running for this tenant; "
            f"at most {settings.max_active_jobs_per_tenant} at once"
        )
    if request.dataset is not None:
        parsed = ingest.from_rows(
            request.dataset.features, request.dataset.labels, ingest.Limits.from_settings(settings)
        )
        dataset = datasets.create_dataset(
            session,
            tenant_id=tenant_id,
            name=request.dataset.name or request.name or "inline",
            X=parsed.X,
            y=parsed.y,
            task=parsed.task,
            classes=parsed.classes,
        )
    else:
        assert request.dataset_id is not None  # the schema guarantees one of the two
        dataset = datasets.get_dataset(session, tenant_id, request.dataset_id)
    hp = request.hyperparameters
    _check_task(hp.task, dataset)
    if hp.batch_size is not None and hp.batch_size > dataset.n_samples:
        raise InvalidInput(
            f"batch_size {hp.batch_size} exceeds the dataset's {dataset.n_samples} samples",
            [{"loc": ["hyperparameters", "batch_size"], "msg": "larger than the dataset"}],
        )
    return jobs.create_job(
        session,
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        hyperparameters=hp.model_dump(),
        # A name given is valid (the schema checks it); one made from the dataset's is made so.
        model_name=request.name or names.to_model_name(dataset.name),
        n_iterations=hp.n_iterations,
    )
