"""Large bodies are parsed in a process pool: same results as in-process, and the loop answers."""

from __future__ import annotations

import asyncio
import io
import json
import os
import select
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from prometheus_client.parser import text_string_to_metric_families

from app.api.datasets import parse_body, parse_file, parse_json
from app.api.predict import json_request
from app.errors import InvalidInput, ServiceUnavailable
from app.ingest import Limits
from app.parsing import ParsePool
from app.store.datasets import decode_arrays

LIMITS = Limits(max_cells=10_000_000, max_bytes=1 << 30, max_classes=100, max_outputs=100)


@pytest.fixture(scope="module")
def pool() -> Iterator[ParsePool]:
    parse_pool = ParsePool(workers=1, threshold=1)
    yield parse_pool
    parse_pool.shutdown()


def dataset_body(rows: int, seed: int = 0) -> bytes:
    X = np.random.default_rng(seed).normal(size=(rows, 3)).round(6)
    labels = (X[:, 0] > 0).astype(int).tolist()
    return json.dumps({"name": "offload", "features": X.tolist(), "labels": labels}).encode()


def spooled_bodies() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("dnn-body-*"))


def test_dataset_parsed_in_the_pool_equals_the_parse_here(pool: ParsePool) -> None:
    body = dataset_body(500)
    assert pool.offloads(len(body))
    before = spooled_bodies()
    # In chunks, as a request streams it; the body and the encoded dataset go through a file.
    chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
    there = asyncio.run(parse_body(pool, chunks, parse_json, LIMITS))
    here = parse_json(body, LIMITS)
    assert spooled_bodies() == before  # the file is gone
    assert (there.name, there.digest, there.content_sha256) == (
        here.name,
        here.digest,
        here.content_sha256,
    )
    assert replace(there.dataset, blob=b"") == replace(here.dataset, blob=b"")
    assert there.dataset.n_samples == 500 and there.dataset.input_shape == [3]
    there_arrays, here_arrays = decode_arrays(there.dataset.blob), decode_arrays(here.dataset.blob)
    np.testing.assert_array_equal(there_arrays.X, here_arrays.X)
    np.testing.assert_array_equal(there_arrays.y, here_arrays.y)


def test_a_refused_dataset_in_the_pool_leaves_no_file(pool: ParsePool) -> None:
    body = json.dumps({"name": "bad", "features": [[1.0, 2.0], [3.0]], "labels": [0, 1]})
    before = spooled_bodies()
    with pytest.raises(InvalidInput) as there:
        asyncio.run(parse_body(pool, [body.encode()], parse_json, LIMITS))
    with pytest.raises(InvalidInput) as here:
        parse_json(body.encode(), LIMITS)
    assert (there.value.message, there.value.details) == (here.value.message, here.value.details)
    assert spooled_bodies() == before


def test_predict_body_parsed_in_the_pool_equals_the_parse_here(pool: ParsePool) -> None:
    body = json.dumps({"model": "m", "version": 2, "instances": [[1.5, -2.0]] * 50}).encode()
    ref, X = asyncio.run(pool.run("predict", len(body), json_request, body))
    ref_here, X_here = json_request(body)
    assert ref == ref_here
    np.testing.assert_array_equal(X, X_here)


def test_an_error_in_the_pool_is_the_same_domain_error(pool: ParsePool) -> None:
    body = json.dumps({"model": "m", "instances": [[1.0, "1"]]}).encode()
    with pytest.raises(InvalidInput) as there:
        asyncio.run(pool.run("predict", len(body), json_request, body))
    with pytest.raises(InvalidInput) as here:
        json_request(body)
    assert (there.value.message, there.value.details) == (here.value.message, here.value.details)


def offloaded(client: httpx.Client, kind: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "dnn_offloaded_parses_total" and sample.labels == {"kind": kind}:
                return sample.value
    return 0.0


def test_healthz_answers_while_a_large_upload_is_parsed(tmp_path: Path) -> None:
    body = dataset_body(300_000, seed=1)  # about 15 MB of JSON
    with (
        LiveServer.in_folder(tmp_path, DNN_PARSE_OFFLOAD_BYTES="100000") as server,
        server.client() as client,
    ):
        small = dataset_body(50)
        assert client.post("/datasets", json=json.loads(small)).status_code == 201
        assert offloaded(client, "dataset") == 0  # below the threshold: parsed in the server

        upload = socket.create_connection(("127.0.0.1", server.port))
        head = (
            f"POST /datasets HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        upload.sendall(head + body)
        # The body has arrived and gone to the pool once the counter moves; the loop answers
        # this scrape (through the threadpool) and then /healthz while the parse goes on.
        deadline = time.monotonic() + 60
        while offloaded(client, "dataset") < 1:
            assert time.monotonic() < deadline, "the upload never reached the parsing pool"
        assert client.get("/healthz").json() == {"status": "ok"}
        readable, _, _ = select.select([upload], [], [], 0)
        assert not readable, "/healthz answered only after the upload had finished"

        upload.settimeout(120)
        answer = b""
        while chunk := upload.recv(65536):
            answer += chunk
        upload.close()
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        created = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert created["n_samples"] == 300_000


@pytest.mark.parametrize("filename", ["rows.csv", "rows.npz"])
def test_a_file_upload_parsed_in_the_pool_equals_the_parse_here(
    pool: ParsePool, filename: str
) -> None:
    X = np.random.default_rng(2).normal(size=(400, 3)).round(6)
    y = (X[:, 0] > 0).astype(int)
    if filename.endswith(".csv"):
        rows = "\n".join(",".join(map(str, [*x, label])) for x, label in zip(X, y, strict=True))
        data = ("a,b,c,label\n" + rows + "\n").encode()
    else:
        buffer = io.BytesIO()
        np.savez(buffer, X=X, y=y)
        data = buffer.getvalue()
    args = ("my rows", b"fields\0", filename, None, LIMITS)
    before = spooled_bodies()
    there = asyncio.run(parse_body(pool, [data[:1000], data[1000:]], parse_file, *args))
    here = parse_file(data, *args)
    assert spooled_bodies() == before
    assert (there.name, there.digest, there.content_sha256) == (
        here.name,
        here.digest,
        here.content_sha256,
    )
    assert replace(there.dataset, blob=b"") == replace(here.dataset, blob=b"")
    stored = decode_arrays(there.dataset.blob)
    np.testing.assert_array_equal(stored.X, X)
    np.testing.assert_array_equal(stored.y, decode_arrays(here.dataset.blob).y)


def test_no_room_to_buffer_a_large_body_is_a_503(
    pool: ParsePool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    with pytest.raises(ServiceUnavailable) as refused:
        asyncio.run(parse_body(pool, [dataset_body(50)], parse_json, LIMITS))
    assert refused.value.status_code == 503
    assert "could not buffer this body on disk" in refused.value.message


def test_a_dead_parsing_process_is_a_503_and_the_pool_starts_afresh() -> None:
    parse_pool = ParsePool(workers=1, threshold=1)
    try:
        # os._exit ends the pool's process abruptly, as a kill or the OOM killer would.
        with pytest.raises(ServiceUnavailable) as refused:
            asyncio.run(parse_pool.run("dataset", 10, os._exit, 1))
        assert refused.value.status_code == 503
        body = dataset_body(50)
        there = asyncio.run(parse_body(parse_pool, [body], parse_json, LIMITS))
        assert there.digest == parse_json(body, LIMITS).digest
    finally:
        parse_pool.shutdown()
