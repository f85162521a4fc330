"""Sweeps against a live server on SQLite with the local worker pool, two tenants."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from job_helpers import TERMINAL, blobs, wait_for
from live_server import LiveServer
from sweep_helpers import best_by_metric, most_at_once, run_intervals, wait_for_sweep

from app.auth import OPEN_MODE_TENANT
from app.db.engine import make_engine, make_session_factory, transaction
from app.store import sweeps

pytestmark = pytest.mark.slow

# The per-tenant job limit is below the sweep's trial count: only started trials count.
JOB_LIMIT = 3
DEEP: Any = 1
for _ in range(500):
    DEEP = [DEEP]


def create_key(database_url: str, tenant: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "app.cli.main", "keys", "create", "--tenant", tenant],
        env={**os.environ, "DNN_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    folder = tmp_path_factory.mktemp("sweeps")
    server = LiveServer.in_folder(
        folder, workers=2, DNN_MAX_ACTIVE_JOBS_PER_TENANT=str(JOB_LIMIT)
    ).start()
    url = f"sqlite:///{folder / 'service.db'}"
    keys = {tenant: create_key(url, tenant) for tenant in ("alice", "bob")}
    time.sleep(1.1)  # the open-mode answer is cached for a second
    clients = {
        tenant: httpx.Client(
            base_url=server.url, timeout=30.0, headers={"Authorization": f"Bearer {key}"}
        )
        for tenant, key in keys.items()
    }
    yield clients
    for client in clients.values():
        client.close()
    server.stop()


@pytest.fixture(scope="module")
def dataset(tenants: dict[str, httpx.Client]) -> str:
    response = tenants["alice"].post("/datasets", json=blobs(120))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def start(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/sweeps", json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["id"] == accepted["sweep_id"]
    assert response.headers["location"] == f"/sweeps/{accepted['id']}"
    return str(accepted["id"])


def test_grid_sweep_runs_two_at_a_time_and_names_the_best_trial(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    alice = tenants["alice"]
    sweep_id = start(
        alice,
        {
            "dataset_id": dataset,
            "name": "blobs-search",
            "hyperparameters": {"n_iterations": 60, "validation_fraction": 0.25, "seed": 3},
            "grid": {"learning_rate": [0.0005, 0.003], "hidden_layers": [[4], [16, 8]]},
            "max_parallel": 2,
        },
    )
    sweep = wait_for_sweep(alice, sweep_id, {"succeeded"})
    assert sweep["metric"] == "val_cost" and sweep["goal"] == "min"
    assert sweep["n_trials"] == sweep["n_started"] == 4
    trials = sweep["trials"]
    assert {trial["status"] for trial in trials} == {"succeeded"}
    # The grid: the first parameter varies slowest.
    assert [trial["params"] for trial in sorted(trials, key=lambda t: t["trial"])] == [
        {"learning_rate": 0.0005, "hidden_layers": [4]},
        {"learning_rate": 0.0005, "hidden_layers": [16, 8]},
        {"learning_rate": 0.003, "hidden_layers": [4]},
        {"learning_rate": 0.003, "hidden_layers": [16, 8]},
    ]
    job_ids = [trial["job_id"] for trial in trials]
    assert most_at_once(run_intervals(alice, job_ids)) <= 2
    # Leaderboard order, ranked 1..4, and best is the trial with the lowest val_cost.
    assert [trial["rank"] for trial in trials] == [1, 2, 3, 4]
    values = [trial["metrics"]["val_cost"] for trial in trials]
    assert values == sorted(values)
    best = sweep["best"]
    assert best["job_id"] == best_by_metric(alice, sweep) == trials[0]["job_id"]
    assert best["model_id"] == trials[0]["model_id"]
    assert best["hyperparameters"]["learning_rate"] == trials[0]["params"]["learning_rate"]
    # Trials are ordinary jobs: their curves, the decided task, the sweep's model name.
    job = alice.get(f"/jobs/{best['job_id']}").json()
    assert len(job["history"]) == 60 and job["hyperparameters"]["task"] == "binary"
    model = alice.get(f"/models/{best['model_id']}").json()
    assert model["name"] == "blobs-search"
    listed = alice.get("/sweeps").json()["items"]
    assert sweep_id in [item["id"] for item in listed]


def test_cancel_stops_the_sweep_and_its_trials(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    alice = tenants["alice"]
    sweep_id = start(
        alice,
        {
            "dataset_id": dataset,
            "hyperparameters": {"n_iterations": 1_000_000, "record_every": 100},
            "grid": {"seed": [1, 2, 3, 4, 5]},
            "metric": "accuracy",
        },
    )
    started = alice.get(f"/sweeps/{sweep_id}").json()
    first = [trial["job_id"] for trial in started["trials"] if trial["job_id"]]
    assert len(first) == 2 and started["goal"] == "max"
    wait_for(alice, first[0], {"running"})
    cancelled = alice.post(f"/sweeps/{sweep_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    for job_id in first:
        assert wait_for(alice, job_id, TERMINAL)["status"] == "cancelled"
    sweep = wait_for_sweep(alice, sweep_id, {"cancelled"})
    assert sweep["n_started"] == 2 and sweep["best"] is None
    assert [trial["status"] for trial in sweep["trials"]][2:] == ["pending"] * 3
    again = alice.post(f"/sweeps/{sweep_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"


def test_cancelling_one_trial_starts_the_next(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    """A trial that ends outside a worker's run (cancelled while queued or running) still
    frees its place: the safety net advances the sweep."""
    alice = tenants["alice"]
    sweep_id = start(
        alice,
        {
            "dataset_id": dataset,
            "hyperparameters": {"n_iterations": 1_000_000, "record_every": 100},
            "grid": {"seed": [1, 2, 3]},
            "max_parallel": 1,
        },
    )
    for index in range(3):
        sweep = alice.get(f"/sweeps/{sweep_id}").json()
        assert sweep["n_started"] == index + 1
        job_id = next(t["job_id"] for t in sweep["trials"] if t["trial"] == index)
        assert alice.post(f"/jobs/{job_id}/cancel").status_code == 202
        wait_for(alice, job_id, TERMINAL)
        deadline = time.monotonic() + 30
        while index < 2 and time.monotonic() < deadline:
            if alice.get(f"/sweeps/{sweep_id}").json()["n_started"] == index + 2:
                break
            time.sleep(0.1)
    sweep = wait_for_sweep(alice, sweep_id, {"failed"})
    assert sweep["error"] == "no trial succeeded" and sweep["best"] is None


def test_random_sweep_is_reproducible_from_its_seed(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    alice = tenants["alice"]
    body = {
        "dataset_id": dataset,
        "hyperparameters": {"n_iterations": 5},
        "random": {
            "n_trials": 3,
            "seed": 7,
            "space": {
                "learning_rate": {"low": 0.0001, "high": 0.1, "log": True},
                "n_iterations": {"low": 5, "high": 20},
                "activation": ["relu", "tanh"],
            },
        },
        "max_parallel": 3,
    }
    plans = []
    for _ in range(2):
        # One after the other: together they would pass the tenant's job limit.
        sweep = wait_for_sweep(alice, start(alice, body), {"succeeded"})
        assert sweep["metric"] == "cost"
        plans.append(sorted((t["trial"], sorted(t["params"].items())) for t in sweep["trials"]))
    assert plans[0] == plans[1]
    for _, params in plans[0]:
        values = dict(params)
        assert 0.0001 <= values["learning_rate"] <= 0.1
        assert isinstance(values["n_iterations"], int) and 5 <= values["n_iterations"] <= 20
        assert values["activation"] in {"relu", "tanh"}


@pytest.mark.parametrize(
    ("change", "code", "where", "words"),
    [
        ({"grid": {"learning_rate": [0.1, -1.0]}}, "invalid_input", ["trials", 1], "trial 1"),
        ({"grid": {"hidden_layers": [[8], [5000]]}}, "limit_exceeded", ["trials", 1], "4096"),
        ({"grid": {"batch_size": [500]}}, "invalid_input", ["trials", 0], "batch_size"),
        ({"grid": {"seed": list(range(300))}}, "limit_exceeded", ["grid"], "256"),
        ({"grid": {"lr": [0.1]}}, "invalid_input", ["grid", "lr"], "'lr'"),
        ({"grid": {"seed": [1]}, "metric": "val_cost"}, "invalid_input", ["trials", 0], "val"),
        ({"grid": {"seed": []}}, "invalid_input", ["body"], "values"),
        ({"random": {"n_trials": 1000, "space": {"seed": [1]}}}, "limit_exceeded", ["random"], ""),
        (
            {"random": {"n_trials": 1, "space": {"l2": {"low": 0, "high": 1, "log": True}}}},
            "invalid_input",
            ["body"],
            "log",
        ),
        (
            {"grid": {"seed": [1]}, "random": {"n_trials": 1, "space": {"seed": [1]}}},
            "invalid_input",
            ["body"],
            "exactly one",
        ),
        (
            {"grid": {"seed": [1]}, "promote": "2nd@best"},
            "invalid_input",
            ["body", "promote"],
            "a letter, then",
        ),
        (
            {"grid": {"seed": [1]}, "hyperparameters": {"nope": 1}},
            "invalid_input",
            ["trials", 0],
            "nope",
        ),
        # JSON true is not a number: it was read as 1.
        (
            {"grid": {"n_iterations": [True, 2]}},
            "invalid_input",
            ["trials", 0, "n_iterations"],
            "valid integer",
        ),
        (
            {"grid": {"seed": [1]}, "max_parallel": True},
            "invalid_input",
            ["body", "max_parallel"],
            "valid integer",
        ),
        (
            {"random": {"n_trials": 2, "space": {"l2": {"low": False, "high": 1}}}},
            "invalid_input",
            ["body", "random", "space", "l2"],
            "valid",
        ),
        # Nested 500 deep, a value failed as a 500 when the request was hashed.
        (
            {"grid": {"seed": [DEEP]}},
            "invalid_input",
            ["body", "grid", "seed", 0],
            "nests deeper than",
        ),
        (
            {"grid": {"seed": [1]}, "hyperparameters": {"early_stopping": DEEP}},
            "invalid_input",
            ["body", "hyperparameters", "early_stopping"],
            "nests deeper than",
        ),
        # A regression's cost was ranked against a classifier's: the sweep named a "best".
        (
            {"grid": {"task": ["regression", "binary"]}},
            "invalid_input",
            ["trials", 1, "task"],
            "cannot be ranked together",
        ),
        # An empty grid searched nothing: it ran one trial of the base hyperparameters.
        ({"grid": {}}, "invalid_input", ["body", "grid"], "at least 1"),
        # Refused by the worker after a 202 before: the sweep failed with "no trial succeeded".
        (
            {"grid": {"validation_fraction": [0.2, 1e-9]}},
            "invalid_input",
            ["trials", 1, "validation_fraction"],
            "one for validation",
        ),
    ],
)
def test_bad_sweeps_are_refused_naming_the_trial_and_parameter(
    tenants: dict[str, httpx.Client],
    dataset: str,
    change: dict[str, Any],
    code: str,
    where: list[Any],
    words: str,
) -> None:
    alice = tenants["alice"]
    before = len(alice.get("/jobs", params={"limit": 500}).json()["items"])
    response = alice.post("/sweeps", json={"dataset_id": dataset, **change})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    assert words in error["message"] + str(error["details"]), error
    assert error["details"][0]["loc"][: len(where)] == where, error
    assert len(alice.get("/jobs", params={"limit": 500}).json()["items"]) == before


def test_another_tenants_sweep_is_404(tenants: dict[str, httpx.Client], dataset: str) -> None:
    alice, bob = tenants["alice"], tenants["bob"]
    sweep_id = start(
        alice,
        {"dataset_id": dataset, "hyperparameters": {"n_iterations": 5}, "grid": {"seed": [1]}},
    )
    for response in (bob.get(f"/sweeps/{sweep_id}"), bob.post(f"/sweeps/{sweep_id}/cancel")):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert bob.get("/sweeps").json()["items"] == []
    # Nor can a sweep train on another tenant's dataset.
    theirs = bob.post("/sweeps", json={"dataset_id": dataset, "grid": {"seed": [1]}})
    assert theirs.status_code == 404, theirs.text
    assert wait_for_sweep(alice, sweep_id, {"succeeded"})["best"] is not None


def test_a_retried_sweep_with_an_idempotency_key_is_one_sweep(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    alice = tenants["alice"]
    body = {"dataset_id": dataset, "hyperparameters": {"n_iterations": 5}, "grid": {"seed": [1]}}
    headers = {"Idempotency-Key": "sweep-once"}
    first = alice.post("/sweeps", json=body, headers=headers)
    again = alice.post("/sweeps", json=body, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    other = alice.post("/sweeps", json={**body, "max_parallel": 1}, headers=headers)
    assert other.status_code == 409, other.text
    sweep = wait_for_sweep(alice, first.json()["sweep_id"], {"succeeded"})
    assert sweep["n_started"] == 1
    ids = [item["id"] for item in alice.get("/sweeps", params={"limit": 500}).json()["items"]]
    assert ids.count(first.json()["sweep_id"]) == 1


def test_the_best_model_is_promoted_to_the_alias_in_its_history(
    tenants: dict[str, httpx.Client], dataset: str
) -> None:
    alice = tenants["alice"]
    body = {
        "dataset_id": dataset,
        "name": "promoted-search",
        "hyperparameters": {"n_iterations": 30, "validation_fraction": 0.25},
        "grid": {"learning_rate": [0.0005, 0.05]},
        "promote": "production",
    }
    sweep = wait_for_sweep(alice, start(alice, body), {"succeeded"})
    assert sweep["promote"] == "production" and sweep["error"] is None
    best = alice.get(f"/models/{sweep['best']['model_id']}").json()
    named = alice.get("/models/names/promoted-search").json()
    assert named["aliases"] == {"production": best["version"]}
    [move] = named["alias_history"]
    assert move["alias"] == "production" and move["version"] == best["version"]
    assert move["previous_version"] is None and move["by"] == f"sweep:{sweep['id']}"
    # Predict by the alias reaches the best trial's model.
    row = blobs(1)["features"]
    by_alias = alice.post(
        "/predict", json={"model": "promoted-search", "alias": "production", "instances": row}
    )
    assert by_alias.status_code == 200, by_alias.text
    assert by_alias.json()["model_id"] == best["id"]


def test_a_running_sweep_keeps_its_dataset_between_two_trials(tmp_path: Path) -> None:
    """Between one trial's end and the next one's start (or while the reconciler retries a
    failed start) no job of the sweep is active: DELETE /datasets/{id} answered 204 there, and
    the sweep then failed with "trial 1 could not start"."""
    # The tenant's one active job, on another dataset, keeps the sweep from starting a trial.
    server = LiveServer.in_folder(tmp_path, workers=1, DNN_MAX_ACTIVE_JOBS_PER_TENANT="1")
    with server, server.client() as http:
        dataset = http.post("/datasets", json=blobs(30)).json()["id"]
        other = http.post("/datasets", json=blobs(30, seed=1)).json()["id"]
        busy = http.post(
            "/train", json={"dataset_id": other, "hyperparameters": {"n_iterations": 1_000_000}}
        ).json()["id"]
        engine = make_engine(server.database_url)
        with transaction(make_session_factory(engine)) as session:
            sweep_id = sweeps.create_sweep(
                session,
                tenant_id=OPEN_MODE_TENANT,
                name="between",
                dataset_id=dataset,
                metric="cost",
                goal="min",
                max_parallel=1,
                search={"grid": {"seed": [1]}},
                trials=[{"seed": 1}],
                promote=None,
            ).id
        engine.dispose()
        refused = http.delete(f"/datasets/{dataset}")
        assert refused.status_code == 409, refused.text
        assert "running sweep" in refused.json()["error"]["message"]
        assert http.post(f"/sweeps/{sweep_id}/cancel").status_code == 202
        assert http.delete(f"/datasets/{dataset}").status_code == 204
        http.post(f"/jobs/{busy}/cancel")
        wait_for(http, busy, TERMINAL)
