"""Client subcommands of `dnn-service`: train, watch, cancel, show, jobs, models, datasets, predict.

They talk to a running server through app.client. Progress and curves go to stderr; the one
result a script wants (a job or model id, predictions) goes to stdout, so `$(dnn-service train
... --watch)` captures the model id. `--output json` prints the server's answer as JSON instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console, RenderableType

from app.cli import tables as cli_tables
from app.cli.display import ProgressView, draw_curves
from app.cli.options import add_hyperparameter_options, hyperparameters_from
from app.cli.rows import read_rows
from app.client import Client, ClientError
from app.job_status import JobStatus

# Exit codes: 0 succeeded; argparse itself uses 2 for usage errors.
EXIT_JOB_FAILED = 1
EXIT_JOB_CANCELLED = 3
EXIT_REQUEST_FAILED = 4
EXIT_INTERRUPTED = 130
JSON = dict[str, Any]


def client_from_args(args: argparse.Namespace) -> Client:
    # httpx logs every request at INFO; that would bury the progress display.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return Client(args.url, args.api_key)


def json_out(value: Any) -> int:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
    return 0


def wants_json(args: argparse.Namespace) -> bool:
    return bool(args.output == "json")


def stdout_console() -> Console:
    return cli_tables.text_console(sys.stdout)


def fetch_and_show(
    args: argparse.Namespace,
    fetch: Callable[[Client], Any],
    table: Callable[[Any], RenderableType],
) -> int:
    """The read-only commands: one request, then its JSON (``-o json``) or a rich table."""
    with client_from_args(args) as api:
        value = fetch(api)
    if wants_json(args):
        return json_out(value)
    stdout_console().print(table(value))
    return 0


def _curves(job: JSON, err: TextIO) -> None:
    history = job["history"]
    if not history:
        return
    console = Console(file=err)
    hyperparameters = job.get("hyperparameters") or {}
    drawing = draw_curves(
        history,
        width=console.width,
        color=console.is_terminal,
        task=hyperparameters.get("task"),
        batch_size=hyperparameters.get("batch_size"),
    )
    err.write(drawing + "\n")


def follow(api: Client, job_id: str, err: TextIO, *, curves: bool = True) -> JSON:
    """Show live progress until the job ends, then its curves; the job's final summary."""
    view = ProgressView(err, job_id)
    job: JSON | None = None
    try:
        for update in api.watch(job_id):
            view.update(update.job, update.points)
            job = update.job
    finally:
        view.close()
    assert job is not None  # watch yields at least the final state
    if curves:
        _curves(api.get_job(job_id, max_points=2000), err)
    return job


def _ending(job: JSON, job_id: str, args: argparse.Namespace) -> int:
    """The exit code and stdout line for a job that has ended."""
    if wants_json(args):
        json_out(job)
    elif job["status"] == "succeeded":
        sys.stdout.write(str(job["model_id"]) + "\n")
    if job["status"] == "succeeded":
        return 0
    if job["status"] == "cancelled":
        sys.stderr.write(f"job {job_id} was cancelled\n")
        return EXIT_JOB_CANCELLED
    sys.stderr.write(f"job {job_id} failed: {cli_tables.visible(job.get('error'))}\n")
    return EXIT_JOB_FAILED


def _watch_or_cancel(api: Client, job_id: str, args: argparse.Namespace) -> int:
    try:
        job = follow(api, job_id, sys.stderr, curves=not args.no_curves)
    except KeyboardInterrupt:
        api.cancel(job_id)
        sys.stderr.write(f"\ncancelling job {job_id}\n")
        return EXIT_INTERRUPTED
    return _ending(job, job_id, args)


