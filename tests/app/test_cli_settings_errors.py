"""A bad DNN_* variable stops the command with one line naming it, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_bad_settings_are_named_without_a_traceback(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DNN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "DNN_WORKER_THREADS": "0",
        "DNN_WORKERS": "many",
    }
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert any(line.startswith("dnn-service: DNN_WORKER_THREADS='0': ") for line in lines)
    assert any(line.startswith("dnn-service: DNN_WORKERS='many': ") for line in lines)
    assert not (tmp_path / "x.db").exists()  # nothing was done


def run_migrate(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DNN_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", **variables}
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_check_across_settings_is_one_line_naming_them(tmp_path: Path) -> None:
    done = run_migrate(tmp_path, DNN_MAX_CLASSES="5000")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "dnn-service: DNN_MAX_CLASSES (5000) must not exceed DNN_MAX_LAYER_WIDTH (4096): "
        "each class is one output unit"
    ]


def test_a_bad_secret_is_named_but_not_echoed(tmp_path: Path) -> None:
    done = run_migrate(tmp_path, DNN_METRICS_TOKEN="s3cr3t-abc")
    assert done.returncode == 2
    assert "s3cr3t" not in done.stderr
    assert done.stderr.startswith("dnn-service: DNN_METRICS_TOKEN=(hidden): ")
