"""Tables and detail views of the client commands, laid out by rich at the terminal's width.

Ids are never cut (they are what the next command needs); names and timestamps give way.
Stored text (names, class labels, error messages) is shown through `visible`, and printed by a
`text_console`, which reads no markup in it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TextIO

from rich.console import Console, Group, RenderableType
from rich.table import Table

from app.job_status import JobStatus
from app.schemas.datasets import UNSHOWABLE

JSON = dict[str, Any]
WIDTHS = {
    "JOB": 32,
    "MODEL": 32,
    "DATASET": 32,
    "SWEEP": 32,
    "STATUS": 10,
    "RANK": 10,
    "CREATED": 11,
    "TASK": 10,
}


def visible(value: object) -> str:
    """The text with each control character written as its escape (ESC as \\x1b).

    Class labels are any text, and dataset names stored before names were restricted may hold
    anything: raw, an ANSI sequence in one recoloured, cleared or retitled the user's terminal,
    and a newline or a bidirectional override showed a table other than the data.
    """
    return UNSHOWABLE.sub(lambda match: ascii(match.group())[1:-1], str(value))


def text_console(file: TextIO) -> Console:
    """A console that prints text as it is: rich would otherwise read `[bold]` in a name as
    markup (or `[/x]` as an error), and `:warning:` as an emoji."""
    return Console(file=file, highlight=False, markup=False, emoji=False)


def _row(table: Table, *cells: object) -> None:
    table.add_row(*(visible(cell) for cell in cells))


# The columns that give way when the terminal is narrow; every other column keeps its width.
FLEXIBLE = {"NAME", "MODEL NAME"}
# Columns that take the room left and wrap onto more lines rather than lose what they show.
WRAPPED = {"PARAMS"}


def _table(*headers: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold underline", expand=True)
    for header in headers:
        fixed = header not in FLEXIBLE and header not in WRAPPED
        table.add_column(
            header,
            no_wrap=header not in WRAPPED,
            overflow="ellipsis" if header in FLEXIBLE else "fold",
            min_width=max(len(header), WIDTHS.get(header, 0)) if fixed else None,
            ratio=None if fixed else 1,
        )
    return table


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).strftime("%m-%d %H:%M")


def _metric(metrics: JSON, key: str) -> str:
    value = metrics.get(key)
    return "-" if value is None else f"{value:.4g}"


def jobs_table(items: list[JSON]) -> RenderableType:
    table = _table("JOB", "STATUS", "DONE", "MODEL NAME", "CREATED")
    for job in items:
        _row(
            table,
            job["id"],
            job["status"],
            f"{job['progress']:.0%}",
            str(job["model_name"]),
            _when(job.get("created_at")),
        )
    return table if items else "no jobs yet: `dnn-service train FILE --watch` starts one"


def models_table(items: list[JSON]) -> RenderableType:
    table = _table("MODEL", "NAME", "VER", "ACCURACY", "VAL ACC")
    for model in items:
        metrics = model.get("metrics") or {}
        _row(
            table,
            model["id"],
            model["name"],
            str(model["version"]),
            _metric(metrics, "accuracy"),
            _metric(metrics, "val_accuracy"),
        )
    return table if items else "no models yet: a job that succeeds stores one"


def datasets_table(items: list[JSON]) -> RenderableType:
    table = _table("DATASET", "NAME", "ROWS", "FEAT", "TASK")
    for dataset in items:
        _row(
            table,
            dataset["id"],
            dataset["name"],
            str(dataset["n_samples"]),
            str(dataset["n_features"]),
            dataset["task"],
        )
    return table if items else "no datasets yet: `dnn-service train FILE` uploads one"


def _details(rows: list[tuple[str, Any]]) -> Table:
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for name, value in rows:
        _row(table, name, "-" if value is None else value)
    return table


def _no_model_yet(job: JSON) -> str:
    # A failed or cancelled job will never have a model: "not yet" would promise one.
    return "none" if JobStatus(job["status"]).is_terminal else "not yet"


def job_details(job: JSON) -> RenderableType:
    history = job.get("history") or []
    last = history[-1] if history else {}
    final = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "iteration")
    rows: list[tuple[str, Any]] = [
        ("job", job["id"]),
        ("status", job["status"]),
        ("progress", f"{job['progress']:.0%}"),
        ("model", f"{job['model_name']} ({job.get('model_id') or _no_model_yet(job)})"),
        ("dataset", job.get("dataset_id")),
        ("created", _when(job.get("created_at"))),
        ("started", _when(job.get("started_at"))),
        ("finished", _when(job.get("finished_at"))),
        ("hyperparameters", json.dumps(job.get("hyperparameters", {}), separators=(", ", ": "))),
        ("last point", f"iteration {last['iteration']}: {final}" if last else None),
    ]
    if job.get("error"):
        rows.append(("error", job["error"]))
    return Group(_details(rows))


def model_details(model: JSON) -> RenderableType:
    architecture = model.get("architecture", {})
    metrics = model.get("metrics", {})
    rows: list[tuple[str, Any]] = [
        ("model", model["id"]),
        ("name", f"{model['name']} v{model['version']}"),
        ("created", _when(model.get("created_at"))),
        ("job", model.get("job_id")),
        ("dataset", model.get("dataset_id")),
        ("layers", architecture.get("layer_dims")),
        ("activation", architecture.get("hidden_activation")),
        ("output", f"{architecture.get('output')} ({architecture.get('task')})"),
        ("classes", architecture.get("classes")),
        ("metrics", ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if v is not None)),
        ("sha256", model.get("sha256")),
        ("size", f"{model.get('size_bytes')} bytes"),
    ]
    return _details(rows)


def sweeps_table(items: list[JSON]) -> RenderableType:
    table = _table("SWEEP", "NAME", "STATUS", "TRIALS", "CREATED")
    for sweep in items:
        _row(
            table,
            sweep["id"],
            sweep["name"],
            sweep["status"],
            f"{sweep['n_started']}/{sweep['n_trials']}",
            _when(sweep.get("created_at")),
        )
    return table if items else "no sweeps yet: `dnn-service sweeps create` starts one"


def _params(params: JSON) -> str:
    """One searched value a line, floats to 4 significant digits as the metrics are."""

    def shown(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return json.dumps(value, separators=(",", ":"))

    return "\n".join(visible(f"{name}={shown(value)}") for name, value in params.items())


def leaderboard(sweep: JSON) -> RenderableType:
    """The trials best first. Only succeeded trials are ranked, so RANK shows the status of
    the others, leaving PARAMS (which wraps rather than hide a value) the room at 80 columns."""
    metric = str(sweep["metric"])
    table = _table("RANK", metric.upper(), "PARAMS", "JOB")
    for trial in sweep["trials"]:
        # Not _row: the PARAMS cell's line breaks are its layout, each line made visible.
        table.add_row(
            visible(trial["status"] if trial["rank"] is None else trial["rank"]),
            _metric(trial.get("metrics") or {}, metric),
            _params(trial["params"]),
            visible(trial["job_id"] or "-"),
        )
    return table


def sweep_details(sweep: JSON) -> RenderableType:
    best = sweep.get("best") or {}
    goal = "lowest" if sweep["goal"] == "min" else "highest"
    rows: list[tuple[str, Any]] = [
        ("sweep", sweep["id"]),
        ("name", sweep["name"]),
        ("status", sweep["status"]),
        ("dataset", sweep["dataset_id"]),
        ("metric", f"{sweep['metric']} ({goal} is best)"),
        ("trials", f"{sweep['n_started']} of {sweep['n_trials']} started"),
        ("at once", sweep["max_parallel"]),
        ("promote", sweep.get("promote")),
        ("created", _when(sweep.get("created_at"))),
        ("finished", _when(sweep.get("finished_at"))),
        ("best model", best.get("model_id")),
    ]
    if sweep.get("error"):
        rows.append(("error", sweep["error"]))
    return Group(_details(rows), "", leaderboard(sweep))
