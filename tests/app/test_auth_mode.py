"""The auth mode is explicit and sticky: once keys are required, nothing opens the server again.

Live `dnn-service serve` processes on 127.0.0.1 (and one on 0.0.0.0), keys made with the CLI as
an operator would; the start-up decision is read from the server's log.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from job_helpers import blobs
from live_server import LiveServer, free_port

from app.auth import AuthMode, decide_mode
from app.settings import Settings

LOOPBACK, ANY = "127.0.0.1", "0.0.0.0"


def cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "DNN_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def create_key(database_url: str, tenant: str, *, admin: bool = False) -> tuple[str, str]:
    """(key id, plain key) of a new key made with `dnn-service keys create`."""
    out = cli(database_url, "keys", "create", "--tenant", tenant, *(["--admin"] if admin else []))
    lines = out.strip().splitlines()
    # "created [admin] key ID for tenant NAME; ..." then the key alone on the last line.
    [created] = [line for line in lines if line.startswith("created ")]
    return created.split(" for tenant ")[0].split()[-1], lines[-1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)


def anonymous_statuses(http: httpx.Client) -> tuple[int, int, int]:
    return (
        http.get("/jobs").status_code,
        http.post("/datasets", json=blobs(10)).status_code,
        http.get("/models").status_code,
    )


# --- the start-up decision, as a pure function ------------------------------------------


@pytest.mark.parametrize(
    ("env", "host", "ever", "mode"),
    [
        ({}, LOOPBACK, False, AuthMode.UNTIL_FIRST_KEY),
        ({}, "localhost", False, AuthMode.UNTIL_FIRST_KEY),
        ({}, LOOPBACK, True, AuthMode.KEYS),
        ({}, ANY, False, AuthMode.KEYS),
        ({"auth": "keys"}, LOOPBACK, False, AuthMode.KEYS),
        ({"auth": "none"}, ANY, True, AuthMode.NONE),
        ({"allow_open_network": True}, ANY, False, AuthMode.UNTIL_FIRST_KEY),
        ({"allow_open_network": True}, ANY, True, AuthMode.KEYS),
        ({"allow_open_network": True, "auth": "keys"}, ANY, False, AuthMode.KEYS),
        ({"allow_open_network": False}, ANY, False, AuthMode.KEYS),
    ],
)
def test_the_mode_is_open_only_where_nothing_was_ever_closed(
    env: dict[str, object], host: str, ever: bool, mode: AuthMode
) -> None:
    settings = Settings.model_validate(env)
    decision = decide_mode(settings, host, keys_ever_created=ever)
    assert decision.mode == mode
    assert decision.reason
    deprecated = any("DNN_ALLOW_OPEN_NETWORK is deprecated" in w for w in decision.warnings)
    assert deprecated == ("allow_open_network" in env)


# --- live servers ------------------------------------------------------------------------


@pytest.mark.slow
def test_revoking_every_key_keeps_the_server_closed_across_restarts(tmp_path: Path) -> None:
    server = LiveServer.in_folder(tmp_path, workers=1).start()
    url = server.database_url
    try:
        with server.client() as http:
            assert anonymous_statuses(http) == (200, 201, 200)  # loopback, no key ever: open
            admin_id, admin = create_key(url, "ops", admin=True)
            tenant_id, tenant = create_key(url, "alice")
            eventually(lambda: http.get("/jobs").status_code == 401)
            assert http.get("/jobs", headers=bearer(tenant)).status_code == 200

            # Revoke every key: one through the API, the last with the CLI.
            revoked = http.delete(f"/admin/keys/{tenant_id}", headers=bearer(admin))
            assert revoked.status_code == 200
            cli(url, "keys", "revoke", admin_id)
            time.sleep(1.2)  # past every cache of the gate
            assert anonymous_statuses(http) == (401, 401, 401)
            assert http.get("/jobs", headers=bearer(admin)).status_code == 401
            for response in (http.get("/jobs"), http.post("/datasets", json=blobs(10))):
                assert response.json()["error"]["code"] == "unauthorized"
        server.stop()

        server.start()  # a restart on loopback does not reopen it either
        with server.client() as http:
            assert anonymous_statuses(http) == (401, 401, 401)
            _, fresh = create_key(url, "ops", admin=True)
            assert http.get("/jobs", headers=bearer(fresh)).status_code == 200
            assert http.get("/jobs").status_code == 401
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert "auth mode: none until the first API key is created" in log
    assert "auth mode: keys (an API key was created)" in log
    assert "auth mode: keys (DNN_AUTH unset and an API key was created on this database)" in log
    assert "no active API key exists" in log


@pytest.mark.slow
def test_dnn_auth_keys_refuses_everyone_until_a_key_is_created(tmp_path: Path) -> None:
    with (
        LiveServer.in_folder(tmp_path, workers=1, DNN_AUTH="keys") as server,
        server.client() as http,
    ):
        assert anonymous_statuses(http) == (401, 401, 401)
        assert http.get("/healthz").status_code == 200
        _, key = create_key(server.database_url, "ops", admin=True)
        assert http.get("/jobs", headers=bearer(key)).status_code == 200
    assert "auth mode: keys (DNN_AUTH=keys)" in server.log_path.read_text()


@pytest.mark.slow
def test_dnn_auth_none_is_open_and_still_honours_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    cli(url, "migrate")
    _, key = create_key(url, "alice")
    with (
        LiveServer(url, tmp_path / "server.log", workers=1, DNN_AUTH="none") as server,
        server.client() as http,
    ):
        assert http.get("/jobs").status_code == 200
        assert http.get("/jobs", headers=bearer(key)).status_code == 200
        assert http.get("/jobs", headers=bearer("dnn_wrong")).status_code == 401
    log = server.log_path.read_text()
    assert "auth mode: none (DNN_AUTH=none)" in log
    assert "DNN_AUTH=none on a database where API keys were created" in log


def serve_on_all_interfaces(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli.main", "serve", "--host", ANY, "--port", str(port)],
        env={**os.environ, "DNN_DATABASE_URL": f"sqlite:///{tmp_path / 'net.db'}", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "server.log").read_text()
        try:
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    eventually(ready, timeout=30)
    return process, base


@pytest.mark.slow
@pytest.mark.parametrize(
    ("env", "open_"),
    [({}, False), ({"DNN_ALLOW_OPEN_NETWORK": "true"}, True), ({"DNN_AUTH": "none"}, True)],
)
def test_a_network_bind_requires_keys_unless_opened_explicitly(
    tmp_path: Path, env: dict[str, str], open_: bool
) -> None:
    process, base = serve_on_all_interfaces(tmp_path, **{"DNN_WORKERS": "1", **env})
    try:
        assert httpx.get(f"{base}/jobs").status_code == (200 if open_ else 401)
    finally:
        process.terminate()
        process.wait(15)
    log = (tmp_path / "server.log").read_text()
    assert "auth mode:" in log
    deprecated = "DNN_ALLOW_OPEN_NETWORK is deprecated" in log
    assert deprecated == ("DNN_ALLOW_OPEN_NETWORK" in env)


@pytest.mark.slow
def test_metrics_need_an_admin_key_or_the_metrics_token(tmp_path: Path) -> None:
    token = "metrics-token-0123456789"
    with (
        LiveServer.in_folder(tmp_path, workers=1, DNN_AUTH="keys", DNN_METRICS_TOKEN=token) as srv,
        srv.client() as http,
    ):
        _, admin = create_key(srv.database_url, "ops", admin=True)
        _, tenant = create_key(srv.database_url, "alice")
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers=bearer("not-the-token")).status_code == 401
        forbidden = http.get("/metrics", headers=bearer(tenant))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
        for allowed in (bearer(admin), bearer(token)):
            response = http.get("/metrics", headers=allowed)
            assert response.status_code == 200
            assert "dnn_jobs" in response.text
