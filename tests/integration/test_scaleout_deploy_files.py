"""docker-compose.yml, the Dockerfile and the package the image is built from.

No Docker engine runs here, so the compose file is checked by structure and validated by
`docker compose config` (or Debian's `docker-compose config`), which need no engine. The image's
package is built exactly as the Dockerfile's build stage does, from the files .dockerignore lets
through.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUILD_CONTEXT = ["pyproject.toml", "README.md", "app", "core"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_has_the_whole_topology_with_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api", "worker"}
    for name in ("postgres", "redis", "api", "worker"):
        assert services[name]["healthcheck"]["test"], f"{name} has a health check"
    assert services["migrate"]["command"] == ["dnn-service", "migrate"]
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_api_and_worker_scale_and_wait_for_their_dependencies(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    # A fixed container name or host port would make `--scale` fail.
    assert "container_name" not in service
    for port in service.get("ports", []):
        assert "-" in str(port).rsplit(":", 1)[0], f"{port} gives each replica its own host port"
    assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    env = service["environment"]
    assert env["DNN_EXECUTOR"] == "celery"
    assert env["DNN_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["DNN_BROKER_URL"].startswith("redis://redis:")
    assert service["command"][:2] == ["dnn-service", "serve" if name == "api" else "worker"]


def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or Debian's `docker-compose`; both validate without an engine."""
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_accepts_the_file() -> None:
    command = compose_command()
    if command is None:
        reason = "neither `docker compose` nor `docker-compose` is installed"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI installs docker-compose with scripts/install-test-tools)")
        pytest.skip(reason)
    result = subprocess.run(
        [*command, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_dockerfile_is_multi_stage_and_runs_as_a_non_root_user() -> None:
    lines = [line.split() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    instructions = [words for words in lines if words and not words[0].startswith("#")]
    stages = [words for words in instructions if words[0] == "FROM"]
    assert len(stages) >= 2 and all("AS" in words for words in stages)
    final_stage = instructions[instructions.index(stages[-1]) :]
    users = [words[1] for words in final_stage if words[0] == "USER"]
    assert users and users[-1] not in {"root", "0"}
    # The runtime stage installs the wheel built from this project, like `pip install .`.
    assert any("pip wheel" in " ".join(words) and words[-1] == "." for words in instructions)


def test_the_image_package_carries_every_module_migration_and_asset(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for name in BUILD_CONTEXT:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "--wheel-dir",
            str(wheels),
            str(context),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("dnn_service-*.whl")
    packaged = set(zipfile.ZipFile(wheel).namelist())
    needed = {
        path.relative_to(context).as_posix()
        for package in ("app", "core")
        for path in (context / package).rglob("*")
        if path.is_file() and (path.suffix == ".py" or "static" in path.parts)
    }
    assert "app/db/migrations/versions/0001_initial_schema.py" in needed
    assert needed - packaged == set(), "files the installed service needs but the wheel lacks"


def test_compose_and_image_require_api_keys(compose: dict[str, Any]) -> None:
    for name in ("api", "worker", "migrate"):
        env = compose["services"][name]["environment"]
        assert env["DNN_AUTH"] == "keys", f"{name} runs with keys required"
        assert "DNN_ALLOW_OPEN_NETWORK" not in env
    dockerfile = (ROOT / "Dockerfile").read_text()
    env_lines = [line for line in dockerfile.splitlines() if line.startswith("ENV ")]
    assert any("DNN_AUTH=keys" in line for line in env_lines)
    assert "DNN_ALLOW_OPEN_NETWORK" not in dockerfile
    # The README shows the one command that creates the first admin key in the compose stack.
    readme = (ROOT / "README.md").read_text()
    assert "docker compose run --rm api dnn-service keys create --admin --tenant" in readme
