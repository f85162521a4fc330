"""Datasets stored once: the same content and parse options from one tenant give one dataset."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from registry_helpers import classes_problem, create_key, json_dataset, npz_bytes, tenant_client

pytestmark = pytest.mark.slow
CSV = b"a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"


def variant(row: int) -> bytes:
    """CSV with one more row: other content, so each test starts from nothing stored."""
    return CSV + f"{row},{row + 1},1\n".encode()


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, httpx.Client]]:
    server = LiveServer.in_folder(tmp_path_factory.mktemp("dedupe"))
    keys = {tenant: create_key(server.database_url, tenant) for tenant in ("alice", "bob")}
    with (
        server.start(),
        tenant_client(server.url, keys["alice"]) as alice,
        tenant_client(server.url, keys["bob"]) as bob,
    ):
        yield {"alice": alice, "bob": bob}


def upload_csv(http: httpx.Client, data: bytes = CSV, **form: str) -> httpx.Response:
    return http.post("/datasets", files={"file": ("table.csv", data, "text/csv")}, data=form)


def ids(http: httpx.Client) -> list[str]:
    return [d["id"] for d in http.get("/datasets", params={"limit": 500}).json()["items"]]


def test_the_same_csv_twice_is_one_dataset(tenants: dict[str, httpx.Client]) -> None:
    alice = tenants["alice"]
    first = upload_csv(alice, label_column="label")
    assert first.status_code == 201, first.text
    assert first.json()["deduplicated"] is False
    assert len(first.json()["content_sha256"]) == 64
    # Another name, the same content and options: the stored dataset, with its own name.
    second = upload_csv(alice, label_column="label", name="renamed")
    assert second.status_code == 200, second.text
    assert second.json() == {**first.json(), "deduplicated": True}
    assert ids(alice).count(first.json()["id"]) == 1
    shown = alice.get(f"/datasets/{first.json()['id']}").json()
    assert shown["content_sha256"] == first.json()["content_sha256"]


def test_other_parse_options_or_content_are_other_datasets(
    tenants: dict[str, httpx.Client],
) -> None:
    alice = tenants["alice"]
    by_label = upload_csv(alice, variant(1), label_column="label").json()
    by_b = upload_csv(alice, variant(1), label_column="b")
    assert by_b.status_code == 201
    assert by_b.json()["id"] != by_label["id"]
    assert by_b.json()["content_sha256"] != by_label["content_sha256"]
    # The default label column is the last one, but the option as sent is what is hashed.
    assert upload_csv(alice, variant(1)).status_code == 201
    changed = upload_csv(alice, variant(2), label_column="label")
    assert changed.status_code == 201


def test_json_and_npz_uploads_are_stored_once(tenants: dict[str, httpx.Client]) -> None:
    alice = tenants["alice"]
    X, y = classes_problem(40, 3, seed=11)
    body = json_dataset(X, y, "rows")
    first = alice.post("/datasets", json=body)
    again = alice.post("/datasets", json={**body, "name": "same rows"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["deduplicated"] is True

    archive = npz_bytes(np.random.default_rng(1).random((30, 8, 8)), np.arange(30) % 2)
    files = {"file": ("images.npz", archive, "application/zip")}
    stored = alice.post("/datasets", files=files)
    repeated = alice.post("/datasets", files=files)
    assert (stored.status_code, repeated.status_code) == (201, 200)
    assert repeated.json()["id"] == stored.json()["id"]
    assert repeated.json()["input_shape"] == [8, 8]


def test_dedupe_false_stores_a_new_copy(tenants: dict[str, httpx.Client]) -> None:
    alice = tenants["alice"]
    data = variant(3)
    first = upload_csv(alice, data)
    copy = alice.post(
        "/datasets", params={"dedupe": "false"}, files={"file": ("table.csv", data, "text/csv")}
    )
    assert copy.status_code == 201
    assert copy.json()["id"] != first.json()["id"]
    assert copy.json()["content_sha256"] == first.json()["content_sha256"]
    # Deduplicating uploads keep finding the first one, not the copy.
    assert upload_csv(alice, data).json()["id"] == first.json()["id"]
    refused = alice.post("/datasets", params={"dedupe": "maybe"}, json={})
    assert refused.status_code == 422


def test_a_deleted_dataset_is_uploaded_anew(tenants: dict[str, httpx.Client]) -> None:
    alice = tenants["alice"]
    data = variant(4)
    first = upload_csv(alice, data).json()["id"]
    assert alice.delete(f"/datasets/{first}").status_code == 204
    again = upload_csv(alice, data)
    assert again.status_code == 201
    assert again.json()["id"] != first


def test_tenants_never_share_a_dataset(tenants: dict[str, httpx.Client]) -> None:
    alice, bob = tenants["alice"], tenants["bob"]
    data = variant(5)
    mine = upload_csv(alice, data).json()
    theirs = upload_csv(bob, data)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine["id"]
    assert theirs.json()["content_sha256"] == mine["content_sha256"]
    assert bob.get(f"/datasets/{mine['id']}").status_code == 404
    assert mine["id"] not in ids(bob)


def test_idempotent_retries_replay_a_deduplicated_answer(
    tenants: dict[str, httpx.Client],
) -> None:
    alice = tenants["alice"]
    data = variant(6)
    stored = upload_csv(alice, data).json()
    headers = {"Idempotency-Key": "dedupe-1"}
    files = {"file": ("table.csv", data, "text/csv")}
    first: Any = alice.post("/datasets", files=files, headers=headers)
    retry: Any = alice.post("/datasets", files=files, headers=headers)
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json() == {**stored, "deduplicated": True}
    # dedupe=false under the same key is another request, not a retry: it used to replay the
    # deduplicated answer, so the copy it asked for was never stored.
    other = alice.post("/datasets", files=files, headers=headers, params={"dedupe": "false"})
    assert other.status_code == 409, other.text
    assert "Idempotency-Key" in other.json()["error"]["message"]
