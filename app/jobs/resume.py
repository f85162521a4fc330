"""Continuing training: POST /train with resume_from (a model) or resume_from_job (a stopped job).

The parent's training state becomes the new job's first checkpoint, so the worker treats a
continued run exactly like a run resumed after a crash. What is kept and what may change:

- kept: the architecture (hidden layers, activation, task, dtype, input shape, classes) and the
  standardization; sending a different value is a 422;
- may change: learning rate, schedule (its position is the iteration count), L2, batch size,
  early stopping, record_every, the optimizer's constants; another optimizer starts afresh;
- the dataset defaults to the parent's; another one with the same features is allowed
  (fine-tuning): its validation split is then drawn anew, as when validation_fraction changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.db.tables import Dataset, Job, JobStatus, Model
from app.errors import Conflict, InvalidInput, StoredModelCorrupt
from app.jobs.spec import decide_task
from app.schemas.jobs import Hyperparameters, TrainRequest
from app.store import checkpoints, datasets, jobs, models
from core import ModelFormatError, TrainState

# Hyperparameters that define the network a state's parameters belong to.
ARCHITECTURE_KEYS = ("hidden_layers", "activation", "dtype", "standardize")
CONTINUABLE = frozenset({JobStatus.CANCELLED, JobStatus.FAILED})


@dataclass(frozen=True)
class ResumePlan:
    """What a continued job is made of."""

    hyperparameters: Hyperparameters
    dataset: Dataset
    model_name: str
    parent_model_id: str | None
    parent_job_id: str | None
    start_iteration: int
    state: bytes


@dataclass(frozen=True)
class _Parent:
    hyperparameters: dict[str, Any]
    task: str | None
    dataset_id: str | None
    model_name: str
    state: bytes
    model: Model | None = None
    job: Job | None = None


def plan_resume(session: Session, tenant_id: str, request: TrainRequest) -> ResumePlan | None:
    """The continued job's spec, or None for a fresh run. Raises 404/409/422 domain errors."""
    if request.resume_from is not None:
        parent = _from_model(session, tenant_id, request.resume_from)
    elif request.resume_from_job is not None:
        parent = _from_job(session, tenant_id, request.resume_from_job)
    else:
        return None
    sent = request.sent_hyperparameters()
    _check_architecture(parent, sent)
    hyperparameters = _merge(parent, sent)
    dataset = _dataset(session, tenant_id, request, parent)
    try:
        state = TrainState.from_bytes(parent.state)
    except ModelFormatError as exc:
        raise StoredModelCorrupt(f"the stored training state cannot be read: {exc}") from None
    _check_dataset(dataset, parent, state)
    data = parent.state
    fraction = parent.hyperparameters.get("validation_fraction", 0.0)
    if dataset.id != parent.dataset_id or hyperparameters.validation_fraction != fraction:
        # The split, the shuffling and early stopping's best cost belong to the old rows.
        data = state.for_new_data().to_bytes()
    return ResumePlan(
        hyperparameters=hyperparameters,
        dataset=dataset,
        model_name=request.name or parent.model_name,
        parent_model_id=parent.model.id if parent.model is not None else None,
        parent_job_id=parent.job.id if parent.job is not None else None,
        start_iteration=state.iteration,
        state=data,
    )


def _from_model(session: Session, tenant_id: str, model_id: str) -> _Parent:
    model = models.get_model(session, tenant_id, model_id)
    state = models.stored_train_state(session, model)
    if state is None:
        raise Conflict(
            f"model {model_id!r} was stored without its training state (it predates resumable "
            "training) and cannot be continued"
        )
    job = session.get(Job, model.job_id) if model.job_id else None
    hyperparameters = dict(job.hyperparameters) if job and job.tenant_id == tenant_id else {}
    architecture = model.architecture
    # The model's own record of its network wins over its job's request.
    hyperparameters |= {
        "hidden_layers": list(architecture["layer_dims"][1:-1]),
        "activation": architecture["hidden_activation"],
        "dtype": architecture["dtype"],
        "standardize": bool(architecture.get("standardized", False)),
    }
    return _Parent(
        hyperparameters=hyperparameters,
        task=str(architecture["task"]),
        dataset_id=model.dataset_id,
        model_name=model.name,
        state=state,
        model=model,
    )


