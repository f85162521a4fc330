"""Speed of the service (issues 7 and 18): predictions, responsiveness under load and while
training, a 48 MB upload, job overhead, polling, one API process against two.

Starts the real `dnn-service serve` (fresh SQLite file in a temporary folder) and, for the
throughput baseline, a minimal FastAPI no-op app served by the same uvicorn call; prints one table
of figures and their ratios to the targets.

    flock /tmp/bench.lock .venv/bin/python benchmarks/service.py [--quick] [--generator wrk|python]

The load generator is wrk when it is installed (`apt-get install wrk`), else an asyncio/httpx
loop in this process; the table says which one ran. Everything shares the machine's cores: the
server, its training workers and the load generator compete, so read ratios, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from live_server import LiveServer, free_port  # noqa: E402
from service_load import post_upload, probe_while, upload_body  # noqa: E402

WRK_SCRIPT = """
wrk.method = "{method}"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %f %f\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


# --- the no-op baseline app: same body model shape, same uvicorn.run call as `serve` ---------


class NoopBody(BaseModel):
    model_id: str | None = None
    instances: list[list[float]]


def serve_noop(port: int) -> None:
    app = FastAPI()

    @app.get("/readyz")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    # A sync route like POST /predict, so both run in the same threadpool.
    @app.post("/predict")
    def noop(body: NoopBody) -> dict[str, Any]:
        return {"model_id": body.model_id, "predictions": [0]}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="info")


@contextmanager
def noop_server(log_path: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, __file__, "--serve-noop", str(port)], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


# --- load generation -----------------------------------------------------------------------


@dataclass
class Load:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(url: str, method: str, body: str | None, connections: int, seconds: float) -> Load:
    lua_body = "nil" if body is None else json.dumps(body)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.format(method=method, body=lua_body))
    try:
        out = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{round(seconds)}s", "-s", script.name, url],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) ([\d.]+) ([\d.]+)", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    n, duration_us, status_errors, socket_errors = (int(match.group(i)) for i in range(1, 5))
    return Load(
        requests_per_s=n / (duration_us / 1e6),
        p50_ms=float(match.group(5)) / 1000,
        p99_ms=float(match.group(6)) / 1000,
        errors=status_errors + socket_errors,
    )


def run_python(url: str, method: str, body: str | None, connections: int, seconds: float) -> Load:
    async def main() -> Load:
        latencies: list[float] = []
        errors = 0
        content = body.encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        limits = httpx.Limits(max_connections=connections)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            stop_at = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < stop_at:
                    start = time.perf_counter()
                    response = await client.request(method, url, content=content, headers=headers)
                    latencies.append(time.perf_counter() - start)
                    errors += response.status_code >= 400

            began = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - began
        ms = np.array(latencies) * 1000
        return Load(
            len(latencies) / elapsed,
            float(np.percentile(ms, 50)),
            float(np.percentile(ms, 99)),
            errors,
        )

    return asyncio.run(main())


# --- the figures -----------------------------------------------------------------------------


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None


def median_load(loads: list[Load]) -> Load:
    """Each figure's median over several runs of one load."""
    return Load(
        statistics.median(load.requests_per_s for load in loads),
        statistics.median(load.p50_ms for load in loads),
        statistics.median(load.p99_ms for load in loads),
        sum(load.errors for load in loads),
    )


def fmt_range(ratios: list[float]) -> str:
    return f"{min(ratios):.2f}-{max(ratios):.2f}x"


def fmt_load(load: Load) -> str:
    return f"{load.requests_per_s:,.0f} req/s, p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms"


