"""Client subcommands of `dnn-service`: train (optionally --watch), jobs, predict.

They talk to a running server through app.client. Progress and curves go to stderr; the one
result a script wants (a job or model id, predictions) goes to stdout, so `$(dnn-service train
... --watch)` captures the model id.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO, get_args

import numpy as np

from app.client import Client, ClientError, WatchUpdate
from app.db.tables import JobStatus
from app.schemas.jobs import RequestedTask
from core.choices import DTYPES, HIDDEN_ACTIVATIONS, INITS, LR_SCHEDULES, OPTIMIZERS

# Exit codes: 0 succeeded; argparse itself uses 2 for usage errors.
EXIT_JOB_FAILED = 1
EXIT_JOB_CANCELLED = 3
EXIT_REQUEST_FAILED = 4
EXIT_INTERRUPTED = 130
BAR_WIDTH = 30
REQUESTED_TASKS: tuple[str, ...] = get_args(RequestedTask)


def _client(args: argparse.Namespace) -> Client:
    # httpx logs every request at INFO; that would bury the progress bar.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return Client(args.url, args.api_key)


def _hidden_layers(text: str) -> list[int]:
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected widths like 16,8, not {text!r}") from exc
    if not widths or any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError("hidden layer widths must be positive integers")
    return widths


def progress_line(job: dict[str, Any], last: dict[str, Any] | None) -> str:
    total = int(job.get("hyperparameters", {}).get("n_iterations") or 0)
    fraction = float(job.get("progress") or 0.0)
    filled = round(fraction * BAR_WIDTH)
    line = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {fraction:4.0%} {job['status']}"
    if last is not None:
        line += f"  iter {last['iteration']}/{total}  cost {last['cost']:.4g}"
        line += f"  accuracy {last['accuracy']:.4f}" if "accuracy" in last else ""
    return line


def ascii_curve(values: Sequence[float], title: str, width: int = 60, height: int = 10) -> str:
    """A line chart of values drawn with plain characters, one column per bucket of points."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return f"{title}: no finite values to draw"
    width = min(width, len(values))
    buckets = np.array_split(np.asarray(values, dtype=float), width)
    columns = [float(np.nanmean(bucket)) for bucket in buckets]
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    grid = [[" "] * width for _ in range(height)]
    for x, value in enumerate(columns):
        if math.isfinite(value):
            row = height - 1 - round((value - low) / span * (height - 1))
            grid[row][x] = "*"
    labels = [f"{high:>10.4g} |", *[" " * 10 + " |"] * (height - 2), f"{low:>10.4g} |"]
    lines = [f"{title} over {len(values)} recorded iterations"]
    lines += [label + "".join(row) for label, row in zip(labels, grid, strict=True)]
    lines.append(" " * 11 + "+" + "-" * width)
    return "\n".join(lines)


def watch(api: Client, job_id: str, err: TextIO) -> dict[str, Any]:
    """Draw a live progress bar until the job ends; then the cost and accuracy curves."""
    costs: list[float] = []
    accuracies: list[float] = []
    last: dict[str, Any] | None = None
    interactive = err.isatty()
    shown = -1
    update: WatchUpdate | None = None
    for update in api.watch(job_id):
        for point in update.points:
            costs.append(float(point["cost"]))
            if "accuracy" in point:
                accuracies.append(float(point["accuracy"]))
            last = point
        line = progress_line(update.job, last)
        if interactive:
            err.write("\r" + line)
        else:
            # Into a log or a pipe, one line per tenth of progress is enough.
            tenth = int(float(update.job.get("progress") or 0.0) * 10)
            if tenth != shown or update.done:
                err.write(line + "\n")
                shown = tenth
        err.flush()
    if interactive:
        err.write("\n")
    if costs:
        err.write(ascii_curve(costs, "cost") + "\n")
    if accuracies:
        err.write(ascii_curve(accuracies, "accuracy") + "\n")
    assert update is not None  # watch yields at least the final state
    return update.job


def _hyperparameters(args: argparse.Namespace) -> dict[str, Any]:
    chosen = {
        "hidden_layers": args.hidden,
        "n_iterations": args.iterations,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "activation": args.activation,
        "task": args.task,
        "init": args.init,
        "momentum": args.momentum,
        "beta1": args.beta1,
        "beta2": args.beta2,
        "epsilon": args.epsilon,
        "batch_size": args.batch_size,
        "shuffle": False if args.no_shuffle else None,
        "l2": args.l2,
        "lr_decay": args.lr_decay,
        "decay_rate": args.decay_rate,
        "decay_steps": args.decay_steps,
        "validation_fraction": args.validation_fraction,
        "early_stopping": _early_stopping(args),
        "seed": args.seed,
        "record_every": args.record_every,
        "dtype": args.dtype,
        "standardize": False if args.no_standardize else None,
    }
    # Unset options take the server's defaults.
    return {key: value for key, value in chosen.items() if value is not None}


