"""Run a `dnn-service` command in an 80-column pseudo-terminal, as in a tmux pane.

pexpect gives the command a real terminal of 80 columns; what it writes can be checked line by
line (after removing escape sequences, a line ends at a newline or a carriage return), and pyte,
a terminal emulator, shows what a person would see once it is done.
"""

from __future__ import annotations

import os
import re
import sys

import pexpect
import pyte

COLUMNS = 80
ROWS = 200  # tall enough that nothing scrolls off the emulated screen
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Za-z0-9]|\x1b[=>]")


def run_in_terminal(*args: str) -> tuple[int, str]:
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(COLUMNS)}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "app.cli.main", *args],
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
