"""Integer query parameters (and Last-Event-ID) take plain decimal digits only: pydantic's lax
parsing read `limit=2.0`, `+2`, ` 2`, `02` and `2_0` as 2."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from job_helpers import TERMINAL, blobs, submit, wait_for

LOOSE = ["2.0", "+2", " 2", "2 ", "02", "2_0", "1e1", "0x2", "\uff12", "\u0662", "", "two"]


@pytest.fixture(scope="module")
def job_id(shared_client: httpx.Client) -> str:
    dataset = shared_client.post("/datasets", json=blobs()).json()
    job = wait_for(shared_client, submit(shared_client, dataset["id"], n_iterations=20), TERMINAL)
    assert job["status"] == "succeeded"
    return str(job["id"])


# Every route with an integer query parameter, the parameter, and a value in its range.
PARAMETERS = [
    ("/datasets", "limit", "2"),
    ("/datasets", "offset", "2"),
    ("/jobs", "limit", "2"),
    ("/jobs", "offset", "2"),
    ("/models", "limit", "2"),
    ("/models", "offset", "2"),
    ("/sweeps", "limit", "2"),
    ("/sweeps", "offset", "2"),
    ("/jobs/{job}", "max_points", "2"),
    ("/jobs/{job}/history", "since", "2"),
    ("/jobs/{job}/history", "limit", "2"),
    ("/jobs/{job}/history", "max_points", "2"),
    ("/jobs/{job}/curve.svg", "max_points", "2"),
    ("/jobs/{job}/curve.png", "max_points", "2"),
    ("/jobs/{job}/events", "since", "2"),
]


def refusal(response: httpx.Response, name: str, location: str = "query") -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"].startswith(f"{location}.{name}: "), error["message"]
    assert error["details"][0]["loc"] == [location, name]
    return error


@pytest.mark.parametrize(("template", "name", "good"), PARAMETERS)
def test_only_plain_decimal_integers_are_taken(
    shared_client: httpx.Client, job_id: str, template: str, name: str, good: str
) -> None:
    path = template.format(job=job_id)
    for value in LOOSE:
        error = refusal(shared_client.get(path, params={name: value}), name)
        assert "plain decimal integer" in error["message"], value
    # Out of range is its own message, naming the bound.
    error = refusal(shared_client.get(path, params={name: "-1"}), name)
    assert "greater than or equal" in error["message"]
    if template.endswith("/events"):
        with shared_client.stream("GET", path, params={name: good}) as response:
            assert response.status_code == 200
    else:
        assert shared_client.get(path, params={name: good}).status_code == 200, (path, name)


def test_zero_and_the_largest_value_are_plain_integers(shared_client: httpx.Client) -> None:
    assert shared_client.get("/jobs", params={"offset": "0"}).status_code == 200
    assert shared_client.get("/jobs", params={"offset": str(2**31 - 1)}).status_code == 200
    refusal(shared_client.get("/jobs", params={"offset": str(2**31)}), "offset")


def test_last_event_id_is_a_plain_integer_too(shared_client: httpx.Client, job_id: str) -> None:
    response = shared_client.get(f"/jobs/{job_id}/events", headers={"Last-Event-ID": "2.0"})
    refusal(response, "last-event-id", "header")
