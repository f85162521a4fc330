"""Sweeps through app.client and the `dnn-service sweeps` commands, against a live server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from job_helpers import blobs
from terminal import COLUMNS, run_in_terminal, written_lines

from app.cli.main import main
from app.client import Client, ClientError

pytestmark = pytest.mark.slow

# Four tiny trials on a tiny dataset: the whole sweep ends in a few seconds.
BASE = {"n_iterations": 20, "validation_fraction": 0.25, "seed": 3}
GRID = {"learning_rate": [0.0005, 0.05], "hidden_layers": [[4], [8, 4]]}
# Trials that would run for hours: only ever cancelled.
ENDLESS = {"n_iterations": 1_000_000, "record_every": 1000}
LEADERBOARD_ROW = re.compile(r"^(\d+)\s+(\S+)\s+\w+=")  # rank, metric, first parameter


@pytest.fixture(scope="module")
def api(shared_client: httpx.Client) -> Client:
    return Client(str(shared_client.base_url))


@pytest.fixture(scope="module")
def dataset(api: Client) -> str:
    return str(api._json("POST", "/datasets", json=blobs(60))["id"])


def dnn_service(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli.main", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_client_grid_sweep_leaderboard_wait_and_promote(api: Client, dataset: str) -> None:
    accepted = api.create_sweep(
        dataset,
        hyperparameters=BASE,
        grid=GRID,
        name="client-search",
        max_parallel=2,
        promote="production",
    )
    assert accepted["id"] == accepted["sweep_id"] and accepted["status"] == "running"
    sweep = api.wait_sweep(accepted["id"], timeout=60, poll_seconds=0.1)
    assert sweep["status"] == "succeeded" and sweep["n_trials"] == sweep["n_started"] == 4
    assert sweep["metric"] == "val_cost" and sweep["goal"] == "min"
    trials = sweep["trials"]
    assert [trial["rank"] for trial in trials] == [1, 2, 3, 4]
    costs = [trial["metrics"]["val_cost"] for trial in trials]
    assert costs == sorted(costs)
    assert sweep["best"]["job_id"] == trials[0]["job_id"]
    assert api.get_sweep(accepted["id"]) == sweep
    assert accepted["id"] in [item["id"] for item in api.list_sweeps()]
    best = api.get_model(sweep["best"]["model_id"])
    assert api.get_model_name("client-search")["aliases"] == {"production": best["version"]}


def test_client_cancel_and_wait_timeout(api: Client, dataset: str) -> None:
    sweep_id = api.create_sweep(
        dataset, hyperparameters=ENDLESS, grid={"seed": [1, 2, 3]}, max_parallel=1
    )["id"]
    with pytest.raises(TimeoutError, match="still running"):
        api.wait_sweep(sweep_id, timeout=0.2, poll_seconds=0.05)
    assert api.cancel_sweep(sweep_id)["status"] == "cancelled"
    # wait_sweep also waits for the running trial to stop.
    sweep = api.wait_sweep(sweep_id, timeout=30, poll_seconds=0.1)
    assert [trial["status"] for trial in sweep["trials"]] == ["cancelled", "pending", "pending"]
    assert sweep["best"] is None
    with pytest.raises(ClientError) as again:
        api.cancel_sweep(sweep_id)
    assert again.value.status == 409
    with pytest.raises(ClientError) as unknown:
        api.get_sweep("0" * 32)
    assert unknown.value.status == 404


def test_cli_create_wait_list_show(
    shared_client: httpx.Client, dataset: str, tmp_path: Path
) -> None:
    url = str(shared_client.base_url)
    space = tmp_path / "space.json"
    space.write_text(json.dumps(GRID))
    created = dnn_service(
        "sweeps", "create", str(space), "--dataset", dataset, "--iterations", "20",
        "--validation-fraction", "0.25", "--seed", "3", "--name", "cli-search", "--wait", url=url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    best_model = created.stdout.strip()
    [sweep] = [s for s in shared_client.get("/sweeps").json()["items"] if s["name"] == "cli-search"]
    board = shared_client.get(f"/sweeps/{sweep['id']}").json()
    assert board["best"]["model_id"] == best_model
    assert board["trials"][0]["hyperparameters"]["n_iterations"] == 20
    assert f"sweep {sweep['id']} started" in created.stderr and "VAL_COST" in created.stderr

    listed = dnn_service("sweeps", "list", url=url)
    assert listed.returncode == 0 and sweep["id"] in listed.stdout and "4/4" in listed.stdout
    as_json = json.loads(dnn_service("sweeps", "list", "-o", "json", url=url).stdout)
    assert sweep["id"] in [item["id"] for item in as_json]

    shown = dnn_service("sweeps", "show", sweep["id"], url=url)
    assert shown.returncode == 0, shown.stderr
    assert best_model in shown.stdout and "val_cost (lowest is best)" in shown.stdout
    rows = [m.groups() for m in map(LEADERBOARD_ROW.match, shown.stdout.splitlines()) if m]
    assert [int(rank) for rank, _ in rows] == [1, 2, 3, 4]
    printed = [float(value) for _, value in rows]
    assert printed == sorted(printed)
    assert printed[0] == pytest.approx(board["trials"][0]["metrics"]["val_cost"], rel=1e-3)
    assert (
        json.loads(dnn_service("sweeps", "show", sweep["id"], "-o", "json", url=url).stdout)[
            "trials"
        ]
        == board["trials"]
    )
    assert dnn_service("sweeps", "show", "0" * 32, url=url).returncode == 4

    for command in (("sweeps", "list"), ("sweeps", "show", sweep["id"])):
        status, output = run_in_terminal(*command, "--url", url)
        assert status == 0, output
        assert max(len(line) for line in written_lines(output)) <= COLUMNS, output
        assert sweep["id"] in output


def test_cli_random_sweep_cancel(shared_client: httpx.Client, dataset: str) -> None:
    url = str(shared_client.base_url)
    space = '{"learning_rate": {"low": 0.001, "high": 0.1, "log": true}}'
    created = dnn_service(
        "sweeps", "create", space, "--dataset", dataset, "--strategy", "random",
        "--n-trials", "3", "--search-seed", "7", "--iterations", "1000000", "--metric", "cost",
        "--max-parallel", "1", "-o", "json", url=url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    sweep_id = json.loads(created.stdout)["sweep_id"]
    sweep = shared_client.get(f"/sweeps/{sweep_id}").json()
    assert sweep["search"]["random"]["seed"] == 7 and sweep["n_trials"] == 3
    assert sweep["metric"] == "cost" and sweep["max_parallel"] == 1

    cancelled = dnn_service("sweeps", "cancel", sweep_id, url=url)
    assert cancelled.returncode == 0 and cancelled.stdout == f"sweep {sweep_id} is cancelled\n"
    again = dnn_service("sweeps", "cancel", sweep_id, url=url)
    assert again.returncode == 4 and "HTTP 409" in again.stderr


@pytest.mark.parametrize(
    ("space", "options", "message"),
    [
        ('{"learning_rate": [0.1,', (), "the inline search space is not valid JSON"),
        ("missing.json", (), "cannot read missing.json: No such file or directory"),
        ("broken.json", (), "broken.json is not valid JSON: Expecting ',' delimiter (line 1"),
        ("list.json", (), "list.json must be a JSON object"),
        ('{"seed": [1]}', ("--strategy", "random"), "--strategy random needs --n-trials"),
        ('{"seed": [1]}', ("--n-trials", "3"), "--n-trials and --search-seed are for --strategy"),
    ],
)
def test_cli_bad_create_input_is_a_one_line_usage_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    space: str,
    options: tuple[str, ...],
    message: str,
) -> None:
    (tmp_path / "broken.json").write_text('{"learning_rate": [0.1 0.2]}')
    (tmp_path / "list.json").write_text("[0.1, 0.2]")
    monkeypatch.chdir(tmp_path)
    # The entry point's own function, in this process; no server: refused before any request.
    with pytest.raises(SystemExit) as exited:
        main(["sweeps", "create", space, "--dataset", "D", *options, "--url", "http://127.0.0.1:9"])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith(f"dnn-service sweeps create: error: {message}"), err
    assert err.count("\n") == 1


def test_cli_create_wait_exit_codes_for_failed_and_cancelled_sweeps(
    shared_client: httpx.Client, dataset: str
) -> None:
    url = str(shared_client.base_url)
    # Regression on raw features in the thousands at the largest allowed rate, plain gradient
    # descent: the cost overflows within a few iterations and every trial fails.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 2)) * 5000
    huge = {
        "name": "huge",
        "features": X.round(1).tolist(),
        "labels": (0.37 * X[:, 0] + 1000.5).tolist(),
    }
    uploaded = shared_client.post("/datasets", json=huge)
    assert uploaded.status_code in (200, 201), uploaded.text
    huge_id = uploaded.json()["id"]
    diverging = dnn_service(
        "sweeps", "create", '{"learning_rate": [100]}', "--dataset", huge_id, "--optimizer",
        "gd", "--no-standardize", "--iterations", "200", "--name", "cli-diverging", "--wait",
        url=url,
    )  # fmt: skip
    assert diverging.returncode == 1, diverging.stderr
    assert diverging.stdout == ""  # no best model to print
    [failed] = [
        s for s in shared_client.get("/sweeps").json()["items"] if s["name"] == "cli-diverging"
    ]
    assert failed["status"] == "failed"
    assert f"sweep {failed['id']} failed: " in diverging.stderr

    waiting = subprocess.Popen(
        [
            sys.executable, "-m", "app.cli.main", "sweeps", "create", json.dumps(GRID),
            "--dataset", dataset, "--iterations", str(ENDLESS["n_iterations"]),
            "--name", "cli-cancelled", "--max-parallel", "1", "--wait", "--url", url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        sweep_id = ""
        for _ in range(300):
            named = [
                s
                for s in shared_client.get("/sweeps").json()["items"]
                if s["name"] == "cli-cancelled"
            ]
            if named:
                sweep_id = named[0]["id"]
                break
            time.sleep(0.05)
        assert sweep_id, "the sweep was never created"
        # 202 while its running trial stops, 200 when none had started.
        assert shared_client.post(f"/sweeps/{sweep_id}/cancel").status_code in (200, 202)
        out, err = waiting.communicate(timeout=60)
    finally:
        waiting.kill()
    assert waiting.returncode == 3, err
    assert f"sweep {sweep_id} was cancelled" in err and out == ""
    assert shared_client.get(f"/sweeps/{sweep_id}").json()["status"] == "cancelled"
