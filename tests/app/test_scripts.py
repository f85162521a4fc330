"""The set-up scripts the README starts with, where they can be run without installing."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_an_old_python3_is_refused_with_one_clear_line(tmp_path: Path) -> None:
    # A copy of the script in a scratch checkout, so nothing can touch the real .venv.
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "ensure-venv", tmp_path / "scripts" / "ensure-venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python3"
    # Answers --version as Python 3.10 does, and fails everything else (the version check).
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && echo "Python 3.10.14" && exit 0\nexit 1\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    done = subprocess.run(
        [str(tmp_path / "scripts" / "ensure-venv"), "requirements.lock"],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "dnn-service needs Python >= 3.11, and python3 here is Python 3.10.14; "
        "put a newer python3 first on PATH"
    )
    assert not (tmp_path / ".venv").exists()
