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
