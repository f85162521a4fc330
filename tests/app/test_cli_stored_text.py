"""The client commands show stored text as text: a class label or an old dataset name with an
ANSI escape sequence or a newline reached the terminal raw, and rich read `[bold]` in one as
markup and `:warning:` as an emoji."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from job_helpers import TERMINAL, wait_for
from live_server import LiveServer

ROOT = Path(__file__).resolve().parents[2]
# Clears the screen and retitles the terminal; then markup, an emoji code, a line break.
HOSTILE_LABEL = "\x1b[2J\x1b]0;pwned\x07[bold]yes[/bold]"
OTHER_LABEL = "no\n:warning:[/x]"
# Names are refused such characters now; one stored before that is still shown.
OLD_NAME = "old\x1b[31mred\u202eevil [bold]b[/bold] :smile:"


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("cli-stored-text")
    with LiveServer.in_folder(folder, workers=1) as server, server.client() as http:
        features = [[float(i)] for i in range(20)]
        labels = [HOSTILE_LABEL if i < 10 else OTHER_LABEL for i in range(20)]
        dataset = http.post(
            "/datasets", json={"name": "plain", "features": features, "labels": labels}
        ).json()
        with sqlite3.connect(folder / "service.db") as db:
            db.execute("UPDATE datasets SET name = ? WHERE id = ?", (OLD_NAME, dataset["id"]))
        accepted = http.post(
            "/train",
            json={"dataset_id": dataset["id"], "hyperparameters": {"n_iterations": 20}},
        ).json()
        job = wait_for(http, accepted["id"], TERMINAL)
        assert job["status"] == "succeeded", job
        rows = folder / "rows.csv"
        rows.write_text("x\n1\n15\n")
        yield {"url": server.url, "model": job["model_id"], "rows": rows}


def cli(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def assert_shown_as_text(output: str) -> None:
    assert "\x1b" not in output and "\x07" not in output and "\u202e" not in output, output
    assert "😄" not in output and "⚠" not in output, output


def test_datasets_shows_an_old_name_as_escaped_text(stored: dict[str, Any]) -> None:
    output = cli("datasets", "--url", stored["url"])
    assert_shown_as_text(output)
    assert "old\\x1b[31mred\\u202eevil [bold]b[/bold] :smile:" in output


def test_show_model_shows_labels_as_escaped_text(stored: dict[str, Any]) -> None:
    output = cli("show", stored["model"], "--url", stored["url"])
    assert_shown_as_text(output)
    assert "[bold]yes[/bold]" in output and "\\x1b[2J" in output and "\\x07" in output
    assert "no\\n:warning:[/x]" in output


def test_predict_writes_labels_as_escaped_text(stored: dict[str, Any]) -> None:
    for proba in ((), ("--proba",)):
        output = cli(
            "predict", stored["model"], str(stored["rows"]), "--url", stored["url"], *proba
        )
        assert_shown_as_text(output)
        lines = output.splitlines()
        # One line a row (and the header): the newline in a label no longer splits one.
        assert len(lines) == 2 + len(proba), output
        if proba:
            assert lines[0].split("\t")[1:] == [
                "p(\\x1b[2J\\x1b]0;pwned\\x07[bold]yes[/bold])",
                "p(no\\n:warning:[/x])",
            ]


def test_listings_and_errors_read_no_markup(stored: dict[str, Any]) -> None:
    output = cli("models", "--name", "[bold]x[/]", "--url", stored["url"])
    assert "no model is named '[bold]x[/]'" in output