def timed(fn: Callable[[], Any], repeat: int) -> float:
    """Median seconds over `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wait_status(client: httpx.Client, job_id: str, states: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/jobs/{job_id}", params={"max_points": 2}).json()
        if job["status"] in states:
            return job
        time.sleep(0.02)
    raise RuntimeError(f"job {job_id} never reached {states}")


def train(client: httpx.Client, dataset_id: str, **hyperparameters: Any) -> str:
    response = client.post(
        "/train", json={"dataset_id": dataset_id, "hyperparameters": hyperparameters}
    )
    response.raise_for_status()
    job_id: str = response.json()["job_id"]
    return job_id


def upload(client: httpx.Client, n: int, n_features: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_features)).round(4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    response = client.post(
        "/datasets",
        json={"name": f"bench-{n}x{n_features}", "features": X.tolist(), "labels": y.tolist()},
    )
    response.raise_for_status()
    dataset_id: str = response.json()["id"]
    return dataset_id


def seconds_between(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


class Bench:
    def __init__(
        self,
        client: httpx.Client,
        server: LiveServer,
        quick: bool,
        generator: str,
    ) -> None:
        self.client = client
        self.url = server.url
        self.quick = quick
        self.generator = generator
        self.load_seconds = 3.0 if quick else 8.0
        self.rows: list[Row] = []
        self.single_row_rps: dict[int, float] = {}

    def load(
        self,
        url: str,
        method: str,
        body: str | None,
        connections: int,
        seconds: float | None = None,
    ) -> Load:
        run = run_wrk if self.generator == "wrk" else run_python
        return run(url, method, body, connections, seconds or self.load_seconds)

    def setup_model(self) -> None:
        """A stored (30, 16, 8, 1) binary classifier, and the small job that produced it."""
        self.dataset_30 = upload(self.client, 500, 30, seed=0)
        job_id = train(self.client, self.dataset_30, hidden_layers=[16, 8], n_iterations=200)
        job = wait_status(self.client, job_id, {"succeeded", "failed"})
        assert job["status"] == "succeeded", job
        self.model_id: str = job["model_id"]
        self.model_job_id = job_id
        self.one_row = json.dumps(
            {"model_id": self.model_id, "instances": [np.linspace(-1, 1, 30).round(4).tolist()]}
        )

    def single_row(self, noop_url: str, connections: int) -> None:
        """Predict against the no-op in alternating pairs of shorter runs (which goes first
        alternates too): the host takes a vCPU for seconds at a time, and one run of each
        measured that as often as it measured the code. Each figure is the median of the
        pairs' ratios, printed with their range."""
        pairs = 2 if self.quick else 3
        seconds = self.load_seconds if self.quick else self.load_seconds / 2
        predict_url, noop_url = f"{self.url}/predict", f"{noop_url}/predict"
        runs: list[tuple[Load, Load]] = []
        for pair in range(pairs):
            order = (predict_url, noop_url) if pair % 2 == 0 else (noop_url, predict_url)
            first, second = (
                self.load(url, "POST", self.one_row, connections, seconds) for url in order
            )
            runs.append((first, second) if pair % 2 == 0 else (second, first))
        for load in (load for pair in runs for load in pair):
            assert load.errors == 0, f"{load.errors} failed requests"
        throughputs = [predict.requests_per_s / noop.requests_per_s for predict, noop in runs]
        latencies = [predict.p99_ms / noop.p99_ms for predict, noop in runs]
        throughput, latency = statistics.median(throughputs), statistics.median(latencies)
        predict = median_load([predict for predict, _ in runs])
        noop = median_load([noop for _, noop in runs])
        self.single_row_rps[connections] = predict.requests_per_s
        spread = f"median of {pairs} alternating pairs of {seconds:g} s runs"
        self.rows += [
            Row(
                f"1. single-row predict throughput (c={connections})",
                f"{fmt_load(predict)}; ratios {fmt_range(throughputs)}",
                f"no-op {fmt_load(noop)}; {spread}",
                throughput,
                ">= 1.0x",
                throughput >= 1.0,
            ),
            Row(
                f"1. single-row predict p99 (c={connections})",
                f"{predict.p99_ms:.1f} ms; ratios {fmt_range(latencies)}",
                f"no-op {noop.p99_ms:.1f} ms",
                latency,
                "<= 1.3x",
                latency <= 1.3,
            ),
        ]

    def batch(self) -> None:
        from core import Network

        network = Network.from_bytes(self.client.get(f"/models/{self.model_id}/weights").content)
        X = np.random.default_rng(2).normal(size=(10_000, 30))
        instances = X.tolist()
        repeat = 3 if self.quick else 5

        def in_process() -> None:
            body = json.loads(json.dumps({"model_id": self.model_id, "instances": instances}))
            samples = np.asarray(body["instances"], dtype=network.dtype)
            probabilities = network.predict_proba(samples)
            labels = np.asarray(network.classes)[probabilities.argmax(axis=1)]
            answer = {"predictions": labels.tolist(), "probabilities": probabilities.tolist()}
            json.loads(json.dumps(answer))

        def over_json() -> None:
            response = self.client.post(
                "/predict", json={"model_id": self.model_id, "instances": instances}
            )
            response.raise_for_status()
            assert len(response.json()["predictions"]) == 10_000

        def over_npy() -> None:
            out = io.BytesIO()
            np.save(out, X, allow_pickle=False)
            response = self.client.post(
                "/predict",
                params={"model_id": self.model_id},
                content=out.getvalue(),
                headers={"Content-Type": "application/x-npy", "Accept": "application/x-npy"},
            )
            response.raise_for_status()
            assert np.load(io.BytesIO(response.content), allow_pickle=False).shape == (10_000,)

        over_json()  # warm the model cache and the connection
        baseline = timed(in_process, repeat)
        json_s = timed(over_json, repeat)
        npy_s = timed(over_npy, repeat)
        self.rows += [
            Row(
                "2. batch 10,000x30 JSON end-to-end",
                f"{json_s * 1000:.0f} ms",
                f"in-process forward+JSON {baseline * 1000:.0f} ms",
                json_s / baseline,
                "<= 3x",
                json_s / baseline <= 3,
            ),
            Row(
                "2. batch 10,000x30 .npy end-to-end",
                f"{npy_s * 1000:.0f} ms",
                f"JSON {json_s * 1000:.0f} ms",
                npy_s / json_s,
                f"gain {json_s / npy_s:.1f}x",
                None,
            ),
        ]

    def responsiveness(self, connections: int, workers: int) -> None:
        job_url = f"{self.url}/jobs/{self.model_job_id}"
        quiet_job = self.load(job_url, "GET", None, connections)
        quiet_predict = self.load(f"{self.url}/predict", "POST", self.one_row, connections)
        wide = upload(self.client, 2000, 30, seed=3)
        busy = [
            train(self.client, wide, hidden_layers=[512, 512], n_iterations=1_000_000)
            for _ in range(2)
        ]
        # With one training worker the second job waits queued: one job trains.
        wait_status(self.client, busy[0], {"running"})
        if workers >= 2:
            wait_status(self.client, busy[1], {"running"})
        busy_job = self.load(job_url, "GET", None, connections)
        busy_predict = self.load(f"{self.url}/predict", "POST", self.one_row, connections)
        still = [self.client.get(f"/jobs/{j}", params={"max_points": 2}).json() for j in busy]
        for job_id in busy:
            self.client.post(f"/jobs/{job_id}/cancel")
        for job_id in busy:
            wait_status(self.client, job_id, {"cancelled", "failed", "succeeded"})
        assert still[0]["status"] == "running", "training ended early"
        for name, quiet, loaded in (
            ("GET /jobs/{id}", quiet_job, busy_job),
            ("POST /predict", quiet_predict, busy_predict),
        ):
            ratio = loaded.p99_ms / quiet.p99_ms
            self.rows.append(
                Row(
                    f"3. {name} p99 while 2 wide jobs are queued, {min(workers, 2)} train "
                    f"({workers} training workers, c={connections})",
                    f"{loaded.p99_ms:.1f} ms ({loaded.requests_per_s:,.0f} req/s)",
                    f"idle {quiet.p99_ms:.1f} ms ({quiet.requests_per_s:,.0f} req/s)",
                    ratio,
                    "<= 2x",
                    ratio <= 2,
                )
            )

    def job_overhead(self) -> None:
        """Server timestamps of 1-iteration jobs on a tiny dataset, run one after another.

        queued -> running: started_at - created_at. last iteration -> succeeded: finished_at -
        started_at, which also holds loading the dataset, building the network, the single
        iteration and storing the model, so it bounds the tail from above. The client's own
        view (POST sent -> `succeeded` seen by polling every 5 ms) is shown alongside.
        """
        tiny = upload(self.client, 50, 4, seed=4)
        to_running, to_done, seen = [], [], []
        for _ in range(5 if self.quick else 10):
            start = time.perf_counter()
            job_id = train(self.client, tiny, hidden_layers=[4], n_iterations=1)
            while True:
                job = self.client.get(f"/jobs/{job_id}", params={"max_points": 2}).json()
                if job["status"] in {"succeeded", "failed"}:
                    break
                time.sleep(0.005)
            seen.append(time.perf_counter() - start)
            assert job["status"] == "succeeded", job
            to_running.append(seconds_between(job["created_at"], job["started_at"]))
            to_done.append(seconds_between(job["started_at"], job["finished_at"]))
        for name, values in (
            ("queued -> running", to_running),
            ("last iter -> succeeded", to_done),
        ):
            median = statistics.median(values) * 1000
            self.rows.append(
                Row(
                    f"4. job {name} (server timestamps, median)",
                    f"{median:.0f} ms (max {max(values) * 1000:.0f})",
                    f"client POST -> succeeded seen {statistics.median(seen) * 1000:.0f} ms",
                    None,
                    "<= 100 ms",
                    median <= 100,
                )
            )

    def polling(self) -> None:
        tiny = upload(self.client, 50, 4, seed=5)
        job_id = train(self.client, tiny, hidden_layers=[4], n_iterations=10_000)
        job = wait_status(self.client, job_id, {"succeeded", "failed"})
        assert job["status"] == "succeeded", job
        repeat = 5 if self.quick else 15
        full: dict[str, Any] = {}

        def get_full() -> None:
            nonlocal full
            full = self.client.get(f"/jobs/{job_id}").json()

        full_s = timed(get_full, repeat)
        # Since chunked curves, GET /jobs/{id} answers a bounded, thinned history.
        returned = len(full["history"])
        since: dict[str, Any] = {}

        def get_since() -> None:
            nonlocal since
            since = self.client.get(f"/jobs/{job_id}/history", params={"since": 9_990}).json()

        since_s = timed(get_since, repeat)
        assert [p["iteration"] for p in since["points"]] == list(range(9_991, 10_001))
        thin_s = timed(
            lambda: self.client.get(f"/jobs/{job_id}", params={"max_points": 500}), repeat
        )
        self.rows += [
            Row(
                f"5. GET /jobs/{{id}}, 10,000-point job ({returned} points returned, median)",
                f"{full_s * 1000:.1f} ms",
                f"max_points=500: {thin_s * 1000:.1f} ms",
                None,
                "< 50 ms",
                full_s < 0.05,
            ),
            Row(
                "5. GET /jobs/{id}/history?since=9990 (median)",
                f"{since_s * 1000:.1f} ms, {len(since['points'])} points",
                "",
                None,
                "only new points",
                len(since["points"]) == 10,
            ),
        ]


