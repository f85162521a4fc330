"""Accepting a training request: resolve its dataset, check the task fits, write the job row."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app import ingest
from app.db.tables import Dataset, Job
from app.errors import InvalidInput, LimitExceeded, TooManyRequests
from app.jobs.resume import plan_resume
from app.schemas.jobs import Hyperparameters, TrainRequest
from app.settings import Settings
from app.store import checkpoints, datasets, jobs

COMPATIBLE_TASKS = {
    "binary": {"binary"},
    "multiclass": {"binary", "multiclass"},
    "regression": {"regression", "binary", "multiclass"},
}


def _check_limits(hp: Hyperparameters, settings: Settings) -> None:
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
    plan = plan_resume(session, tenant_id, request)
    hp = plan.hyperparameters if plan is not None else request.hyperparameters
    _check_limits(hp, settings)
    active = jobs.count_active_jobs(session, tenant_id)
    if active >= settings.max_active_jobs_per_tenant:
        raise TooManyRequests(
            f"{active} jobs are already queued or running for this tenant; "
            f"at most {settings.max_active_jobs_per_tenant} at once"
        )
    if plan is not None:
        dataset = plan.dataset
    elif request.dataset is not None:
        parsed = ingest.from_rows(
            request.dataset.features, request.dataset.labels, max_cells=settings.max_dataset_cells
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
    _check_task(hp.task, dataset)
    if hp.batch_size is not None and hp.batch_size > dataset.n_samples:
        raise InvalidInput(
            f"batch_size {hp.batch_size} exceeds the dataset's {dataset.n_samples} samples",
            [{"loc": ["hyperparameters", "batch_size"], "msg": "larger than the dataset"}],
        )
    job = jobs.create_job(
        session,
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        hyperparameters=hp.model_dump(),
        model_name=plan.model_name if plan is not None else request.name or dataset.name,
        n_iterations=hp.n_iterations,
        start_iteration=plan.start_iteration if plan is not None else 0,
        parent_model_id=plan.parent_model_id if plan is not None else None,
        parent_job_id=plan.parent_job_id if plan is not None else None,
    )
    if plan is not None:
        # The parent's state is the new job's first checkpoint: its worker resumes from it as
        # from any checkpoint.
        checkpoints.save_checkpoint(session, job.id, plan.start_iteration, plan.state)
    return job
