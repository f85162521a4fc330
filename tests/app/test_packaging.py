"""The lock files, the extras and what a default install imports."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SCALED_OUT_EXTRAS = ("celery", "postgres")
IMAGE_EXTRAS = (*SCALED_OUT_EXTRAS, "onnx")


def pins(lock: str) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in (ROOT / lock).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, pinned_version = line.partition("==")
            pinned[canonicalize_name(name)] = pinned_version.split(";")[0].strip()
    return pinned


def requirements(*extras: str) -> list[Requirement]:
    lines = list(PYPROJECT["dependencies"])
    for extra in extras:
        lines += PYPROJECT["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


@pytest.mark.parametrize(
    ("lock", "extras"),
    [
        ("requirements.lock", IMAGE_EXTRAS),
        ("requirements-test.lock", (*IMAGE_EXTRAS, "test")),
    ],
)
def test_locks_pin_every_dependency_within_its_range(lock: str, extras: tuple[str, ...]) -> None:
    pinned = pins(lock)
    for requirement in requirements(*extras):
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} lacks {name}: run scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, outside {requirement}: run scripts/lock"
        )


def test_the_test_lock_has_the_image_lock_pins() -> None:
    image, test = pins("requirements.lock"), pins("requirements-test.lock")
    assert {name: test.get(name) for name in image} == image


def test_the_default_install_has_no_scaled_out_dependencies() -> None:
    default = {canonicalize_name(r.name) for r in requirements()}
    assert not default & {"celery", "redis", "psycopg", "psycopg-binary", "kombu"}
    assert {"rich", "plotext", "matplotlib"} <= default


def test_the_service_and_cli_import_neither_celery_nor_psycopg(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from app.cli import build_parser\n"
        "from app.main import create_app\n"
        "from app.settings import Settings\n"
        f"create_app(Settings(database_url='sqlite:///{tmp_path}/x.db'))\n"
        "build_parser()\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(loaded & {'celery', 'kombu', 'redis', 'psycopg'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def test_the_dockerfile_installs_from_the_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "-r requirements.lock" in dockerfile
    assert "-r /wheels/requirements.lock" in dockerfile
    assert "!requirements.lock" in (ROOT / ".dockerignore").read_text()


@pytest.mark.skipif(
    os.environ.get("CI") != "true",
    reason="a developer's .venv may be installed otherwise; CI's comes from the lock",
)
def test_this_environment_is_the_test_lock() -> None:
    mismatched = {}
    for name, pinned in pins("requirements-test.lock").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed != pinned and name not in {"pip", "setuptools", "wheel", "dnn-service"}:
            mismatched[name] = (pinned, installed)
    assert mismatched == {}