def _from_job(session: Session, tenant_id: str, job_id: str) -> _Parent:
    job = jobs.get_job(session, tenant_id, job_id)
    if job.status not in CONTINUABLE:
        hint = " (continue its model with resume_from)" if job.model_id else ""
        raise Conflict(
            f"job {job_id!r} is {job.status}; only a cancelled or failed job can be continued{hint}"
        )
    checkpoint = checkpoints.load_checkpoint(session, job_id)
    if checkpoint is None:
        raise Conflict(f"job {job_id!r} kept no training state: it stopped before its first one")
    hyperparameters = dict(job.hyperparameters)
    task = None
    if job.dataset_id is not None:
        parent_dataset = session.get(Dataset, job.dataset_id)
        if parent_dataset is not None:
            requested = hyperparameters.get("task", "auto")
            task = decide_task(requested, parent_dataset.task, parent_dataset.classes)
    return _Parent(
        hyperparameters=hyperparameters,
        task=task,
        dataset_id=job.dataset_id,
        model_name=job.model_name,
        state=checkpoint.state,
        job=job,
    )


def _check_architecture(parent: _Parent, sent: dict[str, Any]) -> None:
    changed = [
        key
        for key in ARCHITECTURE_KEYS
        if key in sent
        and key in parent.hyperparameters
        and sent[key] != parent.hyperparameters[key]
    ]
    task = sent.get("task", "auto")
    if parent.task is not None and task not in ("auto", parent.task):
        changed.append("task")
    if changed:
        raise InvalidInput(
            f"continued training keeps the network: {', '.join(changed)} cannot change",
            [
                {
                    "loc": ["hyperparameters", key],
                    "msg": f"the parent has {parent.hyperparameters.get(key, parent.task)!r}",
                }
                for key in changed
            ],
        )


def _merge(parent: _Parent, sent: dict[str, Any]) -> Hyperparameters:
    """The parent's hyperparameters, overridden by those the request sent."""
    known = {k: v for k, v in parent.hyperparameters.items() if k in Hyperparameters.model_fields}
    merged = known | sent
    if parent.task is not None:
        merged["task"] = parent.task
    try:
        return Hyperparameters.model_validate(merged)
    except ValidationError as exc:
        raise InvalidInput(
            "the parent's hyperparameters with the ones sent are not valid together",
            [{"loc": ["hyperparameters", *e["loc"]], "msg": e["msg"]} for e in exc.errors()],
        ) from None


def _dataset(session: Session, tenant_id: str, request: TrainRequest, parent: _Parent) -> Dataset:
    if request.dataset_id is not None:
        return datasets.get_dataset(session, tenant_id, request.dataset_id)
    if request.dataset is not None:
        raise InvalidInput(
            "continue training on a stored dataset: upload it first and give its dataset_id"
        )
    if parent.dataset_id is None:
        raise InvalidInput("the parent's dataset was deleted; give a dataset_id")
    dataset = session.get(Dataset, parent.dataset_id)
    if dataset is None or dataset.tenant_id != tenant_id:
        raise InvalidInput("the parent's dataset was deleted; give a dataset_id")
    return dataset


def _check_dataset(dataset: Dataset, parent: _Parent, state: TrainState) -> None:
    problems = []
    if parent.model is not None:
        architecture = parent.model.architecture
        if list(dataset.input_shape) != list(architecture["input_shape"]):
            problems.append(
                f"the dataset's samples have shape {list(dataset.input_shape)}, the model's "
                f"{list(architecture['input_shape'])}"
            )
    if state.classes is not None and [str(c) for c in dataset.classes or []] != [
        str(c) for c in state.classes
    ]:
        problems.append(
            f"the dataset's classes {dataset.classes} are not the network's {state.classes}"
        )
    if state.feature_mean is not None and dataset.n_features != len(state.feature_mean):
        problems.append(
            f"the dataset has {dataset.n_features} features, the network {len(state.feature_mean)}"
        )
    if problems:
        raise InvalidInput(
            "the dataset does not fit the network being continued: " + "; ".join(problems),
            [{"loc": ["dataset_id"], "msg": problem} for problem in problems],
        )
