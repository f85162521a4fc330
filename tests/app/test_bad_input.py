"""Every bad input named by the service's contract gets a 4xx with a useful message, never a 500."""

from __future__ import annotations

import gzip
import io
import json
import socket
from typing import Any

import httpx
import numpy as np
import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for
from live_server import LiveServer


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    return body["error"]


def npz_bytes(**arrays: Any) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def trained(shared_client: httpx.Client) -> dict[str, Any]:
    dataset = shared_client.post("/datasets", json=blobs()).json()
    job = wait_for(shared_client, submit(shared_client, dataset["id"], n_iterations=20), TERMINAL)
    assert job["status"] == "succeeded"
    return {"dataset_id": dataset["id"], "model_id": job["model_id"], "job_id": job["id"]}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "d", "features": [[1, 2], [3]], "labels": [0, 1]}, "row 1 has 1 values"),
        ({"name": "d", "features": [], "labels": []}, "features"),
        ({"name": "d", "features": [[1], [2]], "labels": [1, 1]}, "single distinct value"),
        ({"name": "d", "features": [[1], [2]], "labels": [0, "a"]}, "not a mix"),
        ({"name": "d", "features": [[1], [2]], "labels": [True, 2]}, "label 1 is '2', a number"),
        ({"name": "d", "features": [[1], [2], [3]], "labels": [0, 1]}, "3 rows but 2 labels"),
        ({"name": "d", "features": [[1], [2]], "labels": [0, 1], "extra": 1}, "extra"),
        ({"features": [[1], [2]], "labels": [0, 1]}, "name"),
        ({"name": "d", "features": [["x"], [2]], "labels": [0, 1]}, "features"),
        # Stored as 1.0 before, where POST /predict refuses the same instances.
        ({"name": "d", "features": [[True], [2]], "labels": [0, 1]}, "features.0.0"),
        ({"name": "d", "features": [["1"], [2]], "labels": [0, 1]}, "features.0.0"),
    ],
)
def test_bad_json_datasets(
    shared_client: httpx.Client, body: dict[str, Any], fragment: str
) -> None:
    error = error_of(shared_client.post("/datasets", json=body), 422)
    assert fragment in error["message"] + str(error["details"])


def test_non_finite_features_are_refused_without_echoing_data(shared_client: httpx.Client) -> None:
    raw = b'{"name": "d", "features": [[1.0, NaN], [2.0, 3.0]], "labels": [0, 1]}'
    response = shared_client.post(
        "/datasets", content=raw, headers={"content-type": "application/json"}
    )
    error = error_of(response, 422)
    assert all("input" not in detail for detail in error["details"])
    big = {"name": "d", "features": [[1e309, 1.0], [2.0, 3.0]], "labels": [0, 1]}
    response = shared_client.post(
        "/datasets",
        content=str(big).replace("'", '"').replace("inf", "Infinity"),
        headers={"content-type": "application/json"},
    )
    error_of(response, 422)


@pytest.mark.parametrize(
    ("filename", "content", "form", "fragment"),
    [
        ("d.csv", b"a,b,y\n1,2,0\n3,4,1\n", {"label_column": "label"}, "not in the CSV header"),
        ("d.csv", b"a,b,y\n1,x,0\n3,4,1\n", {}, "is not a number"),
        ("d.csv", b"", {}, "empty"),
        ("d.csv", b"a,b,y\n", {}, "no data rows"),
        ("d.csv", b"a,b,y\n1,2\n", {}, "2 fields"),
        ("d.csv", b"\xff\xfe\x00", {}, "UTF-8"),
        ("d.npz", b"not a zip", {}, "npz"),
        ("d.npz", npz_bytes(X=np.ones((2, 2))), {}, "lacks"),
    ],
)
def test_bad_uploads(
    shared_client: httpx.Client, filename: str, content: bytes, form: dict[str, str], fragment: str
) -> None:
    response = shared_client.post("/datasets", files={"file": (filename, content)}, data=form)
    error = error_of(response, 422)
    assert fragment in error["message"]


def test_npz_with_pickled_objects_is_refused_and_never_executed(
    shared_client: httpx.Client, tmp_path: Any
) -> None:
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, (str(marker), "w"))

    payload = npz_bytes(X=np.array([Exploit(), Exploit()], dtype=object), y=np.array([0, 1]))
    response = shared_client.post("/datasets", files={"file": ("evil.npz", payload)})
    error = error_of(response, 422)
    assert "pickle" in error["message"] or "object" in error["message"]
    assert not marker.exists()