def healthz_under_predict_load(bench: Bench, connections: int) -> None:
    """/healthz probed while `connections` clients hammer single-row /predict."""
    probe, load = probe_while(
        bench.url,
        lambda: bench.load(f"{bench.url}/predict", "POST", bench.one_row, connections),
    )
    failures = probe.failures + load.errors
    bench.rows.append(
        Row(
            f"6. /healthz p99 while {connections} clients predict",
            f"p99 {probe.p99_ms():.0f} ms, worst {probe.worst_ms():.0f} ms, {failures} failures",
            f"predict {fmt_load(load)}",
            None,
            "<= 300 ms, no 5xx, no drop",
            probe.p99_ms() <= 300 and failures == 0,
        )
    )


def healthz_during_upload(bench: Bench) -> None:
    """Worst /healthz latency while one 48 MB JSON dataset upload is received and parsed."""
    body = upload_body()
    probe, (status, seconds) = probe_while(bench.url, lambda: post_upload(bench.url, body))
    assert status == 201, status
    bench.rows.append(
        Row(
            f"7. worst /healthz during a {len(body) / 2**20:.0f} MB JSON upload",
            f"worst {probe.worst_ms():.0f} ms, p99 {probe.p99_ms():.0f} ms "
            f"({len(probe.latencies)} probes, {probe.failures} failures)",
            f"upload took {seconds:.1f} s",
            None,
            "<= 100 ms",
            probe.worst_ms() <= 100 and probe.failures == 0,
        )
    )