def _train(args: argparse.Namespace) -> int:
    err: TextIO = sys.stderr
    with client_from_args(args) as api:
        if args.dataset is not None:
            dataset = api.get_dataset(args.dataset)
        else:
            dataset = api.upload_dataset(args.data, label_column=args.label_column)
        err.write(
            f"dataset {dataset['id']}: {dataset['n_samples']} samples, "
            f"{dataset['n_features']} features, task {dataset['task']}\n"
        )
        accepted = api.train(dataset["id"], hyperparameters_from(args), name=args.name)
        job_id = str(accepted["id"])
        err.write(f"job {job_id} queued\n")
        if not args.watch:
            return json_out(accepted) if wants_json(args) else print_line(job_id)
        return _watch_or_cancel(api, job_id, args)


def print_line(text: str) -> int:
    sys.stdout.write(text + "\n")
    return 0


def _watch(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        return _watch_or_cancel(api, args.job, args)


def _cancel(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        job = api.cancel(args.job)
    if wants_json(args):
        return json_out(job)
    return print_line(f"job {job['id']} is {job['status']}")


def _show(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        try:
            job = api.get_job(args.id, max_points=2000)
        except ClientError as exc:
            if exc.status != 404:
                raise
            try:
                model = api.get_model(args.id)
            except ClientError as missing:
                if missing.status != 404:
                    raise
                # The id was looked up as both: say so, not only the model half.
                message = f"no job or model has the id {args.id!r}"
                raise ClientError(404, "not_found", message) from missing
            if wants_json(args):
                return json_out(model)
            stdout_console().print(cli_tables.model_details(model))
            return 0
    if wants_json(args):
        return json_out(job)
    stdout_console().print(cli_tables.job_details(job))
    if not args.no_curves:
        _curves(job, sys.stdout)
    return 0


def _filtered(table: Callable[[Any], RenderableType], nothing: str | None) -> Any:
    """The table, or, when a filter matched nothing, a line saying so (not "none yet")."""
    return lambda items: table(items) if items or nothing is None else nothing


def _jobs(args: argparse.Namespace) -> int:
    nothing = f"no {args.status} jobs" if args.status else None
    return fetch_and_show(
        args,
        lambda api: api.list_jobs(status=args.status, limit=args.limit),
        _filtered(cli_tables.jobs_table, nothing),
    )


def _models(args: argparse.Namespace) -> int:
    nothing = f"no model is named {args.name!r}" if args.name else None
    return fetch_and_show(
        args,
        lambda api: api.list_models(name=args.name, limit=args.limit),
        _filtered(cli_tables.models_table, nothing),
    )


def _datasets(args: argparse.Namespace) -> int:
    return fetch_and_show(
        args, lambda api: api.list_datasets(limit=args.limit), cli_tables.datasets_table
    )


def _predict(args: argparse.Namespace) -> int:
    rows = read_rows(Path(args.data), args.label_column)
    with client_from_args(args) as api:
        result = api.predict(args.model, rows, version=args.version, alias=args.alias)
        classes: list[Any] = []
        if args.proba and not wants_json(args):
            classes = api.get_model(result["model_id"])["architecture"].get("classes") or []
    if wants_json(args):
        return json_out(result)
    probabilities = result.get("probabilities")
    if not args.proba or probabilities is None:
        if args.proba:
            sys.stderr.write("a regression model has no class probabilities\n")
        sys.stdout.write(
            "".join(f"{cli_tables.visible(value)}\n" for value in result["predictions"])
        )
        return 0
    # Tab-separated with a header: the prediction, then one probability per class.
    # Labels are any text: a tab or newline in one, written as such, would break the columns.
    header = ["prediction", *(f"p({cli_tables.visible(label)})" for label in classes)]
    lines = ["\t".join(header)]
    for label, row in zip(result["predictions"], probabilities, strict=True):
        lines.append("\t".join([cli_tables.visible(label), *(f"{p:.6f}" for p in row)]))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def guarded(handler: Any) -> Any:
    """Turn the server's refusals and unreadable files into one clear line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except ClientError as exc:
            # The server's message speaks HTTP; the command's user needs its own option.
            hint = " (pass --api-key KEY or set DNN_API_KEY)" if exc.status == 401 else ""
            # The server's message may quote a stored name or label.
            sys.stderr.write(f"error: {cli_tables.visible(exc)}{hint}\n")
            return EXIT_REQUEST_FAILED
        except OSError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_REQUEST_FAILED

    return run


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="server URL (env DNN_URL, else local :8000)")
    parser.add_argument("--api-key", default=None, help="sent as a Bearer token (env DNN_API_KEY)")


def add_common_options(parser: argparse.ArgumentParser, *, curves: bool = False) -> None:
    add_connection_options(parser)
    parser.add_argument(
        "--output", "-o", choices=["text", "json"], default="text", help="json: the server's answer"
    )
    if curves:
        parser.add_argument(
            "--no-curves", action="store_true", help="do not draw the learning curves"
        )


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the client subcommands."""
    train = commands.add_parser("train", help="upload a dataset (or reuse one) and train a model")
    train.add_argument("data", nargs="?", help="a .csv, .npz or .json dataset file")
    train.add_argument("--dataset", default=None, metavar="ID", help="an uploaded dataset's id")
    train.add_argument("--label-column", default=None, help="CSV only; default: last column")
    train.add_argument("--name", default=None, help="model name (default: from the dataset)")
    add_hyperparameter_options(train)
    train.add_argument(
        "--watch",
        action="store_true",
        help="show live progress, then the curves; print the model id; exit 0 only on success",
    )
    add_common_options(train, curves=True)
    # The train parser itself reports the error, so the usage shown is train's own.
    train.set_defaults(
        handler=guarded(_train), validate=lambda _top, args: _one_dataset(train, args)
    )

    watch = commands.add_parser("watch", help="follow a job live until it ends, then its curves")
    watch.add_argument("job", help="a job id")
    add_common_options(watch, curves=True)
    watch.set_defaults(handler=guarded(_watch))

    cancel = commands.add_parser("cancel", help="cancel a queued or running job")
    cancel.add_argument("job", help="a job id")
    add_common_options(cancel)
    cancel.set_defaults(handler=guarded(_cancel))

    show = commands.add_parser("show", help="a job (with its curves) or a model, in detail")
    show.add_argument("id", help="a job id or a model id")
    add_common_options(show, curves=True)
    show.set_defaults(handler=guarded(_show))

    jobs = commands.add_parser("jobs", help="list training jobs")
    jobs.add_argument("--status", choices=[status.value for status in JobStatus])
    jobs.add_argument("--limit", type=int, default=50)
    add_common_options(jobs)
    jobs.set_defaults(handler=guarded(_jobs))

    models = commands.add_parser("models", help="list models")
    models.add_argument("--name", default=None, help="only the versions of this model name")
    models.add_argument("--limit", type=int, default=50)
    add_common_options(models)
    models.set_defaults(handler=guarded(_models))

    datasets = commands.add_parser("datasets", help="list uploaded datasets")
    datasets.add_argument("--limit", type=int, default=50)
    add_common_options(datasets)
    datasets.set_defaults(handler=guarded(_datasets))

    predict = commands.add_parser("predict", help="predict the rows of a CSV or .npz with a model")
    predict.add_argument("model", help="a model id, or a model name (its latest version)")
    predict.add_argument("data", help="a CSV with a header row, or an .npz with X")
    predict.add_argument("--version", type=int, default=None, help="with a model name")
    predict.add_argument("--alias", default=None, help="with a model name, e.g. production")
    predict.add_argument("--label-column", default=None, help="a CSV column to leave out")
    predict.add_argument("--proba", action="store_true", help="also print each class's probability")
    add_common_options(predict)
    predict.set_defaults(handler=guarded(_predict))


def _one_dataset(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.data is None) == (args.dataset is None):
        parser.error("train needs a dataset file or --dataset ID (one of them)")