def _early_stopping(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.patience is None:
        return None
    return {"patience": args.patience, "restore_best": not args.keep_last}


def _train(args: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    with _client(args) as api:
        dataset = api.upload_dataset(args.data, label_column=args.label_column)
        err.write(
            f"dataset {dataset['id']}: {dataset['n_samples']} samples, "
            f"{dataset['n_features']} features, task {dataset['task']}\n"
        )
        accepted = api.train(dataset["id"], _hyperparameters(args), name=args.name)
        job_id = str(accepted["job_id"])
        err.write(f"job {job_id} queued\n")
        if not args.watch:
            out.write(job_id + "\n")
            return 0
        try:
            job = watch(api, job_id, err)
        except KeyboardInterrupt:
            api.cancel(job_id)
            err.write(f"\ncancelling job {job_id}\n")
            return EXIT_INTERRUPTED
    if job["status"] == "succeeded":
        out.write(str(job["model_id"]) + "\n")
        return 0
    if job["status"] == "cancelled":
        err.write(f"job {job_id} was cancelled\n")
        return EXIT_JOB_CANCELLED
    err.write(f"job {job_id} failed: {job.get('error')}\n")
    return EXIT_JOB_FAILED


def _jobs(args: argparse.Namespace) -> int:
    with _client(args) as api:
        items = api.list_jobs(status=args.status, limit=args.limit)
    header = f"{'JOB':32}  {'STATUS':10}  {'PROGRESS':>8}  {'MODEL NAME':20}  MODEL"
    lines = [header]
    for job in items:
        lines.append(
            f"{job['id']:32}  {job['status']:10}  {job['progress']:>8.0%}  "
            f"{str(job['model_name'])[:20]:20}  {job['model_id'] or '-'}"
        )
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def read_rows(path: Path, label_column: str | None) -> list[list[float]]:
    """Feature rows of a CSV (header row first; the label column dropped if named) or .npz X."""
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            X = archive["X"]
        rows: list[list[float]] = X.reshape(X.shape[0], -1).astype(float).tolist()
        return rows
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = [name.strip() for name in next(reader, [])]
    if label_column is not None and label_column not in header:
        raise ClientError(0, "invalid_file", f"{path} has no column {label_column!r}")
    keep = [i for i, name in enumerate(header) if name != label_column]
    rows = []
    for line_number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            rows.append([float(row[i]) for i in keep])
        except (ValueError, IndexError) as exc:
            raise ClientError(0, "invalid_file", f"{path}, line {line_number}: {exc}") from exc
    return rows


def _predict(args: argparse.Namespace) -> int:
    rows = read_rows(Path(args.data), args.label_column)
    with _client(args) as api:
        result = api.predict(args.model, rows, version=args.version)
    sys.stdout.write("".join(f"{value}\n" for value in result["predictions"]))
    return 0


def _guarded(handler: Any) -> Any:
    """Turn the server's refusals and unreadable files into one clear line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return int(handler(args))
        except ClientError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_REQUEST_FAILED
        except OSError as exc:
            sys.stderr.write(f"error: {exc}\n")
            return EXIT_REQUEST_FAILED

    return run


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="server URL (env DNN_URL, else local :8000)")
    parser.add_argument("--api-key", default=None, help="sent as a Bearer token (env DNN_API_KEY)")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `train`, `jobs` and `predict` client subcommands."""
    train = commands.add_parser("train", help="upload a dataset and train a model on a server")
    train.add_argument("data", help="a .csv, .npz or .json dataset file")
    train.add_argument("--label-column", default=None, help="CSV only; default: last column")
    train.add_argument("--name", default=None, help="model name (default: from the dataset)")
    train.add_argument("--hidden", type=_hidden_layers, default=None, help="e.g. 16,8")
    train.add_argument("--iterations", type=int, default=None)
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--optimizer", choices=OPTIMIZERS)
    train.add_argument("--activation", choices=HIDDEN_ACTIVATIONS)
    train.add_argument("--task", choices=REQUESTED_TASKS, help="default: auto, from the labels")
    train.add_argument("--init", choices=INITS)
    train.add_argument("--momentum", type=float, default=None, help="momentum and nesterov")
    train.add_argument("--beta1", type=float, default=None, help="adam")
    train.add_argument("--beta2", type=float, default=None, help="adam")
    train.add_argument("--epsilon", type=float, default=None, help="adam")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument(
        "--no-shuffle", action="store_true", help="mini-batches in the rows' order every epoch"
    )
    train.add_argument("--l2", type=float, default=None)
    train.add_argument("--lr-decay", choices=LR_SCHEDULES)
    train.add_argument("--decay-rate", type=float, default=None)
    train.add_argument("--decay-steps", type=int, default=None)
    train.add_argument("--validation-fraction", type=float, default=None)
    train.add_argument(
        "--patience", type=int, default=None, help="early stopping (needs --validation-fraction)"
    )
    train.add_argument(
        "--keep-last",
        action="store_true",
        help="with --patience: keep the last weights, not the best validation cost's",
    )
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--record-every", type=int, default=None)
    train.add_argument("--dtype", choices=DTYPES)
    train.add_argument(
        "--no-standardize", action="store_true", help="train on the raw feature values"
    )
    train.add_argument(
        "--watch",
        action="store_true",
        help="show live progress, then the curves; print the model id; exit 0 only on success",
    )
    _connection_options(train)
    train.set_defaults(handler=_guarded(_train))

    jobs = commands.add_parser("jobs", help="list training jobs on a server")
    jobs.add_argument("--status", choices=[status.value for status in JobStatus])
    jobs.add_argument("--limit", type=int, default=50)
    _connection_options(jobs)
    jobs.set_defaults(handler=_guarded(_jobs))

    predict = commands.add_parser("predict", help="predict the rows of a CSV or .npz with a model")
    predict.add_argument("model", help="a model id, or a model name (its latest version)")
    predict.add_argument("data", help="a CSV with a header row, or an .npz with X")
    predict.add_argument("--version", type=int, default=None, help="with a model name")
    predict.add_argument("--label-column", default=None, help="a CSV column to leave out")
    _connection_options(predict)
    predict.set_defaults(handler=_guarded(_predict))
