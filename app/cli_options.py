"""The `train` command's hyperparameter flags, one per field the API accepts.

The choice lists are read off the API's own schema (app.schemas.jobs.Hyperparameters), the
one place that decides them, so the CLI offers exactly what the server accepts.
"""

from __future__ import annotations

import argparse
from typing import Any, get_args

from app.schemas.jobs import Hyperparameters


def choices(field: str) -> list[str]:
    """The allowed values of a hyperparameter with a fixed set of choices."""
    return [str(value) for value in get_args(Hyperparameters.model_fields[field].annotation)]


def _hidden_layers(text: str) -> list[int]:
    try:
        widths = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected widths like 16,8, not {text!r}") from exc
    if not widths or any(width < 1 for width in widths):
        raise argparse.ArgumentTypeError("hidden layer widths must be positive integers")
    return widths


def add_hyperparameter_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hyperparameters (unset: the server's defaults)")
    add = group.add_argument
    add("--hidden", type=_hidden_layers, default=None, help="hidden layer widths, e.g. 16,8")
    add("--iterations", type=int, default=None, help="full-batch updates, or epochs")
    add("--learning-rate", type=float, default=None)
    add("--optimizer", choices=choices("optimizer"))
    add("--momentum", type=float, default=None, help="for momentum and nesterov")
    add("--beta1", type=float, default=None, help="Adam's first-moment decay")
    add("--beta2", type=float, default=None, help="Adam's second-moment decay")
    add("--epsilon", type=float, default=None, help="Adam's denominator guard")
    add("--activation", choices=choices("activation"), help="of the hidden layers")
    add("--task", choices=choices("task"))
    add("--init", choices=choices("init"), help="weight initialisation")
    add("--batch-size", type=int, default=None, help="mini-batch size (default: full batch)")
    add("--no-shuffle", action="store_true", help="keep the row order in every epoch")
    add("--l2", type=float, default=None, help="L2 penalty on the weights")
    add("--lr-decay", choices=choices("lr_decay"), help="learning-rate schedule")
    add("--decay-rate", type=float, default=None)
    add("--decay-steps", type=int, default=None, help="for --lr-decay step")
    add("--validation-fraction", type=float, default=None, help="held out, e.g. 0.2")
    add(
        "--early-stopping",
        type=int,
        default=None,
        metavar="PATIENCE",
        help="stop after PATIENCE iterations without a better validation cost",
    )
    add("--min-delta", type=float, default=None, help="with --early-stopping")
    add(
        "--keep-last",
        action="store_true",
        help="with --early-stopping: keep the last weights, not the best",
    )
    add("--seed", type=int, default=None)
    add("--record-every", type=int, default=None, help="record the curve every N iterations")
    add("--dtype", choices=choices("dtype"))
    add("--no-standardize", action="store_true", help="train on the raw feature values")


def hyperparameters_from(args: argparse.Namespace) -> dict[str, Any]:
    early_stopping: dict[str, Any] | None = None
    if args.early_stopping is not None:
        early_stopping = {"patience": args.early_stopping}
        if args.min_delta is not None:
            early_stopping["min_delta"] = args.min_delta
        if args.keep_last:
            early_stopping["restore_best"] = False
    chosen = {
        "hidden_layers": args.hidden,
        "n_iterations": args.iterations,
        "learning_rate": args.learning_rate,
        "optimizer": args.optimizer,
        "momentum": args.momentum,
        "beta1": args.beta1,
        "beta2": args.beta2,
        "epsilon": args.epsilon,
        "activation": args.activation,
        "task": args.task,
        "init": args.init,
        "batch_size": args.batch_size,
        "shuffle": False if args.no_shuffle else None,
        "l2": args.l2,
        "lr_decay": args.lr_decay,
        "decay_rate": args.decay_rate,
        "decay_steps": args.decay_steps,
        "validation_fraction": args.validation_fraction,
        "early_stopping": early_stopping,
        "seed": args.seed,
        "record_every": args.record_every,
        "dtype": args.dtype,
        "standardize": False if args.no_standardize else None,
    }
    # Unset options take the server's defaults.
    return {key: value for key, value in chosen.items() if value is not None}
