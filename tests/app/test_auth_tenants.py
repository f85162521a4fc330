"""API keys and tenant isolation against a real server: 401, 403, 404 across tenants."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from job_helpers import TERMINAL, blobs, wait_for
from live_server import LiveServer

pytestmark = pytest.mark.slow


def create_key(database_url: str, tenant: str, *, admin: bool = False) -> str:
    command = [sys.executable, "-m", "app.cli.main", "keys", "create", "--tenant", tenant]
    env = {**os.environ, "DNN_DATABASE_URL": database_url}
    done = subprocess.run(
        [*command, "--admin"] if admin else command,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    key = done.stdout.strip().splitlines()[-1]
    assert key.startswith("dnn_") and " " not in key
    return key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("tenants")
    url = f"sqlite:///{folder / 'service.db'}"
    server = LiveServer(url, folder / "server.log").start()
    with server.client() as http:
        open_dataset = http.post("/datasets", json=blobs()).json()["id"]
        keys = {
            "alice": create_key(url, "alice"),
            "bob": create_key(url, "bob"),
            "root": create_key(url, "ops", admin=True),
        }
        time.sleep(1.1)  # the open-mode answer is cached for a second
        alice = bearer(keys["alice"])
        dataset = http.post("/datasets", json=blobs(), headers=alice).json()["id"]
        train = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 30}}
        job = http.post("/train", json=train, headers=alice).json()["job_id"]
        http.headers.update(alice)
        finished = wait_for(http, job, TERMINAL)
        del http.headers["Authorization"]
        yield {
            "http": http,
            "url": url,
            "keys": keys,
            "open_dataset": open_dataset,
            "dataset": dataset,
            "job": job,
            "model": finished["model_id"],
            "db": folder / "service.db",
        }
    server.stop()


def test_missing_or_bad_key_is_401(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    missing = http.get("/datasets")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["code"] == "unauthorized"
    assert http.get("/datasets", headers=bearer("dnn_not-a-key")).status_code == 401
    assert http.get("/datasets", headers={"Authorization": "Basic abc"}).status_code == 401
    assert http.get("/healthz").status_code == 200


def test_other_tenants_ids_answer_404_and_nothing_changes(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    alice, bob = bearer(tenants["keys"]["alice"]), bearer(tenants["keys"]["bob"])
    dataset, job, model = tenants["dataset"], tenants["job"], tenants["model"]
    before = {
        path: http.get(path, headers=alice).json()
        for path in (f"/datasets/{dataset}", f"/jobs/{job}", f"/models/{model}")
    }

    attempts = [
        http.get(f"/datasets/{dataset}", headers=bob),
        http.delete(f"/datasets/{dataset}", headers=bob),
        http.get(f"/jobs/{job}", headers=bob),
        http.get(f"/jobs/{job}/history", headers=bob),
        http.post(f"/jobs/{job}/cancel", headers=bob),
        http.get(f"/models/{model}", headers=bob),
        http.get(f"/models/{model}/weights", headers=bob),
        http.delete(f"/models/{model}", headers=bob),
        http.post("/predict", json={"model_id": model, "instances": [[0.0] * 4]}, headers=bob),
        http.post("/train", json={"dataset_id": dataset}, headers=bob),
        # Data made in open mode belongs to the open tenant, not to a keyed one.
        http.get(f"/datasets/{tenants['open_dataset']}", headers=alice),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "not_found"
    assert http.get("/jobs", headers=bob).json()["items"] == []
    assert http.get("/models", headers=bob).json()["items"] == []
    after = {path: http.get(path, headers=alice).json() for path in before}
    assert after == before
    ok = http.post("/predict", json={"model_id": model, "instances": [[0.0] * 4]}, headers=alice)
    assert ok.status_code == 200


def test_admin_routes_need_an_admin_key(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    alice, root = bearer(tenants["keys"]["alice"]), bearer(tenants["keys"]["root"])
    assert http.get("/admin/tenants", headers=alice).status_code == 403
    assert http.get("/admin/tenants").status_code == 401
    listed = http.get("/admin/tenants", headers=root)
    assert listed.status_code == 200
    assert {t["tenant_id"] for t in listed.json()["items"]} >= {"alice", "bob", "ops"}
    keys = http.get("/admin/keys", headers=root).json()["items"]
    assert all("key" not in record and "key_hash" not in record for record in keys)


def test_admin_revokes_a_key(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    root = bearer(tenants["keys"]["root"])
    created = http.post("/admin/keys", json={"tenant": "carol"}, headers=root)
    assert created.status_code == 201
    carol = bearer(created.json()["key"])
    assert http.get("/datasets", headers=carol).status_code == 200
    revoked = http.delete(f"/admin/keys/{created.json()['id']}", headers=root)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert http.get("/datasets", headers=carol).status_code == 401
    assert http.delete("/admin/keys/unknown", headers=root).status_code == 404
    assert http.post("/admin/keys", json={"tenant": "bad name!"}, headers=root).status_code == 422


@pytest.mark.parametrize("flag", ["yes", "true", 1, "on"])
def test_admin_rights_are_granted_by_a_json_true_only(tenants: dict[str, Any], flag: Any) -> None:
    """`"admin": "yes"` used to create an admin key: lax coercion read it as true."""
    http: httpx.Client = tenants["http"]
    root = bearer(tenants["keys"]["root"])
    before = http.get("/admin/keys", headers=root).json()["items"]
    created = http.post("/admin/keys", json={"tenant": "dave", "admin": flag}, headers=root)
    assert created.status_code == 422, created.text
    assert created.json()["error"]["details"][0]["loc"] == ["body", "admin"]
    assert http.get("/admin/keys", headers=root).json()["items"] == before


def test_a_tampered_model_is_refused(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    alice = bearer(tenants["keys"]["alice"])
    dataset = tenants["dataset"]
    job = http.post(
        "/train",
        json={"dataset_id": dataset, "hyperparameters": {"n_iterations": 5}},
        headers=alice,
    )
    http.headers.update(alice)
    model = wait_for(http, job.json()["job_id"], TERMINAL)["model_id"]
    del http.headers["Authorization"]
    with sqlite3.connect(tenants["db"]) as db:
        (weights,) = db.execute("SELECT weights FROM models WHERE id = ?", (model,)).fetchone()
        flipped = bytes([weights[-1] ^ 0xFF])
        db.execute("UPDATE models SET weights = ? WHERE id = ?", (weights[:-1] + flipped, model))
    for response in (
        http.post("/predict", json={"model_id": model, "instances": [[0.0] * 4]}, headers=alice),
        http.get(f"/models/{model}/weights", headers=alice),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "model_integrity_error"
        assert "sha256" in response.json()["error"]["message"]


def test_request_ids_are_echoed_or_generated(tenants: dict[str, Any]) -> None:
    http: httpx.Client = tenants["http"]
    assert (
        http.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    generated = http.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32 and set(generated) <= set("0123456789abcdef")
    assert http.get("/healthz").headers["x-request-id"] != generated, "each request gets its own"
    assert (
        http.get("/healthz", headers={"X-Request-ID": "no/slashes"}).headers["x-request-id"]
        != "no/slashes"
    )
    assert http.get("/datasets").headers["x-request-id"]