def api_workers_scaling(folder: Path, bench: Bench, connections: int) -> None:
    """Single-row predict throughput with `serve --api-workers 2` against 1 (the main server)."""
    server = LiveServer(
        f"sqlite:///{folder / 'api2.db'}",
        folder / "api2.log",
        workers=1,
        serve_args=("--api-workers", "2"),
    ).start()
    try:
        with server.client() as client:
            other = Bench(client, server, bench.quick, bench.generator)
            other.setup_model()
            two = other.load(f"{server.url}/predict", "POST", other.one_row, connections)
    finally:
        server.stop()
    one = bench.single_row_rps[connections]
    bench.rows.append(
        Row(
            f"8. single-row predict, --api-workers 2 vs 1 (c={connections})",
            fmt_load(two),
            f"1 API process {one:,.0f} req/s",
            two.requests_per_s / one,
            "report",
            None,
        )
    )


def print_table(rows: list[Row]) -> None:
    header = ("figure", "measured", "baseline", "ratio", "target", "met")
    cells = [
        (
            r.figure,
            r.measured,
            r.baseline,
            "" if r.ratio is None else f"{r.ratio:.2f}x",
            r.target,
            "" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in rows
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for line in cells:
        print("| " + " | ".join(line) + " |")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="shorter load runs (~2 min total)")
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--connections",
        type=int,
        nargs="+",
        default=[8, 16],
        help="for the throughput test (each count is one row)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[max(1, (os.cpu_count() or 1) - 1), os.cpu_count() or 1],
        help="training workers for the predict-while-training figure (each count is one row; "
        "the first also serves the other figures)",
    )
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["batch", "jobs", "polling", "load", "upload", "api-workers"],
    )
    parser.add_argument("--serve-noop", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_noop:
        serve_noop(args.serve_noop)
        return 0
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    began = time.perf_counter()
    load_before = os.getloadavg()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="dnn-bench-") as folder:
        for index, workers in enumerate(args.workers):
            server = LiveServer(
                f"sqlite:///{Path(folder) / f'service{index}.db'}",
                Path(folder) / f"server{index}.log",
                workers=workers,
            ).start()
            try:
                with server.client() as client, noop_server(Path(folder) / "noop.log") as noop:
                    bench = Bench(client, server, args.quick, generator)
                    if index > 0:
                        bench.rows = rows
                    bench.setup_model()
                    if index > 0:  # the later servers only measure predict while training
                        bench.responsiveness(connections=2, workers=workers)
                        continue
                    for connections in args.connections:
                        bench.single_row(noop, connections)
                    if "batch" not in args.skip:
                        bench.batch()
                    bench.responsiveness(connections=2, workers=workers)
                    if "load" not in args.skip:
                        healthz_under_predict_load(bench, connections=200)
                    if "upload" not in args.skip:
                        healthz_during_upload(bench)
                    if "jobs" not in args.skip:
                        bench.job_overhead()
                    if "polling" not in args.skip:
                        bench.polling()
                    if "api-workers" not in args.skip:
                        api_workers_scaling(Path(folder), bench, max(args.connections))
                    rows = bench.rows
            finally:
                server.stop()
    print(f"\nmachine: {machine()}")
    print(
        f"load generator: {generator} (1 thread), {bench.load_seconds:g} s per load run; server, "
        "training workers and generator share these cores"
    )
    load_after = os.getloadavg()
    print(
        f"machine load (1-min average) before {load_before[0]:.1f}, after {load_after[0]:.1f}; "
        f"total {time.perf_counter() - began:.0f} s\n"
    )
    print_table(bench.rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
