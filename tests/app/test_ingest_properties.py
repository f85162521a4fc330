"""Generated CSV, JSON and .npz/.npy bodies thrown at POST /datasets on a live server.

Whatever arrives, the answer is a 2xx, or a 4xx in the one error shape; never a 5xx. A dataset
row is stored exactly when the answer is 201 (200: the same content, stored once). The seed is fixed and the examples are bounded.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from live_server import LiveServer

PROPERTY = settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LIMITS = {
    "DNN_MAX_DATASET_CELLS": "400",
    "DNN_MAX_LAYER_WIDTH": "16",
    "DNN_MAX_CLASSES": "6",
    "DNN_MAX_DATASET_BYTES": "20000",
}


class Probe:
    def __init__(self, server: LiveServer, client: httpx.Client) -> None:
        self.client = client
        self.database = Path(server.database_url.removeprefix("sqlite:///"))

    def count(self) -> int:
        with sqlite3.connect(self.database) as connection:
            (rows,) = connection.execute("SELECT count(*) FROM datasets").fetchone()
        return int(rows)

    def check(self, **request: Any) -> httpx.Response:
        before = self.count()
        response = self.client.post("/datasets", **request)
        assert response.status_code < 500, response.text
        assert 200 <= response.status_code < 300 or 400 <= response.status_code < 500
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"code", "message", "details"}, body
            assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        stored = self.count() - before
        # 201 stores a row; 200 is the same content stored before (deduplicated): no new row.
        assert stored == (1 if response.status_code == 201 else 0), response.text
        if response.status_code == 200:
            assert response.json()["deduplicated"] is True
        return response


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Probe]:
    folder = tmp_path_factory.mktemp("properties")
    with LiveServer.in_folder(folder, workers=1, **LIMITS) as server, server.client() as client:
        yield Probe(server, client)


numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, -1, 0.5, 1e308, 1e39, 2**63, -(2**63) - 1]),
)
scalars = st.one_of(numbers, st.text(max_size=8), st.booleans(), st.none())
cells = st.one_of(
    numbers.map(str),
    st.text(max_size=6),
    st.sampled_from(["", " ", "nan", "inf", "1e999", '"', "1,2", "\x00", "a" * 131_073]),
)


@st.composite
def csv_bodies(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(min_value=0, max_value=5))
    header = draw(st.lists(st.text(max_size=5), min_size=width, max_size=width))
    rows = draw(
        st.lists(
            st.lists(cells, min_size=max(width - 1, 0), max_size=width + 1), min_size=0, max_size=30
        )
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if draw(st.booleans()):
        # Raw damage: a cut, a stray quote, a byte that is not UTF-8.
        cut = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:cut] + draw(st.sampled_from(['"', "\n", "\r", ",", ""])) + text[cut:]
    data = text.encode("utf-8")
    if draw(st.booleans()) and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at + 1 :]
    return data


@st.composite
def json_bodies(draw: st.DrawFn) -> bytes:
    rows = draw(st.integers(min_value=0, max_value=25))
    width = draw(st.integers(min_value=0, max_value=20))
    uniform = draw(st.booleans())
    row = st.lists(
        numbers if uniform else scalars, min_size=width, max_size=width + int(not uniform)
    )
    labels = st.one_of(
        st.lists(st.integers(min_value=-(2**70), max_value=2**70), min_size=rows, max_size=rows),
        st.lists(st.integers(min_value=0, max_value=9), min_size=rows, max_size=rows),
        st.lists(st.text(max_size=3), min_size=rows, max_size=rows),
        st.lists(scalars, min_size=0, max_size=rows + 1),
    )
    body: dict[str, Any] = {
        "name": draw(st.one_of(st.text(max_size=10), st.integers(), st.none())),
        "features": draw(st.lists(row, min_size=rows, max_size=rows)),
        "labels": draw(labels),
    }
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(sorted(body))))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        body["extra"] = 1
    text = json.dumps(body, allow_nan=True)
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        text = text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return text.encode()


dtypes = st.sampled_from(["<f4", ">f8", "<f2", "<i8", "<u8", "|u1", "|b1", "<U3", "<c8", "|S2"])


def _arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    array: np.ndarray = draw(hnp.arrays(dtype, shape))
    if draw(st.booleans()) and array.ndim > 1:
        array = np.asfortranarray(array)
    return array


@st.composite
def npz_bodies(draw: st.DrawFn) -> bytes:
    names = draw(
        st.lists(st.sampled_from(["X", "y", "X", "y", "z", "X.npy"]), min_size=0, max_size=3)
    )
    if draw(st.booleans()):
        names = ["X", "y"]
    buffer = io.BytesIO()
    if draw(st.booleans()):
        # A well formed pair, so that acceptance is reached often enough to be exercised.
        n = draw(st.integers(min_value=1, max_value=12))
        X = draw(
            hnp.arrays(
                np.float32, (n, draw(st.integers(1, 4))), elements=st.floats(-9, 9, width=32)
            )
        )
        y = draw(hnp.arrays(draw(st.sampled_from(["<i8", "<f8", "<U2", "|b1"])), (n,)))
        np.savez_compressed(buffer, X=X, y=y)
    else:
        method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
        with zipfile.ZipFile(buffer, "w", compression=method) as archive:
            for name in names:
                member = io.BytesIO()
                np.save(member, _arrays(draw))
                data = member.getvalue()
                if draw(st.integers(min_value=0, max_value=5)) == 0:
                    data = draw(st.binary(max_size=64))  # a member that is not .npy data
                elif draw(st.integers(min_value=0, max_value=4)) == 0:
                    data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
                archive.writestr(name if name.endswith(".npy") else f"{name}.npy", data)
    data = buffer.getvalue()
    damage = draw(st.integers(min_value=0, max_value=5))
    if damage == 0 and data:
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
    elif damage == 1:
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    elif damage == 2:
        member = io.BytesIO()
        np.save(member, _arrays(draw))
        data = member.getvalue()  # a single .npy, not an archive
    return data


@PROPERTY
@given(body=csv_bodies(), label_column=st.one_of(st.none(), st.text(max_size=4)))
def test_generated_csv_uploads(probe: Probe, body: bytes, label_column: str | None) -> None:
    form = {} if label_column is None else {"label_column": label_column}
    probe.check(files={"file": ("d.csv", body)}, data=form)


@PROPERTY
@given(body=json_bodies())
def test_generated_json_uploads(probe: Probe, body: bytes) -> None:
    response = probe.check(content=body, headers={"content-type": "application/json"})
    if response.status_code < 300:
        stored = response.json()
        assert stored["n_samples"] >= 1
        classes = stored["classes"]
        assert classes is None or 2 <= len(classes) <= int(LIMITS["DNN_MAX_CLASSES"])
        assert all(not isinstance(c, float) or math.isfinite(c) for c in classes or [])
        labels = json.loads(body)["labels"]
        if classes is not None and all(type(v) is int for v in labels):
            assert classes == sorted(set(labels))  # integer classes kept exactly, never wrapped


@pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")
@PROPERTY
@given(body=npz_bodies(), filename=st.sampled_from(["d.npz", "d.npy", "D.NPZ"]))
def test_generated_npz_uploads(probe: Probe, body: bytes, filename: str) -> None:
    probe.check(files={"file": (filename, body)})
