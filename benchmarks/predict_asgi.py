"""Server-side cost of one single-row POST /predict, in process: no sockets, no load generator.

Calls the service's ASGI app (all its middleware, routing, auth, the route, the inference
service) directly, interleaved with a no-op FastAPI app that takes the same body with a pydantic
model in a sync route, and prints the process CPU time per request of each. On a shared machine
the CPU time per request is steadier than throughput under wrk, whose figures move with whatever
else runs; use this to compare code, and benchmarks/service.py for the end-to-end figures.

    .venv/bin/python benchmarks/predict_asgi.py [--rounds 5] [--requests 2000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.db.engine import make_engine, make_session_factory  # noqa: E402
from app.db.migrate import upgrade_to_head  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from app.store import models  # noqa: E402
from core import Network  # noqa: E402

Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class NoopBody(BaseModel):
    model_id: str | None = None
    instances: list[list[float]]


def noop_app() -> FastAPI:
    app = FastAPI()

    @app.post("/predict")
    def noop(body: NoopBody) -> dict[str, Any]:
        return {"model_id": body.model_id, "predictions": [0]}

    return app


def service_app(folder: Path) -> tuple[FastAPI, bytes]:
    """The service on a fresh SQLite file holding a (30, 16, 8, 1) classifier, and a one-row body."""
    url = f"sqlite:///{folder / 'service.db'}"
    upgrade_to_head(url)
    network = Network([30, 16, 8, 1])
    network.classes = ["benign", "malignant"]
    engine = make_engine(url)
    with make_session_factory(engine)() as session, session.begin():
        model = models.create_model(
            session,
            tenant_id="public",
            name="bench",
            job_id="bench",
            dataset_id=None,
            architecture={"task": "binary", "dtype": "float32"},
            metrics={},
            weights=network.to_bytes(),
        )
        model_id = model.id
    engine.dispose()
    row = np.linspace(-1, 1, 30).round(4).tolist()
    body = json.dumps({"model_id": model_id, "instances": [row]}).encode()
    return create_app(Settings(database_url=url, workers=1)), body


async def call(app: ASGIApp, body: bytes) -> int:
    scope: Message = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> Message:
        if messages:
            return messages.pop()
        await asyncio.sleep(3600)  # the client never disconnects
        raise AssertionError

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(app: ASGIApp, body: bytes, requests: int) -> float:
    started = time.process_time()
    for _ in range(requests):
        await call(app, body)
    return (time.process_time() - started) / requests * 1e6


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="dnn-asgi-") as folder:
        service, body = service_app(Path(folder))
        noop = noop_app()
        async with service.router.lifespan_context(service):
            for app in (service, noop):  # warm up: model cache, caller cache, imports
                for _ in range(200):
                    assert await call(app, body) == 200
            if args.profile:
                profile = cProfile.Profile()
                profile.enable()
                await cpu_per_request(service, body, args.requests)
                profile.disable()
                pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
                return
            times: dict[str, list[float]] = {"predict": [], "no-op": []}
            for _ in range(args.rounds):
                times["predict"].append(await cpu_per_request(service, body, args.requests))
                times["no-op"].append(await cpu_per_request(noop, body, args.requests))
    predict, baseline = (statistics.median(times[k]) for k in ("predict", "no-op"))
    print(f"POST /predict, one row: {predict:.0f} us CPU per request (median of {args.rounds})")
    print(f"no-op, same body:       {baseline:.0f} us CPU per request")
    print(f"ratio predict / no-op:  {predict / baseline:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=2000, help="per round and app")
    parser.add_argument("--profile", action="store_true", help="cProfile the service instead")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
