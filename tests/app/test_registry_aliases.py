"""Aliases of model names on a live server: moves and their history, predict by alias, 409 on
deleting an aliased version, and tenant scoping."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from registry_helpers import (
    classes_problem,
    create_key_with_id,
    json_dataset,
    tenant_client,
    train_model,
)

from app.client import Client, ClientError

pytestmark = pytest.mark.slow
NAME = "churn"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("registry")
    server = LiveServer.in_folder(folder)
    alice_id, alice_key = create_key_with_id(server.database_url, "alice")
    _, bob_key = create_key_with_id(server.database_url, "bob")
    with (
        server.start(),
        tenant_client(server.url, alice_key) as alice,
        tenant_client(server.url, bob_key) as bob,
    ):
        X, y = classes_problem(200, 2, seed=5)
        dataset = alice.post("/datasets", json=json_dataset(X, y, "churn")).json()["id"]
        # Three versions of one name, each trained differently so their answers differ.
        versions = [train_model(alice, dataset, NAME, n_iterations=5 + 20 * i) for i in range(3)]
        yield {
            "server": server,
            "alice": alice,
            "bob": bob,
            "alice_key": alice_key,
            "alice_key_id": alice_id,
            "versions": versions,
            "rows": X[:5].tolist(),
        }


def put_alias(http: httpx.Client, alias: str, version: int, name: str = NAME) -> httpx.Response:
    return http.put(f"/models/names/{name}/aliases/{alias}", json={"version": version})


def test_aliases_move_and_every_move_is_recorded(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    created = put_alias(alice, "staging", 1)
    assert created.status_code == 200, created.text
    assert created.json() == {
        "name": NAME,
        "alias": "staging",
        "version": 1,
        "model_id": registry["versions"][0],
        "previous_version": None,
    }
    moved = put_alias(alice, "staging", 3)
    assert moved.status_code == 200
    assert moved.json()["previous_version"] == 1
    assert put_alias(alice, "staging", 3).json()["previous_version"] == 3  # no move, no record
    assert put_alias(alice, "staging", 2).status_code == 200

    page = alice.get(f"/models/names/{NAME}")
    assert page.status_code == 200
    body = page.json()
    assert [v["version"] for v in body["versions"]] == [1, 2, 3]
    assert [v["id"] for v in body["versions"]] == registry["versions"]
    assert all("accuracy" in v["metrics"] and v["created_at"] for v in body["versions"])
    assert body["aliases"]["staging"] == 2
    staging = [move for move in body["alias_history"] if move["alias"] == "staging"]
    assert [(m["version"], m["previous_version"]) for m in staging] == [(1, None), (3, 1), (2, 3)]
    assert {m["by"] for m in staging} == {registry["alice_key_id"]}
    times = [datetime.fromisoformat(m["at"]) for m in staging]
    assert times == sorted(times)


def test_removing_an_alias_is_a_recorded_move(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    assert put_alias(alice, "canary", 1).status_code == 200
    removed = alice.delete(f"/models/names/{NAME}/aliases/canary")
    assert removed.status_code == 204
    again = alice.delete(f"/models/names/{NAME}/aliases/canary")
    assert again.status_code == 404
    body = alice.get(f"/models/names/{NAME}").json()
    assert "canary" not in body["aliases"]
    canary = [move for move in body["alias_history"] if move["alias"] == "canary"]
    assert [(m["version"], m["previous_version"]) for m in canary] == [(1, None), (None, 1)]


def test_predict_by_alias_on_both_protocols(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    assert put_alias(alice, "production", 2).status_code == 200
    rows = registry["rows"]
    by_alias = alice.post(
        "/predict", json={"model": NAME, "alias": "production", "instances": rows}
    )
    assert by_alias.status_code == 200, by_alias.text
    by_version = alice.post("/predict", json={"model": NAME, "version": 2, "instances": rows})
    assert by_alias.json() == by_version.json()
    assert by_alias.json()["model_id"] == registry["versions"][1]

    tensor = {"name": "input", "shape": [5, 4], "datatype": "FP64", "data": rows}
    v2 = alice.post(f"/v2/models/{NAME}@production/infer", json={"inputs": [tensor]})
    assert v2.status_code == 200, v2.text
    assert v2.json()["model_version"] == "2"
    assert alice.get(f"/v2/models/{NAME}@production").json()["name"] == NAME
    assert alice.get(f"/v2/models/{NAME}@production/ready").status_code == 200
    # The alias moves, and the very next prediction follows it.
    assert put_alias(alice, "production", 3).status_code == 200
    moved = alice.post("/predict", json={"model": NAME, "alias": "production", "instances": rows})
    assert moved.json()["model_id"] == registry["versions"][2]
    assert (
        alice.post(f"/v2/models/{NAME}@production/infer", json={"inputs": [tensor]}).json()[
            "model_version"
        ]
        == "3"
    )
    # Every /v2/models route without /versions/ takes NAME@alias, the statistics too.
    stats = alice.get(f"/v2/models/{NAME}@production/stats")
    assert stats.status_code == 200, stats.text
    assert [(s["name"], s["version"]) for s in stats.json()["model_stats"]] == [(NAME, "3")]
    assert stats.json()["model_stats"][0]["execution_count"] >= 1
    assert alice.get(f"/v2/models/{NAME}@production/config").json()["name"] == NAME

    unknown = alice.post("/v2/models/churn@nope/infer", json={"inputs": [tensor]})
    assert unknown.status_code == 404
    assert isinstance(unknown.json()["error"], str)
    unknown_stats = alice.get("/v2/models/churn@nope/stats")
    assert unknown_stats.status_code == 404
    assert unknown_stats.json() == {"error": "model 'churn' has no alias 'nope'"}
    missing = alice.post("/predict", json={"model": NAME, "alias": "nope", "instances": rows})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_deleting_an_aliased_version_is_409_until_the_alias_moves(
    registry: dict[str, Any],
) -> None:
    alice: httpx.Client = registry["alice"]
    X, y = classes_problem(80, 2, seed=9)
    dataset = alice.post("/datasets", json=json_dataset(X, y, "tmp")).json()["id"]
    first = train_model(alice, dataset, "temporary", n_iterations=5)
    second = train_model(alice, dataset, "temporary", n_iterations=5)
    assert put_alias(alice, "live", 1, name="temporary").status_code == 200
    refused = alice.delete(f"/models/{first}")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflict"
    assert "live" in refused.json()["error"]["message"]
    assert alice.get(f"/models/{first}").status_code == 200
    assert put_alias(alice, "live", 2, name="temporary").status_code == 200
    assert alice.delete(f"/models/{first}").status_code == 204
    # The history keeps naming version 1, and version numbers are never reused.
    history = alice.get("/models/names/temporary").json()["alias_history"]
    assert [(m["version"], m["previous_version"]) for m in history] == [(1, None), (2, 1)]
    assert alice.delete(f"/models/{second}").status_code == 409


@pytest.mark.parametrize("alias", ["1st", "-x", "a b", "a" * 65, "prod%40x"])
def test_unsafe_alias_names_are_refused(registry: dict[str, Any], alias: str) -> None:
    response = put_alias(registry["alice"], alias, 1)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"


def test_the_alias_rule_is_in_the_openapi_document(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    paths = alice.get("/openapi.json").json()["paths"]
    parameters = paths["/models/names/{name}/aliases/{alias}"]["put"]["parameters"]
    pattern = next(p for p in parameters if p["name"] == "alias")["schema"]["pattern"]
    assert re.fullmatch(pattern.strip("^$"), "production")
    assert not re.fullmatch(pattern.strip("^$"), "0" * 10)  # refused by the route as well
    assert put_alias(alice, "0" * 10, 1).status_code == 422


def test_bad_alias_requests_are_clear_4xx(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    assert put_alias(alice, "prod", 99).status_code == 404
    assert put_alias(alice, "prod", 1, name="no-such-name").status_code == 404
    for body in ({"version": 0}, {"version": "1"}, {}, {"version": 1, "extra": True}):
        response = alice.put(f"/models/names/{NAME}/aliases/prod", json=body)
        assert response.status_code == 422, (body, response.text)
    rows = registry["rows"]
    for body in (
        {"model_id": registry["versions"][0], "alias": "production", "instances": rows},
        {"model": NAME, "version": 1, "alias": "production", "instances": rows},
    ):
        assert alice.post("/predict", json=body).status_code == 422
    assert alice.get("/models/names/no-such-name").status_code == 404


def test_a_npy_body_takes_the_alias_from_the_query(registry: dict[str, Any]) -> None:
    """?alias= used to be ignored: an alias that does not exist answered with the latest version."""
    alice: httpx.Client = registry["alice"]
    assert put_alias(alice, "staging", 1).status_code == 200
    rows = np.asarray(registry["rows"], dtype=np.float64)
    buffer = io.BytesIO()
    np.save(buffer, rows, allow_pickle=False)

    def predict(**query: Any) -> httpx.Response:
        return alice.post(
            "/predict",
            params=query,
            content=buffer.getvalue(),
            headers={"Content-Type": "application/x-npy"},
        )

    by_alias = predict(model=NAME, alias="staging")
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["model_id"] == registry["versions"][0]
    missing = predict(model=NAME, alias="no-such-alias")
    assert missing.status_code == 404, missing.text
    assert "no-such-alias" in missing.json()["error"]["message"]
    for query in (
        {"model_id": registry["versions"][0], "alias": "staging"},
        {"model": NAME, "version": "1", "alias": "staging"},
        {"model": NAME, "alias": ""},
    ):
        assert predict(**query).status_code == 422, query
    with_json = alice.post(
        "/predict",
        params={"alias": "staging"},
        json={"model": NAME, "instances": registry["rows"]},
    )
    assert with_json.status_code == 422, with_json.text


def test_another_tenant_sees_none_of_it(registry: dict[str, Any]) -> None:
    alice: httpx.Client = registry["alice"]
    bob: httpx.Client = registry["bob"]
    assert put_alias(alice, "shared", 1).status_code == 200
    before = alice.get(f"/models/names/{NAME}").json()
    rows = registry["rows"]
    tensor = {"name": "input", "shape": [5, 4], "datatype": "FP64", "data": rows}
    attempts = [
        bob.get(f"/models/names/{NAME}"),
        put_alias(bob, "shared", 2),
        put_alias(bob, "mine", 1),
        bob.delete(f"/models/names/{NAME}/aliases/shared"),
        bob.post("/predict", json={"model": NAME, "alias": "shared", "instances": rows}),
        bob.post(f"/v2/models/{NAME}@shared/infer", json={"inputs": [tensor]}),
    ]
    for response in attempts:
        assert response.status_code == 404, (response.request.url, response.text)
    assert alice.get(f"/models/names/{NAME}").json() == before


def test_python_client_and_cli_take_an_alias(registry: dict[str, Any], tmp_path: Path) -> None:
    alice: httpx.Client = registry["alice"]
    server: LiveServer = registry["server"]
    assert put_alias(alice, "cli", 1).status_code == 200
    rows = registry["rows"]
    expected = alice.post("/predict", json={"model": NAME, "version": 1, "instances": rows})
    with Client(server.url, registry["alice_key"]) as api:
        answer = api.predict(NAME, rows, alias="cli")
        assert answer == expected.json()
        labels = api.predict_labels(NAME, rows, alias="cli")
        assert labels.tolist() == expected.json()["predictions"]
        proba = api.predict_proba(NAME, rows, alias="cli")
        assert proba.tolist() == expected.json()["probabilities"]
        with pytest.raises(ClientError) as refused:
            api.predict(NAME, rows, alias="absent")
        assert refused.value.status == 404
        assert api.get_model_name(NAME)["aliases"]["cli"] == 1
        assert api.set_alias(NAME, "cli", 2)["previous_version"] == 1
        api.delete_alias(NAME, "cli")

    data = tmp_path / "rows.csv"
    header = "a,b,c,d\n"
    data.write_text(header + "".join(",".join(map(str, row)) + "\n" for row in rows))
    assert put_alias(alice, "cli", 1).status_code == 200
    command = [sys.executable, "-m", "app.cli.main", "predict", NAME, str(data), "--alias", "cli"]
    done = subprocess.run(
        [*command, "--url", server.url, "--api-key", registry["alice_key"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(label) for label in expected.json()["predictions"]]


def test_cli_exports_the_version_an_alias_names(registry: dict[str, Any], tmp_path: Path) -> None:
    alice: httpx.Client = registry["alice"]
    server: LiveServer = registry["server"]
    assert put_alias(alice, "exported", 2).status_code == 200
    target = tmp_path / "aliased.onnx"
    command = [sys.executable, "-m", "app.cli.main", "export", NAME, "--alias", "exported"]
    done = subprocess.run(
        [*command, "-o", str(target), "--url", server.url, "--api-key", registry["alice_key"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    expected = alice.get(f"/models/{registry['versions'][1]}/onnx").content
    assert target.read_bytes() == expected


def test_cli_without_a_key_says_how_to_send_one(registry: dict[str, Any]) -> None:
    server: LiveServer = registry["server"]
    env = {key: value for key, value in os.environ.items() if key != "DNN_API_KEY"}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "jobs", "--url", server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4
    assert done.stderr.strip().endswith(
        "(HTTP 401, unauthorized) (pass --api-key KEY or set DNN_API_KEY)"
    )


def test_cli_show_of_an_unknown_id_names_both_lookups(registry: dict[str, Any]) -> None:
    server: LiveServer = registry["server"]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "show", "nope", "--url", server.url],
        env={**os.environ, "DNN_API_KEY": registry["alice_key"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 4
    assert done.stderr.strip() == "error: no job or model has the id 'nope' (HTTP 404, not_found)"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["models", "--name", "absent"], "no model is named 'absent'"),
        (["jobs", "--status", "cancelling"], "no cancelling jobs"),
    ],
)
def test_cli_lists_that_match_nothing_say_which_filter(
    registry: dict[str, Any], argv: list[str], said: str
) -> None:
    server: LiveServer = registry["server"]
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", *argv, "--url", server.url],
        env={**os.environ, "DNN_API_KEY": registry["alice_key"]},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == said