def test_multipart_without_file_and_unknown_content_type(shared_client: httpx.Client) -> None:
    error_of(shared_client.post("/datasets", files={"other": ("x", b"1")}), 422)
    unsupported = error_of(
        shared_client.post("/datasets", content=b"a,b", headers={"content-type": "text/csv"}), 415
    )
    assert unsupported["code"] == "unsupported_media_type"
    assert error_of(shared_client.post("/datasets", content=b"{}"), 415)["details"]
    error_of(
        shared_client.post(
            "/datasets", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
    )


@pytest.mark.parametrize(
    ("hyperparameters", "status"),
    [
        ({"hidden_layers": [0]}, 422),
        ({"learning_rate": -1}, 422),
        ({"optimizer": "rmsprop"}, 422),
        ({"unknown": 1}, 422),
        ({"task": "regression", "early_stopping": {"patience": 3}}, 422),
        ({"n_iterations": 10**9}, 422),
        ({"hidden_layers": [100_000]}, 422),
        ({"hidden_layers": [2] * 40}, 422),
        ({"batch_size": 10_000}, 422),
        ({"task": "multiclass"}, 202),
        # A split with no validation (or no training) sample: was a 202, then a failed job.
        ({"validation_fraction": 1e-9}, 422),
        ({"validation_fraction": 0.5}, 202),
        # JSON true, "5" and 2.0 are not whole numbers: true was a 1-iteration job.
        ({"n_iterations": True}, 422),
        ({"n_iterations": "5"}, 422),
        ({"n_iterations": 5.0}, 422),
        ({"hidden_layers": [True]}, 422),
        ({"seed": False}, 422),
        ({"learning_rate": True}, 422),
        ({"l2": "0.1"}, 422),
        ({"validation_fraction": 0.2, "early_stopping": {"patience": True}}, 422),
        ({"learning_rate": 1}, 202),  # an integer is a real number
    ],
)
def test_train_hyperparameters_are_checked(
    shared_client: httpx.Client,
    trained: dict[str, Any],
    hyperparameters: dict[str, Any],
    status: int,
) -> None:
    body = {
        "dataset_id": trained["dataset_id"],
        "hyperparameters": {"n_iterations": 5, **hyperparameters},
    }
    response = shared_client.post("/train", json=body)
    if status == 202:
        assert response.status_code == 202, response.text
        wait_for(shared_client, response.json()["job_id"], TERMINAL)
    else:
        error_of(response, status)


def test_train_dataset_reference_errors(
    shared_client: httpx.Client, trained: dict[str, Any]
) -> None:
    error_of(shared_client.post("/train", json={"dataset_id": "nope"}), 404)
    error_of(shared_client.post("/train", json={}), 422)
    both = {"dataset_id": trained["dataset_id"], "dataset": blobs(4)}
    error_of(shared_client.post("/train", json=both), 422)
    regression_as_binary = {
        "dataset": {"features": [[1.0], [2.0], [3.0]], "labels": [0.5, 1.5, 2.25]},
        "hyperparameters": {"task": "binary"},
    }
    assert (
        "regression"
        in error_of(shared_client.post("/train", json=regression_as_binary), 422)["message"]
    )


@pytest.mark.parametrize(
    ("labels", "task", "fragment"),
    [
        (["cat", "dog", "cat", "dog"], "regression", "strings"),
        ([0.5, 1.5, 2.25, 3.0], "multiclass", "real-valued"),
        (["a", "b", "c", "a"], "binary", "exactly 2 classes"),
    ],
)
def test_train_refuses_a_task_the_labels_do_not_fit(
    shared_client: httpx.Client, labels: list[Any], task: str, fragment: str
) -> None:
    # Decided at submission: a 422 naming the conflict, not a 202 and a job failing later.
    body = {
        "dataset": {"features": [[1.0], [2.0], [3.0], [4.0]], "labels": labels},
        "hyperparameters": {"task": task, "n_iterations": 2},
    }
    error = error_of(shared_client.post("/train", json=body), 422)
    assert task in error["message"] and fragment in error["message"]
    assert error["details"][0]["loc"] == ["hyperparameters", "task"]


def test_the_job_stores_the_task_it_decided(shared_client: httpx.Client) -> None:
    body = {
        "dataset": {"features": [[1.0], [2.0], [3.0], [4.0]], "labels": [1, 2, 3, 1]},
        "hyperparameters": {"n_iterations": 2},
    }
    auto = shared_client.post("/train", json=body)
    assert auto.status_code == 202, auto.text
    job = wait_for(shared_client, auto.json()["job_id"], TERMINAL)
    assert job["hyperparameters"]["task"] == "multiclass"
    # Integer classes may be regressed on; the model is then a regression model.
    body["hyperparameters"] = {"n_iterations": 2, "task": "regression"}
    regression = shared_client.post("/train", json=body)
    assert regression.status_code == 202, regression.text
    job = wait_for(shared_client, regression.json()["job_id"], TERMINAL)
    assert job["status"] == "succeeded", job["error"]
    model = shared_client.get(f"/models/{job['model_id']}").json()
    assert model["architecture"]["task"] == "regression"


def test_predict_errors(shared_client: httpx.Client, trained: dict[str, Any]) -> None:
    model_id = trained["model_id"]
    assert (
        "expects 4"
        in error_of(
            shared_client.post("/predict", json={"model_id": model_id, "instances": [[1.0, 2.0]]}),
            422,
        )["message"]
    )
    error_of(
        shared_client.post("/predict", json={"model_id": "missing", "instances": [[1.0] * 4]}), 404
    )
    error_of(shared_client.post("/predict", json={"model_id": model_id, "instances": []}), 422)
    raw = f'{{"model_id": "{model_id}", "instances": [[1.0, 2.0, NaN, 1.0]]}}'.encode()
    error_of(
        shared_client.post("/predict", content=raw, headers={"content-type": "application/json"}),
        422,
    )
    error_of(shared_client.post("/predict", json={"instances": [[1.0] * 4]}), 422)
    error_of(
        shared_client.post(
            "/predict", json={"model": "blobs", "version": 999, "instances": [[1.0] * 4]}
        ),
        404,
    )
    ok = shared_client.post("/predict", json={"model": "blobs", "instances": [[1.0] * 4]})
    assert ok.status_code == 200, ok.text


def test_unknown_resources_and_finished_job_cancel(
    shared_client: httpx.Client, trained: dict[str, Any]
) -> None:
    for path in (
        "/jobs/nope",
        "/models/nope",
        "/datasets/nope",
        "/jobs/nope/history",
        "/models/nope/weights",
    ):
        assert error_of(shared_client.get(path), 404)["code"] == "not_found"
    error_of(shared_client.post("/jobs/nope/cancel"), 404)
    assert (
        error_of(shared_client.post(f"/jobs/{trained['job_id']}/cancel"), 409)["code"] == "conflict"
    )
    error_of(shared_client.get("/jobs", params={"status": "bogus"}), 422)
    error_of(shared_client.get("/jobs", params={"limit": 0}), 422)
    error_of(shared_client.get("/no-such-route"), 404)


def test_oversized_body_is_refused_before_it_is_read(shared_client: httpx.Client) -> None:
    limit = 64 * 1024 * 1024
    # A raw socket, since HTTP clients refuse to declare a length they do not send.
    url = httpx.URL(str(shared_client.base_url))
    with socket.create_connection((url.host, url.port or 80), timeout=10) as sock:
        head = (
            f"POST /datasets HTTP/1.1\r\nHost: {url.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"{")
        received = b""
        # The status line and the body may arrive in separate segments; the server then closes.
        while chunk := sock.recv(65536):
            received += chunk
        reply = received.decode()
    assert reply.startswith("HTTP/1.1 413"), reply
    assert '"payload_too_large"' in reply

    def chunks() -> Any:
        block = b" " * (1024 * 1024)
        for _ in range(70):
            yield block

    streamed = shared_client.post(
        "/datasets", content=chunks(), headers={"content-type": "application/json"}
    )
    error_of(streamed, 413)


def test_bad_input_changes_nothing_stored(
    shared_client: httpx.Client, trained: dict[str, Any]
) -> None:
    before = {path: shared_client.get(path).json() for path in ("/datasets", "/models")}
    shared_client.post("/datasets", json={"name": "d", "features": [[1, 2], [3]], "labels": [0, 1]})
    shared_client.post(
        "/train",
        json={"dataset_id": trained["dataset_id"], "hyperparameters": {"hidden_layers": [0]}},
    )
    shared_client.post("/predict", json={"model_id": trained["model_id"], "instances": [[1.0]]})
    after = {path: shared_client.get(path).json() for path in ("/datasets", "/models")}
    assert after == before


def test_labels_keep_their_json_types(shared_client: httpx.Client) -> None:
    strings = {"name": "s", "features": [[0.0], [1.0]], "labels": ["yes", "no"]}
    assert shared_client.post("/datasets", json=strings).json()["classes"] == ["no", "yes"]
    digits = {"name": "d", "features": [[0.0], [1.0]], "labels": ["1", "0"]}
    assert shared_client.post("/datasets", json=digits).json()["classes"] == ["0", "1"]
    booleans = {"name": "b", "features": [[0.0], [1.0]], "labels": [True, False]}
    assert shared_client.post("/datasets", json=booleans).json()["classes"] == [0, 1]


def test_media_types_are_case_insensitive(shared_client: httpx.Client) -> None:
    """`Application/JSON` is JSON (RFC 9110); it used to be refused as "send JSON"."""
    body = b'{"name": "upper", "features": [[0.5], [1.5]], "labels": [0, 1]}'
    response = shared_client.post(
        "/datasets",
        content=body,
        headers={"content-type": "Application/JSON; charset=UTF-8"},
        params={"dedupe": "false"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "upper"


@pytest.mark.parametrize(
    ("path", "content_type", "body", "coding"),
    [
        # gzip was parsed as the JSON it is not: "Invalid JSON: expected value".
        ("/datasets", "application/json", gzip.compress(json.dumps(blobs(20)).encode()), "gzip"),
        # A body that is not compressed at all under a false "br" was stored as if identity.
        ("/datasets", "application/json", json.dumps(blobs(20)).encode(), "br"),
        ("/datasets", "text/csv", gzip.compress(b"a,label\n1,0\n2,1\n"), "GZIP"),
        ("/train", "application/json", gzip.compress(b'{"dataset_id": "x"}'), "deflate"),
        ("/predict", "application/json", gzip.compress(b'{"instances": [[1.0]]}'), "gzip"),
    ],
)
def test_a_compressed_body_is_415_and_stores_nothing(
    shared_client: httpx.Client, path: str, content_type: str, body: bytes, coding: str
) -> None:
    before = shared_client.get("/datasets", params={"limit": 500}).json()
    response = shared_client.post(
        path, content=body, headers={"content-type": content_type, "content-encoding": coding}
    )
    error = error_of(response, 415)
    assert error["code"] == "unsupported_media_type"
    assert "Content-Encoding" in error["message"] and "uncompressed" in error["message"]
    assert response.headers["accept-encoding"] == "identity"
    assert shared_client.get("/datasets", params={"limit": 500}).json() == before


def test_identity_content_encoding_is_the_body_as_sent(shared_client: httpx.Client) -> None:
    response = shared_client.post(
        "/datasets",
        content=json.dumps(blobs(20)).encode(),
        headers={"content-type": "application/json", "content-encoding": "identity"},
        params={"dedupe": "false"},
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "name", ["\x1b[31mred\x1b[0m", "a\nb", "\u202eevil.csv", "   ", "\t", "x\u2028y", "\x85"]
)
def test_a_dataset_name_that_cannot_be_shown_as_it_is_is_422(
    shared_client: httpx.Client, name: str
) -> None:
    """An ESC sequence in a name reached the CLI's terminal raw; a newline broke its tables."""
    before = shared_client.get("/datasets", params={"limit": 500}).json()
    rows = {"features": [[1.0], [2.0]], "labels": [0, 1]}
    csv = b"x,label\n1,0\n2,1\n"
    answers = [
        shared_client.post("/datasets", json={"name": name, **rows}),
        shared_client.post("/train", json={"dataset": {"name": name, **rows}}),
        shared_client.post("/datasets", files={"file": ("d.csv", csv)}, data={"name": name}),
    ]
    if name.strip() and not {"\n", "\t"} & set(name):  # httpx sends those escaped, or none
        # Without a name field, the file's name is the dataset's.
        answers.append(shared_client.post("/datasets", files={"file": (name, csv)}))
    for response in answers:
        message = error_of(response, 422)["message"]
        assert "blank" in message or "control character U+" in message, message
    assert shared_client.get("/datasets", params={"limit": 500}).json() == before


def test_a_multipart_name_longer_than_a_json_one_may_be_is_422(shared_client: httpx.Client) -> None:
    """It was cut to 200 characters and stored as a name the client never sent."""
    csv = b"x,label\n1,0\n2,1\n"
    response = shared_client.post(
        "/datasets", files={"file": ("d.csv", csv)}, data={"name": "n" * 201}
    )
    assert "at most 200" in error_of(response, 422)["message"]
    fits = shared_client.post(
        "/datasets",
        files={"file": ("d.csv", csv)},
        data={"name": "n" * 200},
        params={"dedupe": "false"},
    )
    assert fits.status_code == 201 and fits.json()["name"] == "n" * 200, fits.text


def test_a_dataset_name_may_be_any_showable_text(shared_client: httpx.Client) -> None:
    for name in [" padded ", "שלום\u200f", "😀", "naïve \u00e9"]:
        response = shared_client.post(
            "/datasets",
            json={"name": name, "features": [[1.0], [2.0]], "labels": [0, 1]},
            params={"dedupe": "false"},
        )
        assert response.status_code == 201, response.text
        assert response.json()["name"] == name


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/datasets", "GET, HEAD, POST"),
        ("PUT", "/datasets/some-id", "GET, HEAD, DELETE"),
        ("PATCH", "/models/names/m/aliases/prod", "PUT, DELETE"),
        ("DELETE", "/sweeps", "GET, HEAD, POST"),
        ("GET", "/predict", "POST"),
    ],
)
def test_a_405_allows_every_method_of_the_path(
    shared_client: httpx.Client, method: str, path: str, allowed: str
) -> None:
    """Allow used to name only the first matching route's methods (`Allow: POST` on /datasets)."""
    response = shared_client.request(method, path)
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == allowed


def nul_json(text: str) -> bytes:
    """A JSON body with a string holding NUL, as a client's encoder writes it: \\u0000."""
    return text.replace("NUL", "\\u0000").encode()


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/datasets", '{"name": "aNUL", "features": [[1.0], [2.0]], "labels": [0, 1]}'),
        # NumPy drops a trailing NUL: "aNUL" and "a" became one class.
        ("/datasets", '{"name": "n", "features": [[1.0], [2.0]], "labels": ["aNUL", "a"]}'),
        ("/train", '{"dataset": {"name": "xNUL", "features": [[1.0], [2.0]], "labels": [0, 1]}}'),
        ("/train", '{"dataset_id": "NUL"}'),
        ("/predict", '{"model": "mNUL", "instances": [[1.0]]}'),
        ("/sweeps", '{"dataset_id": "dNUL", "grid": {"learning_rate": [0.1]}}'),
    ],
)
def test_nul_in_a_json_body_is_422_and_stores_nothing(
    shared_client: httpx.Client, path: str, body: str
) -> None:
    """PostgreSQL cannot hold NUL: these were 500s there (and stored on SQLite)."""
    before = shared_client.get("/datasets", params={"limit": 500}).json()
    response = shared_client.post(
        path, content=nul_json(body), headers={"content-type": "application/json"}
    )
    assert "NUL" in error_of(response, 422)["message"]
    assert shared_client.get("/datasets", params={"limit": 500}).json() == before


@pytest.mark.parametrize(
    "body",
    [
        '{"dataset_id": "\\ud800"}',  # passed validation: a 500 hashing the request
        '{"dataset_id": "a\\udfff"}',
        '{"dataset": {"name": "x\\ud83d", "features": [[1.0], [2.0]], "labels": [0, 1]}}',
    ],
)
def test_a_lone_surrogate_in_a_json_body_is_422_and_stores_nothing(
    shared_client: httpx.Client, body: str
) -> None:
    before = shared_client.get("/jobs", params={"limit": 500}).json()
    response = shared_client.post(
        "/train", content=body.encode(), headers={"content-type": "application/json"}
    )
    assert "lone UTF-16 surrogate" in error_of(response, 422)["message"]
    assert shared_client.get("/jobs", params={"limit": 500}).json() == before


def test_a_surrogate_pair_is_one_character(shared_client: httpx.Client) -> None:
    body = b'{"name": "\\ud83d\\ude00", "features": [[1.0], [2.0]], "labels": [0, 1]}'
    response = shared_client.post(
        "/datasets",
        content=body,
        headers={"content-type": "application/json"},
        params={"dedupe": "false"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "\U0001f600"


def test_an_escaped_backslash_before_u0000_is_just_text(shared_client: httpx.Client) -> None:
    body = b'{"name": "a\\\\u0000", "features": [[1.0], [2.0]], "labels": [0, 1]}'
    response = shared_client.post(
        "/datasets",
        content=body,
        headers={"content-type": "application/json"},
        params={"dedupe": "false"},  # its own row, whatever else holds the same content
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "a\\u0000"


@pytest.mark.parametrize(
    "url", ["/jobs/%00", "/models?name=a%00", "/models/names/a%00b", "/v2/models/m%00/ready"]
)
def test_nul_in_the_url_is_422(shared_client: httpx.Client, url: str) -> None:
    response = shared_client.get(url)
    assert response.status_code == 422, response.text
    message = response.json()["error"]
    assert "NUL" in (message if url.startswith("/v2") else message["message"])


@pytest.mark.parametrize(
    ("parts", "field", "problem"),
    [
        # Ignored before: the last column became the label without a word.
        ([("label_column", ("col.txt", b"a"))], "label_column", "must be text"),
        ([("name", ("n.txt", b"x"))], "name", "must be text"),
        # The last of two files was stored, the first dropped.
        ([("file", ("b.csv", b"x,y\n1,0\n2,1\n"))], "file", "2 times"),
        ([("name", (None, b"one")), ("name", (None, b"two"))], "name", "2 times"),
        ([("labelcolumn", (None, b"a"))], "labelcolumn", "not one of"),
    ],
)
def test_multipart_fields_are_each_sent_once_as_text(
    shared_client: httpx.Client, parts: list[Any], field: str, problem: str
) -> None:
    before = shared_client.get("/datasets", params={"limit": 500}).json()
    files = [("file", ("d.csv", b"a,b,c\n1,0,5\n2,1,6\n")), *parts]
    error = error_of(shared_client.post("/datasets", files=files), 422)
    assert problem in error["message"] and error["details"][0]["loc"] == [field], error
    assert shared_client.get("/datasets", params={"limit": 500}).json() == before


def test_nul_in_multipart_fields_and_csv_labels_is_422(shared_client: httpx.Client) -> None:
    csv = b"a,b\n1,x\n2,y\n"
    named = shared_client.post("/datasets", files={"file": ("d.csv", csv)}, data={"name": "x\x00"})
    assert error_of(named, 422)["details"][0]["loc"] == ["name"]
    labelled = shared_client.post("/datasets", files={"file": ("d.csv", b"a,b\n1,x\x00\n2,x\n")})
    assert "NUL" in error_of(labelled, 422)["message"]


def test_nul_split_across_chunks_of_a_streamed_body_is_found(shared_client: httpx.Client) -> None:
    body = nul_json('{"name": "aNUL", "features": [[1.0], [2.0]], "labels": [0, 1]}')
    cut = body.index(b"u00")  # the escape's backslash ends one chunk, u0000 starts the next

    def chunks() -> Any:
        yield body[:cut]
        yield body[cut:]

    response = shared_client.post(
        "/datasets", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "NUL" in error_of(response, 422)["message"]


def test_a_client_leaving_mid_body_leaves_no_traceback(live_server: LiveServer) -> None:
    """A body shorter than its Content-Length, then a hang-up: the route's read used to log
    "unhandled error" with two tracebacks for what is the client's doing."""
    requests = [
        ("POST /predict", "application/json", b'{"model_id": "m", "instances": [[1'),
        ("POST /datasets", "application/json", b'{"name": "d", "features": [[1'),
        ("POST /datasets", "multipart/form-data; boundary=b", b"--b\r\nContent-Dispo"),
        ("POST /v2/models/m/infer", "application/json", b'{"inputs": [{"na'),
    ]
    for request_line, content_type, body in requests:
        with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as sock:
            head = (
                f"{request_line} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body) + 100}\r\n\r\n"
            )
            sock.sendall(head.encode() + body)
            sock.shutdown(socket.SHUT_WR)
            sock.recv(65536)  # the server closes once it sees the client gone
    assert httpx.get(f"{live_server.url}/healthz").status_code == 200
    assert "Traceback" not in live_server.log_path.read_text()


@pytest.mark.parametrize("header", ["Authorization", "Idempotency-Key", "Content-Type"])
def test_a_singleton_header_sent_twice_is_400(shared_client: httpx.Client, header: str) -> None:
    """Two Authorization headers: the first one counted, while a proxy may check the last."""
    value = "Bearer dnn_x" if header == "Authorization" else "application/json"
    response = shared_client.get("/datasets", headers=[(header, value), (header, value)])
    error = error_of(response, 400)
    assert header.lower() in error["message"] and "once" in error["message"]
