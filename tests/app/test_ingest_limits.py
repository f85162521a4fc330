"""Uploads are bounded before they are read: zip bombs, wide targets, many classes, huge labels."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from pydantic import ValidationError
from zip_builder import build_zip, deflated, deflated_zeros, npy_header

from app.settings import Settings

MiB = 1024 * 1024


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def upload(client: httpx.Client, content: bytes, filename: str = "d.npz") -> httpx.Response:
    return client.post("/datasets", files={"file": (filename, content)})


def peak_rss_bytes(server: LiveServer) -> int:
    """The server process's peak resident memory so far (VmHWM), as the kernel counts it."""
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer.in_folder(tmp_path_factory.mktemp("limits"), workers=1) as live:
        yield live


@pytest.fixture(scope="module")
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server with tiny limits, so each limit can be crossed with a few bytes."""
    folder = tmp_path_factory.mktemp("small-limits")
    limits = {
        "DNN_MAX_DATASET_CELLS": "1000",
        "DNN_MAX_LAYER_WIDTH": "64",
        "DNN_MAX_CLASSES": "5",
        "DNN_MAX_DATASET_BYTES": "20000",
    }
    with LiveServer.in_folder(folder, workers=1, **limits) as live, live.client() as client:
        yield client


def test_npz_bomb_is_refused_from_its_header_without_decompressing(
    server: LiveServer, http: httpx.Client
) -> None:
    # The probe: X.npy declares (50000, 10000) float32 zeros, 2 GB deflated into 1.9 MB.
    bomb = build_zip(
        deflated_zeros("X.npy", npy_header((50_000, 10_000), "<f4"), 50_000 * 10_000 * 4),
        deflated("y.npy", npy(np.zeros(50_000, dtype=np.int64))),
    )
    assert len(bomb) < 2 * MiB
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        assert archive.getinfo("X.npy").file_size > 1900 * MiB
    # Warm the upload path first, so what follows measures the bomb, not first-use imports.
    warm = upload(http, npz(X=np.eye(4), y=np.array([0, 1, 0, 1])))
    assert warm.status_code == 201, warm.text
    before = peak_rss_bytes(server)
    error = error_of(upload(http, bomb), 413)
    assert peak_rss_bytes(server) - before < 100 * MiB
    assert "X.npy declares 500000000 values" in error["message"]


def test_targets_are_bounded_from_the_header(http: httpx.Client, small: httpx.Client) -> None:
    # (10, 5_000_000) float32 targets: 200 MB of y from a 195 KB upload.
    wide = build_zip(
        deflated("X.npy", npy(np.arange(20.0).reshape(10, 2))),
        deflated_zeros("y.npy", npy_header((10, 5_000_000), "<f4"), 10 * 5_000_000 * 4),
    )
    error = error_of(upload(http, wide), 422)
    assert error["code"] == "limit_exceeded"
    assert "5000000 outputs" in error["message"]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 2))
    # More outputs than DNN_MAX_LAYER_WIDTH (64), in a small archive.
    error = error_of(upload(small, npz(X=X, y=rng.standard_normal((10, 65)))), 422)
    assert error["code"] == "limit_exceeded"
    # Within the width, but more target values than DNN_MAX_DATASET_CELLS (1000).
    many = np.random.default_rng(1).standard_normal((20, 60))
    error = error_of(upload(small, npz(X=rng.standard_normal((20, 2)), y=many)), 413)
    assert "y.npy declares 1200 values" in error["message"]
    # Multi-output regression inside the limits is kept.
    ok = upload(small, npz(X=X, y=rng.standard_normal((10, 3))))
    assert ok.status_code == 201, ok.text
    assert ok.json()["task"] == "regression"


def test_decompressed_bytes_are_capped_before_decompressing(small: httpx.Client) -> None:
    # 100 strings of 100 characters: 100 cells, within the cell limit, but 40,000 bytes of y.
    labels = np.array([f"{i % 2}".ljust(100, "x") for i in range(100)])
    error = error_of(upload(small, npz(X=np.ones((100, 1)), y=labels)), 413)
    assert "DNN_MAX_DATASET_BYTES" in error["message"]


@pytest.mark.parametrize(
    ("members", "fragment"),
    [
        ({"X.npy": b"not numpy at all", "y.npy": b"x"}, "X.npy is not a .npy array"),
        ({"X.npy": npy(np.ones((2, 2))), "y.npy": npy(np.zeros(2)), "z.npy": b""}, "only X"),
        ({"X.npy": npy(np.ones((2, 2))), "y": npy(np.zeros(2))}, "only X"),
        ({"X.npy": npy(np.ones((2, 2))), "y.npy": npy(np.zeros(2, dtype=complex))}, "dtype"),
        ({"X.npy": npy(np.zeros(2, dtype=[("a", "f4")])), "y.npy": b""}, "structured"),
        ({"X.npy": npy(np.ones((2, 2))), "y.npy": npy(np.ones(3))[:-8]}, "less data"),
        ({"X.npy": npy_header((-1, 2), "<f4") + bytes(8), "y.npy": npy(np.ones(2))}, "malformed"),
        # The reshape to these raised NumPy's ValueError: a 500.
        (
            {"X.npy": npy_header((2,) + (1,) * 70, "<f4") + bytes(8), "y.npy": npy(np.ones(2))},
            "X.npy declares 71 dimensions; an array has at most 64",
        ),
        ({"X.npy": npy_header((2, 2), "<M8[s]") + bytes(32), "y.npy": npy(np.ones(2))}, "dtype"),
        ({"X.npy": npy(np.ones((2, 2))) + b"trailing", "y.npy": npy(np.ones(2))}, "more data"),
    ],
)
def test_npz_members_must_be_plain_npy(
    http: httpx.Client, members: dict[str, bytes], fragment: str
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    error = error_of(upload(http, buffer.getvalue()), 422)
    assert fragment in error["message"]


def test_npz_compression_ratio_and_method_are_checked(http: httpx.Client) -> None:
    zeros = build_zip(
        deflated("X.npy", npy(np.zeros((1000, 2000), dtype=np.float32))),
        deflated("y.npy", npy(np.arange(1000) % 2)),
    )
    assert "expands more than 1000:1" in error_of(upload(http, zeros), 413)["message"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("X.npy", npy(np.ones((2, 2))))
        archive.writestr("y.npy", npy(np.arange(2)))
    assert "unsupported method" in error_of(upload(http, buffer.getvalue()), 422)["message"]


def test_one_class_limit_for_every_label_kind(small: httpx.Client) -> None:
    X = [[float(i)] for i in range(6)]
    strings = {"name": "s", "features": X, "labels": list("abcdef")}
    error = error_of(small.post("/datasets", json=strings), 422)
    assert error["code"] == "limit_exceeded"
    assert "6 distinct classes" in error["message"]
    assert "DNN_MAX_CLASSES" in error["message"]
    csv = b"a,label\n" + b"".join(f"{i},c{i}\n".encode() for i in range(6))
    error_of(upload(small, csv, "d.csv"), 422)
    error_of(upload(small, npz(X=np.arange(6.0)[:, None], y=np.array(list("abcdef")))), 422)
    # At the limit they are classes; integers past it are a regression target.
    five = small.post("/datasets", json={**strings, "features": X[:5], "labels": list("abcde")})
    assert five.status_code == 201, five.text
    assert five.json()["task"] == "multiclass"
    integers = small.post("/datasets", json={**strings, "labels": list(range(6))})
    assert integers.status_code == 201, integers.text
    assert integers.json()["task"] == "regression"
    inline = {"dataset": strings, "hyperparameters": {"n_iterations": 1}}
    assert error_of(small.post("/train", json=inline), 422)["code"] == "limit_exceeded"


def test_class_limit_never_exceeds_the_layer_width() -> None:
    with pytest.raises(ValidationError, match="DNN_MAX_CLASSES"):
        Settings(max_classes=100, max_layer_width=50)
    assert Settings().max_classes == 1000
    assert Settings(max_layer_width=50).max_classes == 50


def test_csv_field_past_the_csv_module_limit_is_a_422(http: httpx.Client) -> None:
    content = b"a,label\n1," + b"x" * 131_073 + b"\n2,y\n"
    error = error_of(upload(http, content, "d.csv"), 422)
    assert "line" in error["message"]
    assert "field" in error["message"]


def test_integer_labels_are_kept_exactly_or_refused(http: httpx.Client) -> None:
    raw = b'{"name": "big", "features": [[1.0], [2.0]], "labels": [100000000000000000000000000000, 1]}'
    response = http.post("/datasets", content=raw, headers={"content-type": "application/json"})
    assert "outside the 64-bit range" in error_of(response, 422)["message"]
    csv = b"a,label\n1,100000000000000000000000000000\n2,1\n"
    assert "outside the 64-bit range" in error_of(upload(http, csv, "d.csv"), 422)["message"]
    huge = np.array([2**64 - 1, 1], dtype=np.uint64)
    big_npz = npz(X=np.ones((2, 1)), y=huge)
    assert "outside the 64-bit range" in error_of(upload(http, big_npz), 422)["message"]
    # Past float64's exact range, but within int64: kept to the last digit.
    exact = [2**53 + 1, 2**53, -(2**63), 2**63 - 1]
    body = {"name": "exact", "features": [[1.0], [2.0], [3.0], [4.0]], "labels": exact}
    response = http.post(
        "/datasets", content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == sorted(exact)
    as_strings = {**body, "labels": ["100000000000000000000000000000", "1", "1", "1"]}
    kept = http.post("/datasets", json=as_strings)
    assert kept.status_code == 201, kept.text
    assert kept.json()["classes"] == ["1", "100000000000000000000000000000"]
