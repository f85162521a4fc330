"""A small typed Python client for the dnn-service REST API (the CLI's train/jobs/predict use it).

with Client("http://127.0.0.1:8000") as api:
    dataset = api.upload_dataset("examples/breast_cancer.csv", label_column="diagnosis")
    job = api.train(dataset["id"], {"hidden_layers": [16, 8], "n_iterations": 2000})
    final = api.wait(job["job_id"])
    print(api.predict(final["model_id"], [[...30 values...]])["predictions"])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
JSON = dict[str, Any]


class ClientError(Exception):
    """The server refused a request (status > 0) or could not be reached (status 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {code})" if status else message)
        self.status = status
        self.code = code
        self.message = message


def error_from(response: httpx.Response) -> ClientError:
    """The server's own error message, from either of its error bodies."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return ClientError(
            response.status_code, str(error.get("code", "error")), str(error.get("message"))
        )
    if isinstance(error, str):  # the inference protocol's {"error": "..."}
        return ClientError(response.status_code, "error", error)
    text = response.text.strip()[:200] or response.reason_phrase
    return ClientError(response.status_code, "http_error", text)


@dataclass
class WatchUpdate:
    """One poll of a running job: its current state and the history points new since the last."""

    job: JSON
    points: list[JSON] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return str(self.job["status"]) in TERMINAL_STATES


class Client:
    def __init__(
        self, url: str | None = None, api_key: str | None = None, timeout: float = 30.0
    ) -> None:
        self.url = (url or os.environ.get("DNN_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("DNN_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ClientError(0, "unreachable", f"cannot reach {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise error_from(response)
        return response.json() if response.content else None

    def upload_dataset(
        self, path: str | Path, *, label_column: str | None = None, name: str | None = None
    ) -> JSON:
        """Upload a .csv or .npz file, or a .json file of {"features": [...], "labels": [...]}."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix == ".json":
            body = json.loads(path.read_text())
            if not isinstance(body, dict):
                raise ClientError(0, "invalid_file", f"{path} must hold a JSON object")
            body.setdefault("name", name or path.name)
            result: JSON = self._request("POST", "/datasets", json=body)
            return result
        if suffix not in (".csv", ".npz"):
            raise ClientError(0, "invalid_file", f"{path}: expected a .csv, .npz or .json file")
        form = {"name": name or path.name}
        if label_column is not None:
            form["label_column"] = label_column
        kind = "text/csv" if suffix == ".csv" else "application/octet-stream"
        with path.open("rb") as handle:
            files = {"file": (path.name, handle, kind)}
            uploaded: JSON = self._request("POST", "/datasets", files=files, data=form)
        return uploaded

    def train(
        self, dataset_id: str, hyperparameters: JSON | None = None, *, name: str | None = None
    ) -> JSON:
        body: JSON = {"dataset_id": dataset_id, "hyperparameters": hyperparameters or {}}
        if name is not None:
            body["name"] = name
        accepted: JSON = self._request("POST", "/train", json=body)
        return accepted

    def get_job(self, job_id: str, *, max_points: int | None = None) -> JSON:
        params = {"max_points": max_points} if max_points is not None else {}
        job: JSON = self._request("GET", f"/jobs/{job_id}", params=params)
        return job

    def history(self, job_id: str, since: int = 0) -> JSON:
        """One page of points after `since`; its `next_since` is set when more are stored."""
        page: JSON = self._request("GET", f"/jobs/{job_id}/history", params={"since": since})
        return page

    def points_after(self, job_id: str, since: int = 0) -> list[JSON]:
        """Every stored point after `since`, following the pages."""
        page = self.history(job_id, since)
        points: list[JSON] = list(page["points"])
        while page.get("next_since") is not None:
            page = self.history(job_id, int(page["next_since"]))
            points.extend(page["points"])
        return points

    def list_jobs(self, *, status: str | None = None, limit: int = 50) -> list[JSON]:
        params: JSON = {"limit": limit}
        if status is not None:
            params["status"] = status
        page: JSON = self._request("GET", "/jobs", params=params)
        return list(page["items"])

    def cancel(self, job_id: str) -> JSON:
        job: JSON = self._request("POST", f"/jobs/{job_id}/cancel")
        return job

    def watch(self, job_id: str, *, poll_seconds: float = 0.2) -> Iterator[WatchUpdate]:
        """Poll the job until it ends, yielding each new batch of history points once."""
        since = 0
        while True:
            points = self.points_after(job_id, since)
            if points:
                since = int(points[-1]["iteration"])
            # The job is read after the page; points written in between are fetched at the end.
            job = self.get_job(job_id, max_points=2)
            update = WatchUpdate(job=job, points=points)
            if update.done:
                update.points.extend(self.points_after(job_id, since))
                yield update
                return
            yield update
            time.sleep(poll_seconds)

    def wait(self, job_id: str, *, timeout: float | None = None, poll_seconds: float = 0.2) -> JSON:
        """The job once it has ended (succeeded, failed or cancelled)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get_job(job_id, max_points=2)
            if str(job["status"]) in TERMINAL_STATES:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['status']} after {timeout} s")
            time.sleep(poll_seconds)

    def get_model(self, model_id: str) -> JSON:
        model: JSON = self._request("GET", f"/models/{model_id}")
        return model

    def predict(
        self, model: str, instances: Sequence[Sequence[float]], *, version: int | None = None
    ) -> JSON:
        """Predict with a model given by id, or by name (its latest version unless version)."""
        rows = [list(map(float, row)) for row in instances]
        body: JSON = {"instances": rows}
        if version is None and self._is_model_id(model):
            body["model_id"] = model
        else:
            body["model"] = model
            if version is not None:
                body["version"] = version
        result: JSON = self._request("POST", "/predict", json=body)
        return result

    def _is_model_id(self, model: str) -> bool:
        try:
            self.get_model(model)
        except ClientError as exc:
            if exc.status == 404:
                return False
            raise
        return True
