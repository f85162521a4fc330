"""The client commands in an 80-column pseudo-terminal, as in a tmux pane.

pexpect gives the command a real terminal of 80 columns; everything it writes is checked line by
line (after removing escape sequences, a line ends at a newline or a carriage return), and pyte,
a terminal emulator, shows what a person would see once it is done.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import httpx
import pexpect
import pyte
import pytest

pytestmark = pytest.mark.slow

COLUMNS = 80
ROWS = 200  # tall enough that nothing scrolls off the emulated screen
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "breast_cancer.csv"


def run_in_terminal(*args: str) -> tuple[int, str]:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "app.cli", *args],
        dimensions=(ROWS, COLUMNS),
        encoding="utf-8",
        timeout=180,
        env=env,
    )
    output = child.read()
    child.close()
    assert child.exitstatus is not None, output
    return child.exitstatus, output


def written_lines(output: str) -> list[str]:
    return re.split(r"[\r\n]", ESCAPES.sub("", output))


def screen_of(output: str) -> list[str]:
    screen = pyte.Screen(COLUMNS, ROWS)
    pyte.Stream(screen).feed(output)
    return [line.rstrip() for line in screen.display]


def test_train_watch_fits_80_columns_and_shows_validation(shared_client: httpx.Client) -> None:
    url = str(shared_client.base_url)
    status, output = run_in_terminal(
        "train", str(EXAMPLE), "--label-column", "diagnosis", "--iterations", "400",
        "--validation-fraction", "0.2", "--watch", "--url", url,
    )  # fmt: skip
    assert status == 0, output
    widest = max(written_lines(output), key=len)
    assert len(widest) <= COLUMNS, widest
    screen = screen_of(output)
    text = "\n".join(screen)
    # rich redrew the progress in place: one final bar, no stale half-lines left behind.
    bars = [line for line in screen if "━" in line]
    assert len(bars) == 1 and bars[0].startswith("succeeded") and "400/400" in bars[0]
    assert "it/s" in bars[0] and "eta" in bars[0]
    metrics = screen[screen.index(bars[0]) + 1]
    assert metrics.startswith("train cost") and "| val cost" in metrics
    assert "cost (log scale): ▚ train  • validation" in text
    model_id = [line for line in screen if line][-1]
    assert shared_client.get(f"/models/{model_id}").status_code == 200


def test_listings_fit_80_columns(shared_client: httpx.Client) -> None:
    url = str(shared_client.base_url)
    shared_client.post(
        "/datasets",
        json={"name": "a-dataset-name-much-longer-than-eighty-columns-" * 3,
              "features": [[0.0], [1.0]], "labels": [0, 1]},
    )  # fmt: skip
    for command in ("jobs", "models", "datasets"):
        status, output = run_in_terminal(command, "--url", url)
        assert status == 0, output
        assert max(len(line) for line in written_lines(output)) <= COLUMNS, output
