"""`dnn-service sweeps create | list | show | cancel`: hyperparameter searches from the shell.

The search space is JSON, inline or in a file: for a grid, {"param": [values, ...]} (every
combination); for a random search, {"param": {"low": L, "high": H, "log": true} or [choices]}.
The base every trial starts from takes the `train` command's hyperparameter flags. As for
`train`, stdout gets the one thing a script wants (the sweep id, or with --wait the best model
id) and the rest goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NoReturn, get_args

from app.cli import tables as cli_tables
from app.cli.commands import (
    EXIT_INTERRUPTED,
    EXIT_JOB_CANCELLED,
    EXIT_JOB_FAILED,
    add_common_options,
    client_from_args,
    fetch_and_show,
    guarded,
    json_out,
    print_line,
    wants_json,
)
from app.cli.options import add_hyperparameter_options, hyperparameters_from
from app.schemas.sweeps import SweepMetric

JSON = dict[str, Any]
STRATEGIES = ("grid", "random")
SPACE_HELP = (
    'SPACE is JSON, inline or in a file. A grid: {"param": [values, ...]}, every combination. '
    'Random: {"param": {"low": L, "high": H, "log": true} or [choices, ...]}, --n-trials draws. '
    "The training flags below set the base every trial starts from."
)


def read_space(text: str) -> JSON:
    """The search space: inline JSON when the text starts with "{", else a JSON file's path."""
    if text.lstrip().startswith("{"):
        source, where = text, "the inline search space"
    else:
        where = text
        try:
            source = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read {text}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:
            raise ValueError(f"{text} is not UTF-8 text") from exc
    try:
        space = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{where} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(space, dict) or not space:
        raise ValueError(f'{where} must be a JSON object such as {{"learning_rate": [0.01, 0.1]}}')
    return space


def _usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    # One line, as argparse words its errors, without the long usage of every training flag.
    sys.stderr.write(f"{parser.prog}: error: {message}\n")
    raise SystemExit(2)


def _check_create(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        args.space = read_space(args.space)
    except ValueError as exc:
        _usage_error(parser, str(exc))
    if args.strategy == "random" and args.n_trials is None:
        _usage_error(parser, "--strategy random needs --n-trials")
    if args.strategy == "grid" and (args.n_trials is not None or args.search_seed is not None):
        _usage_error(parser, "--n-trials and --search-seed are for --strategy random")


def _search(args: argparse.Namespace) -> JSON:
    if args.strategy == "grid":
        return {"grid": args.space}
    random: JSON = {"n_trials": args.n_trials, "space": args.space}
    if args.search_seed is not None:
        random["seed"] = args.search_seed
    return {"random": random}


def _ending(sweep: JSON, args: argparse.Namespace) -> int:
    """Print an ended sweep (leaderboard to stderr, best model id to stdout); its exit code."""
    if wants_json(args):
        json_out(sweep)
    else:
        cli_tables.text_console(sys.stderr).print(cli_tables.sweep_details(sweep))
        if sweep.get("best"):
            print_line(str(sweep["best"]["model_id"]))
    if sweep["status"] == "succeeded":
        return 0
    if sweep["status"] == "cancelled":
        sys.stderr.write(f"sweep {sweep['id']} was cancelled\n")
        return EXIT_JOB_CANCELLED
    reason = cli_tables.visible(sweep.get("error") or "no trial succeeded")
    sys.stderr.write(f"sweep {sweep['id']} failed: {reason}\n")
    return EXIT_JOB_FAILED


def _create(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        accepted = api.create_sweep(
            args.dataset,
            hyperparameters=hyperparameters_from(args),
            name=args.name,
            metric=args.metric,
            max_parallel=args.max_parallel,
            promote=args.promote,
            **_search(args),
        )
        sweep_id = str(accepted["id"])
        if not args.wait:
            return json_out(accepted) if wants_json(args) else print_line(sweep_id)
        sys.stderr.write(f"sweep {sweep_id} started; waiting for its trials to end\n")
        try:
            sweep = api.wait_sweep(sweep_id)
        except KeyboardInterrupt:
            api.cancel_sweep(sweep_id)
            sys.stderr.write(f"\ncancelling sweep {sweep_id}\n")
            return EXIT_INTERRUPTED
    return _ending(sweep, args)


def _list(args: argparse.Namespace) -> int:
    return fetch_and_show(
        args, lambda api: api.list_sweeps(limit=args.limit), cli_tables.sweeps_table
    )


def _show(args: argparse.Namespace) -> int:
    return fetch_and_show(args, lambda api: api.get_sweep(args.sweep), cli_tables.sweep_details)


def _cancel(args: argparse.Namespace) -> int:
    with client_from_args(args) as api:
        sweep = api.cancel_sweep(args.sweep)
    if wants_json(args):
        return json_out(sweep)
    return print_line(f"sweep {sweep['id']} is {sweep['status']}")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sweeps = commands.add_parser(
        "sweeps", help="hyperparameter searches: create, list, show, cancel"
    )
    actions = sweeps.add_subparsers(dest="sweeps_command", required=True)

    create = actions.add_parser(
        "create",
        help="start a grid or random search; prints the sweep id",
        description=SPACE_HELP,
    )
    create.add_argument(
        "space", metavar="SPACE", help="the search space: inline JSON, or a JSON file's path"
    )
    create.add_argument("--dataset", required=True, metavar="ID", help="an uploaded dataset's id")
    create.add_argument("--strategy", choices=STRATEGIES, default="grid")
    create.add_argument("--n-trials", type=int, default=None, help="random: how many draws")
    create.add_argument("--search-seed", type=int, default=None, help="random: seed of the draws")
    create.add_argument(
        "--metric",
        choices=get_args(SweepMetric),
        default=None,
        help="ranks the trials (default: val_cost with a validation split, else cost)",
    )
    create.add_argument("--max-parallel", type=int, default=None, help="trials at once (2)")
    create.add_argument(
        "--promote", default=None, metavar="ALIAS", help="alias the best model gets at the end"
    )
    create.add_argument("--name", default=None, help="the trials' model name")
    create.add_argument(
        "--wait",
        action="store_true",
        help="wait for the end, show the leaderboard; print the best model id",
    )
    add_hyperparameter_options(create)
    add_common_options(create)
    create.set_defaults(
        handler=guarded(_create), validate=lambda _top, args: _check_create(create, args)
    )

    listing = actions.add_parser("list", help="list sweeps")
    listing.add_argument("--limit", type=int, default=50)
    add_common_options(listing)
    listing.set_defaults(handler=guarded(_list))

    show = actions.add_parser("show", help="a sweep and its leaderboard, best first")
    show.add_argument("sweep", help="a sweep id")
    add_common_options(show)
    show.set_defaults(handler=guarded(_show))

    cancel = actions.add_parser("cancel", help="cancel a sweep's queued and running trials")
    cancel.add_argument("sweep", help="a sweep id")
    add_common_options(cancel)
    cancel.set_defaults(handler=guarded(_cancel))
