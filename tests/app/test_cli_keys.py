"""`dnn-service keys`: what a mistake prints, and where, on a real SQLite database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def keys(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", "keys", *argv],
        env={**os.environ, "DNN_DATABASE_URL": f"sqlite:///{tmp_path / 'keys.db'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_empty_list_says_how_to_make_a_key(tmp_path: Path) -> None:
    done = keys(tmp_path, "list")
    assert done.returncode == 0
    assert done.stdout == ""
    assert "no keys yet: `dnn-service keys create --tenant NAME` makes one" in done.stderr


def test_revoking_an_unknown_id_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    done = keys(tmp_path, "revoke", "nope")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "error: key 'nope' does not exist; `dnn-service keys list` shows the ids" in done.stderr


def test_a_bad_tenant_leaves_stdout_empty_for_scripts_capturing_the_key(tmp_path: Path) -> None:
    done = keys(tmp_path, "create", "--tenant", "bad name")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "error: tenant names are 1-64 letters" in done.stderr
    created = keys(tmp_path, "create", "--tenant", "alice")
    assert created.returncode == 0
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("dnn_")
    listed = keys(tmp_path, "list")
    assert "alice" in listed.stdout and key not in listed.stdout
