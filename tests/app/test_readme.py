"""The README's commands, pasted into a shell as written, against a live server.

Each block runs in a scratch folder holding a link to examples/, with only the server's address
changed, so nothing is written into the checkout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
DEFAULT_URL = "http://127.0.0.1:8000"


def block_after(heading: str, language: str) -> str:
    """The first fenced code block of the language after the heading."""
    start = README.index(heading)
    match = re.compile(rf"```{language}\n(.*?)```", re.DOTALL).search(README, start)
    assert match is not None, f"no {language} block after {heading!r}"
    return match.group(1)


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def run_shell(script: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        # The README's set-up: the project's environment activated.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DNN_URL": url,
    }
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script.replace(DEFAULT_URL, url)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_curl_walkthrough(shared_client: httpx.Client, scratch: Path) -> None:
    script = block_after("## Walkthrough with curl", "sh")
    assert script.startswith(f"URL={DEFAULT_URL}\n")
    run = run_shell(script, scratch, str(shared_client.base_url).rstrip("/"))
    assert run.returncode == 0, run.stderr + run.stdout
    assert '"n_features":30' in run.stdout.replace(" ", "")
    assert '"points"' in run.stdout
    assert re.search(r'"predictions":\["malignant"\]', run.stdout.replace(" ", "")), run.stdout


def test_the_command_line_examples(shared_client: httpx.Client, scratch: Path) -> None:
    script = block_after("### From the command line", "bash")
    run = run_shell(script, scratch, str(shared_client.base_url).rstrip("/"))
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    assert "prediction\tp(benign)\tp(malignant)" in run.stdout
    assert "digits.npz" in run.stdout and "breast_cancer.csv" in run.stdout


def run_python(script: str, cwd: Path, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", script.replace(DEFAULT_URL, url)],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_the_python_example(shared_client: httpx.Client, scratch: Path) -> None:
    script = block_after("### From Python", "python")
    run = run_python(script, scratch, str(shared_client.base_url))
    assert run.returncode == 0, run.stderr
    assert (scratch / "model.safetensors").stat().st_size > 0
    assert "malignant" in run.stdout  # the first rows are malignant tumours


def test_the_sweep_examples(shared_client: httpx.Client, scratch: Path) -> None:
    url = str(shared_client.base_url).rstrip("/")
    heading = "### Sweeps from the command line and Python"
    csv = (ROOT / "examples" / "breast_cancer.csv").read_bytes()
    dataset = shared_client.post(
        "/datasets", files={"file": ("breast_cancer.csv", csv)}, data={"label_column": "diagnosis"}
    ).json()["id"]
    # The block's DATASET: an uploaded dataset's id, as its first line says.
    run = run_shell(f"DATASET={dataset}\n" + block_after(heading, "bash"), scratch, url)
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-3000:]
    best_model, *_ = run.stdout.split()
    assert shared_client.get(f"/models/{best_model}").status_code == 200
    assert "TRIALS" in run.stdout and "PARAMS" in run.stdout
    assert re.search(r"sweep [0-9a-f]{32} is cancelled", run.stdout), run.stdout

    python = run_python(block_after(heading, "python"), scratch, url)
    assert python.returncode == 0, python.stderr
    assert re.search(r"^1 \{'learning_rate': ", python.stdout, re.MULTILINE), python.stdout
    assert "best model" in python.stdout


def test_the_path_set_up() -> None:
    script = block_after("### The `dnn-service` command on your PATH", "sh")
    if not (ROOT / ".venv" / "bin" / "activate").exists():
        pytest.skip("no .venv in the checkout: ./scripts/serve or ./scripts/test creates it")
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert "train" in run.stdout and "watch" in run.stdout
