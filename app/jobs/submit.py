"""Accepting a training request: check it, write the job row, hand it to the executor.

:func:`submit_and_dispatch` is the whole of POST /train's service work, idempotency included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from app import ingest, names
from app.db.tables import Dataset, Job
from app.errors import InvalidInput, LimitExceeded, ServiceUnavailable, TooManyRequests
from app.job_status import JobStatus
from app.jobs.resume import plan_resume
from app.jobs.spec import decide_task
from app.schemas.jobs import Hyperparameters, JobAccepted, TrainRequest
from app.serving import dtype_limit
from app.settings import Settings
from app.store import checkpoints, datasets, idempotency, jobs
from core.preprocessing import (
    as_feature_matrix,
    fit_standardization,
    split_indices,
    standardize,
)

if TYPE_CHECKING:
    # Only a type here: importing the executors would import the runner, which imports the
    # sweeps that import this module.
    from app.jobs.dispatch import Executor

NOT_DISPATCHED = "not started: the job queue was unreachable at submission"

TRAIN_SCOPE = "POST /train"


def _limit_exceeded(hp: Hyperparameters, field: str, message: str) -> LimitExceeded:
    # A default beyond a deployment's lower limit: say so, or the client that sent no
    # n_iterations reads "500 iterations requested" and wonders where it asked for them.
    if field not in hp.model_fields_set:
        message += f" (the default; send hyperparameters.{field} within the limit)"
    return LimitExceeded(message, [{"loc": ["hyperparameters", field], "msg": "over the limit"}])


def check_limits(hp: Hyperparameters, settings: Settings) -> None:
    """The deployment's limits (settings) are the only bounds on the network's size and run."""
    if len(hp.hidden_layers) > settings.max_hidden_layers:
        raise _limit_exceeded(
            hp,
            "hidden_layers",
            f"{len(hp.hidden_layers)} hidden layers requested; at most {settings.max_hidden_layers}",
        )
    widest = max(hp.hidden_layers, default=0)
    if widest > settings.max_layer_width:
        raise _limit_exceeded(
            hp,
            "hidden_layers",
            f"a hidden layer of {widest} units; at most {settings.max_layer_width}",
        )
    if hp.n_iterations > settings.max_iterations:
        raise _limit_exceeded(
            hp,
            "n_iterations",
            f"{hp.n_iterations} iterations requested; at most {settings.max_iterations}",
        )


def _dataset(
    session: Session, tenant_id: str, request: TrainRequest, settings: Settings
) -> Dataset:
    if request.dataset is None:
        assert request.dataset_id is not None  # the schema guarantees one of the two
        return datasets.get_dataset(session, tenant_id, request.dataset_id)
    parsed = ingest.from_rows(
        request.dataset.features, request.dataset.labels, ingest.Limits.from_settings(settings)
    )
    return datasets.create_dataset(
        session,
        tenant_id=tenant_id,
        name=request.dataset.name or request.name or "inline",
        X=parsed.X,
        y=parsed.y,
        task=parsed.task,
        classes=parsed.classes,
    )


def submit_training(
    session: Session, tenant_id: str, request: TrainRequest, settings: Settings
) -> Job:
    """Write the queued job row (in the caller's transaction), its task decided.

    A request continuing a model or a stopped job (resume_from, resume_from_job) takes the
    parent's hyperparameters, dataset and name where it gives none, and its training state as
    the new job's first checkpoint.
    """
    # Held to the end of the caller's transaction, so the count below and the insert are one
    # step, and the dataset read (by the plan or below) cannot be deleted before the insert.
    jobs.lock_tenant_jobs(session, tenant_id)
    plan = plan_resume(session, tenant_id, request)
    hp = plan.hyperparameters if plan is not None else request.hyperparameters
    check_limits(hp, settings)
    active = jobs.count_active_jobs(session, tenant_id)
    if active >= settings.max_active_jobs_per_tenant:
        raise TooManyRequests(
            f"{active} jobs are already queued or running for this tenant; "
            f"at most {settings.max_active_jobs_per_tenant} at once"
        )
    dataset = plan.dataset if plan is not None else _dataset(session, tenant_id, request, settings)
    hp = spec_for_dataset(hp, dataset)
    job = jobs.create_job(
        session,
        tenant_id=tenant_id,
        dataset_id=dataset.id,
        hyperparameters=hp.model_dump(mode="json"),
        # A name given is valid (the schema checks it); one made from the dataset's is made so.
        model_name=(
            plan.model_name
            if plan is not None
            else request.name or names.to_model_name(dataset.name)
        ),
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


def spec_for_dataset(hp: Hyperparameters, dataset: Dataset) -> Hyperparameters:
    """What a job on `dataset` stores: its task decided, its batch size and validation split
    checked against the dataset (422 if they do not fit)."""
    # The one place the learning task is decided; the job stores it, the worker builds from it.
    task = decide_task(hp.task, dataset.task, dataset.classes)
    if hp.batch_size is not None and hp.batch_size > dataset.n_samples:
        raise InvalidInput(
            f"batch_size {hp.batch_size} exceeds the dataset's {dataset.n_samples} samples",
            [{"loc": ["hyperparameters", "batch_size"], "msg": "larger than the dataset"}],
        )
    if hp.validation_fraction > 0:
        # The split core.preprocessing.split_indices makes: refused there, the job failed
        # after its 202 instead of being refused here.
        n_validation = round(dataset.n_samples * hp.validation_fraction)
        if not 1 <= n_validation < dataset.n_samples:
            raise InvalidInput(
                f"validation_fraction {hp.validation_fraction} of the dataset's "
                f"{dataset.n_samples} samples is {n_validation} validation samples; it needs at "
                "least one for validation and one for training",
                [{"loc": ["hyperparameters", "validation_fraction"], "msg": "empty split"}],
            )
    check_fits_dtype(hp.dtype, dataset)
    if hp.standardize:
        check_standardization_fits(hp, dataset)
    return hp.model_copy(update={"task": task})


def check_fits_dtype(dtype_name: str, dataset: Dataset) -> None:
    """Refuse (422) a dataset holding a value the network's dtype cannot: the worker's cast would
    make it infinite and fail the job after its 202 (1e39 does not fit float32)."""
    dtype = np.dtype(dtype_name)
    largest = dataset.max_abs_value
    if largest is None:  # stored before it was recorded
        arrays = datasets.decode_arrays(dataset.data)
        largest = datasets.largest_magnitude(arrays.X, arrays.y, dataset.task)
    # The cast's own verdict: a value within half a unit in the last place of the limit rounds
    # to it, as the worker's cast would round it.
    with np.errstate(over="ignore"):
        if np.isfinite(np.asarray(largest).astype(dtype)):
            return
    limit = dtype_limit(dtype)
    where = _first_beyond(datasets.decode_arrays(dataset.data), dataset.task, limit)
    message = (
        f"{where} is beyond ±{limit:g}, the range of {dtype.name}: it would become infinite "
        f'when training casts it; send hyperparameters.dtype "float64" or rescale those values'
    )
    raise InvalidInput(message, [{"loc": ["hyperparameters", "dtype"], "msg": message}])


def check_standardization_fits(hp: Hyperparameters, dataset: Dataset) -> None:
    """Refuse (422) a dataset whose values fit the dtype but whose standardization does not:
    3.4e38 and -3.4e38 in one float32 feature put a value 4.5e38 from the mean, the worker's
    ``X - mean`` became infinite, and the job failed after its 202 as "training diverged"."""
    dtype = np.dtype(hp.dtype)
    largest = dataset.max_abs_value
    # A bound that needs no data: the fit (core.preprocessing.fit_standardization) sums and
    # squares in float64, so it overflows only past sqrt(float64 max / n) from the mean; the
    # subtraction in the dtype only past its max. A deviation is at most twice the largest
    # |value|; the extra half is a margin for rounding near the bound.
    float64_max = float(np.finfo(np.float64).max)
    bound = min(dtype_limit(dtype), np.sqrt(float64_max / dataset.n_samples)) / 4
    if largest is not None and largest <= bound:
        return
    column = _first_unstandardizable(datasets.decode_arrays(dataset.data), hp, dtype)
    if column is None:
        return
    message = (
        f"feature {column} (0-based) spreads too far to standardize in {dtype.name}: its mean, "
        "standard deviation or distance from the mean is beyond the dtype's range and would "
        'become infinite in training; send hyperparameters.dtype "float64", rescale that '
        "feature, or send hyperparameters.standardize false"
    )
    raise InvalidInput(message, [{"loc": ["hyperparameters", "dtype"], "msg": message}])


def _first_unstandardizable(
    arrays: datasets.DatasetArrays, hp: Hyperparameters, dtype: np.dtype[Any]
) -> int | None:
    """The first feature the worker's standardization would make non-finite, or None: the same
    split and the same core functions in the same dtype, so the verdict is the worker's."""
    X = as_feature_matrix(arrays.X, int(np.prod(arrays.X.shape[1:])), dtype)
    rng = np.random.default_rng(hp.seed)
    train_rows, _ = split_indices(len(X), hp.validation_fraction, rng)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        mean, scale = fit_standardization(X[train_rows])
        # Every row, validation rows included, is standardized with the training rows' fit.
        finite = np.isfinite(standardize(X, mean, scale)).all(axis=0)
    finite &= np.isfinite(mean) & np.isfinite(scale)
    bad = np.flatnonzero(~finite)
    return int(bad[0]) if len(bad) else None


def _first_beyond(arrays: datasets.DatasetArrays, task: str, limit: float) -> str:
    """Where the first value beyond `limit` is, in the words of the upload (only called when
    there is one)."""
    X = arrays.X.reshape(arrays.X.shape[0], -1)
    beyond = np.argwhere(np.abs(X) > limit)
    if len(beyond):
        row, column = (int(i) for i in beyond[0])
        return f"feature {column} (0-based) of sample {row} is {float(X[row, column]):g}, which"
    y = arrays.y.reshape(arrays.y.shape[0], -1)
    assert task == "regression"  # class labels are never cast
    row, column = (int(i) for i in np.argwhere(np.abs(y) > limit)[0])
    output = f" (output {column})" if y.shape[1] > 1 else ""
    return f"the regression target{output} of sample {row} is {float(y[row, column]):g}, which"


def accepted_body(job: Job) -> dict[str, Any]:
    return JobAccepted(
        id=job.id,
        job_id=job.id,
        status=JobStatus.QUEUED,
        dataset_id=str(job.dataset_id),
        location=f"/jobs/{job.id}",
    ).model_dump(mode="json")


def submit_and_dispatch(
    session: Session,
    executor: Executor,
    tenant_id: str,
    request: TrainRequest,
    settings: Settings,
    *,
    idempotency_key: str | None,
    digest: str,
) -> idempotency.Outcome:
    """Queue a training job and hand it to the executor; returns the 202 answer (or its replay).

    ``session`` must have no transaction open. The job row and its idempotency record are one
    transaction, committed before the executor hears of the job (a worker must find it when the
    message arrives); if the executor is unreachable, the job is closed as failed, the key is
    released and :class:`ServiceUnavailable` (503) propagates, so a client told 503 never also
    finds a queued job that would never start.
    """

    def accept() -> tuple[int, dict[str, Any]]:
        return 202, accepted_body(submit_training(session, tenant_id, request, settings))

    with session.begin():
        outcome = idempotency.run_once(
            session,
            tenant_id=tenant_id,
            scope=TRAIN_SCOPE,
            key=idempotency_key,
            digest=digest,
            act=accept,
        )
    if outcome.replayed:
        return outcome
    job_id = str(outcome.response["job_id"])
    try:
        executor.submit(job_id)
    except ServiceUnavailable:
        with session.begin():
            jobs.fail_unstarted_job(session, job_id, NOT_DISPATCHED)
            if idempotency_key:
                idempotency.forget(session, tenant_id, TRAIN_SCOPE, idempotency_key)
        raise
    with session.begin():
        jobs.mark_dispatched(session, job_id)
    return outcome
