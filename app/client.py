"""A typed Python client for the dnn-service REST API (the `dnn-service` client commands use it).

    with Client("http://127.0.0.1:8000") as api:
        dataset = api.upload_dataset("examples/breast_cancer.csv", label_column="diagnosis")
        job = api.train(dataset["id"], {"hidden_layers": [16, 8], "n_iterations": 2000})
        for update in api.watch(job["id"]):          # the job's event stream
            print(update.job["status"], update.points[-1:] )
        model_id = api.wait(job["id"])["model_id"]
        probabilities = api.predict_proba(model_id, X)  # X: a NumPy array (n, n_features)

Hyperparameter sweeps: create_sweep, list_sweeps, get_sweep, wait_sweep, cancel_sweep
(app/client_sweeps.py).

Requests refused with 429 or 503 are retried after the server's Retry-After (a few times, each
wait capped), and so are connections that could not be opened. Every POST carries an
Idempotency-Key, the same on each retry, so a retried upload or training request never creates
a second dataset or job.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt

from app.client_sweeps import SweepMethods
from app.sse import parse_events

DEFAULT_URL = "http://127.0.0.1:8000"
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
RETRY_STATUSES = frozenset({429, 503})
MODEL_ID = re.compile(r"^[0-9a-f]{32}$")
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


def retry_after_seconds(value: str | None, default: float) -> float:
    """Retry-After as seconds: a number of seconds, or an HTTP date."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


@dataclass
class WatchUpdate:
    """The job's latest state and the history points that arrived with it (each exactly once)."""

    job: JSON
    points: list[JSON] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return str(self.job["status"]) in TERMINAL_STATES


class Client(SweepMethods):
    """Datasets, jobs and models here; sweeps (create_sweep, wait_sweep...) from SweepMethods."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        *,
        retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.url = (url or os.environ.get("DNN_URL") or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get("DNN_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.timeout = timeout
        self.retries = retries
        self.max_retry_wait = max_retry_wait
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- transport --------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if method == "POST":
            headers.setdefault("Idempotency-Key", uuid.uuid4().hex)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._http.request(method, path, headers=headers, **kwargs)
            except httpx.ConnectError as exc:
                if last:
                    raise ClientError(0, "unreachable", f"cannot reach {self.url}: {exc}") from exc
                time.sleep(min(2.0**attempt, self.max_retry_wait))
                continue
            except httpx.TransportError as exc:
                raise ClientError(0, "unreachable", f"cannot reach {self.url}: {exc}") from exc
            if response.status_code in RETRY_STATUSES and not last:
                wait = retry_after_seconds(response.headers.get("retry-after"), 2.0**attempt)
                time.sleep(min(wait, self.max_retry_wait))
                continue
            if response.status_code >= 400:
                raise error_from(response)
            return response
        raise AssertionError("unreachable")  # the loop returns or raises on its last attempt

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        return response.json() if response.content else None

    # --- datasets ---------------------------------------------------------------------------

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
            result: JSON = self._json("POST", "/datasets", json=body)
            return result
        if suffix not in (".csv", ".npz"):
            raise ClientError(0, "invalid_file", f"{path}: expected a .csv, .npz or .json file")
        kind = "text/csv" if suffix == ".csv" else "application/octet-stream"
        return self._upload_file(path.name, path.read_bytes(), kind, name, label_column)

    def upload_arrays(
        self, X: npt.ArrayLike, y: npt.ArrayLike, *, name: str = "arrays.npz"
    ) -> JSON:
        """Upload NumPy arrays as an .npz: X (n, n_features) or images (n, h, w[, c]), y (n,)."""
        buffer = io.BytesIO()
        np.savez(buffer, X=np.asarray(X), y=np.asarray(y))
        filename = name if name.endswith(".npz") else f"{name}.npz"
        return self._upload_file(
            filename, buffer.getvalue(), "application/octet-stream", name, None
        )

    def _upload_file(
        self, filename: str, data: bytes, kind: str, name: str | None, label_column: str | None
    ) -> JSON:
        form = {"name": name or filename}
        if label_column is not None:
            form["label_column"] = label_column
        files = {"file": (filename, data, kind)}
        uploaded: JSON = self._json("POST", "/datasets", files=files, data=form)
        return uploaded

    def list_datasets(self, *, limit: int = 50, offset: int = 0) -> list[JSON]:
        page: JSON = self._json("GET", "/datasets", params={"limit": limit, "offset": offset})
        return list(page["items"])

    def get_dataset(self, dataset_id: str) -> JSON:
        dataset: JSON = self._json("GET", f"/datasets/{dataset_id}")
        return dataset

    def delete_dataset(self, dataset_id: str) -> None:
        self._send("DELETE", f"/datasets/{dataset_id}")

    # --- jobs -------------------------------------------------------------------------------

    def train(
        self,
        dataset_id: str | None,
        hyperparameters: JSON | None = None,
        *,
        name: str | None = None,
        dataset: JSON | None = None,
    ) -> JSON:
        """Queue a job on an uploaded dataset (or an inline {"features", "labels"} dataset)."""
        body: JSON = {"hyperparameters": hyperparameters or {}}
        if dataset is not None:
            body["dataset"] = dataset
        else:
            body["dataset_id"] = dataset_id
        if name is not None:
            body["name"] = name
        accepted: JSON = self._json("POST", "/train", json=body)
        accepted.setdefault("id", accepted.get("job_id"))
        return accepted

    def get_job(self, job_id: str, *, max_points: int | None = None) -> JSON:
        params = {"max_points": max_points} if max_points is not None else {}
        job: JSON = self._json("GET", f"/jobs/{job_id}", params=params)
        return job

    def history(self, job_id: str, since: int = 0) -> JSON:
        """One page of points after `since`; its `next_since` is set when more are stored."""
        page: JSON = self._json("GET", f"/jobs/{job_id}/history", params={"since": since})
        return page

    def points_after(self, job_id: str, since: int = 0) -> list[JSON]:
        """Every stored point after `since`, following the pages."""
        page = self.history(job_id, since)
        points: list[JSON] = list(page["points"])
        while page.get("next_since") is not None:
            page = self.history(job_id, int(page["next_since"]))
            points.extend(page["points"])
        return points

    def list_jobs(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JSON]:
        params: JSON = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        page: JSON = self._json("GET", "/jobs", params=params)
        return list(page["items"])

    def cancel(self, job_id: str) -> JSON:
        job: JSON = self._json("POST", f"/jobs/{job_id}/cancel")
        return job

    def curve(self, job_id: str, fmt: str = "svg") -> bytes:
        """The learning curves as an SVG or PNG image."""
        return self._send("GET", f"/jobs/{job_id}/curve.{fmt}").content

    def watch(self, job_id: str, *, since: int = 0) -> Iterator[WatchUpdate]:
        """Follow the job's event stream until it ends; reconnects resume where they left off.

        Yields one update per status change, carrying the points that arrived before it; the
        last update is the job's summary once it is terminal.
        """
        job = self.get_job(job_id, max_points=2)
        job.pop("history", None)
        state: JSON = {**job, "iteration": since, "n_iterations": None}
        state["n_iterations"] = job.get("hyperparameters", {}).get("n_iterations")
        failures = 0
        while True:
            try:
                for update in self._stream(job_id, state, since):
                    failures = 0
                    if update.points:
                        since = int(update.points[-1]["iteration"])
                    yield update
                    if update.done:
                        return
            except httpx.TransportError as exc:
                failures += 1
                if failures > self.retries:
                    raise ClientError(0, "unreachable", f"lost {self.url}: {exc}") from exc
                time.sleep(min(2.0**failures, self.max_retry_wait))

    def _stream(self, job_id: str, state: JSON, since: int) -> Iterator[WatchUpdate]:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(since)}
        # Idle streams get a keep-alive every 15 s, so a minute of silence means a dead link.
        timeout = httpx.Timeout(self.timeout, read=60.0)
        with self._http.stream(
            "GET", f"/jobs/{job_id}/events", headers=headers, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise error_from(response)
            pending: list[JSON] = []
            for event in parse_events(response.iter_lines()):
                data = json.loads(event.data)
                if event.event == "point":
                    pending.append(data)
                elif event.event in ("status", "end"):
                    state.update(data)
                    if event.event == "status" and data.get("status") in TERMINAL_STATES:
                        continue  # the end event follows at once, with the model id
                    yield WatchUpdate(job=dict(state), points=pending)
                    pending = []
                elif event.event == "error":
                    error = data.get("error", {})
                    raise ClientError(404, str(error.get("code")), str(error.get("message")))

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

    # --- models -----------------------------------------------------------------------------

    def list_models(
        self, *, name: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[JSON]:
        params: JSON = {"limit": limit, "offset": offset}
        if name is not None:
            params["name"] = name
        page: JSON = self._json("GET", "/models", params=params)
        return list(page["items"])

    def get_model(self, model_id: str) -> JSON:
        model: JSON = self._json("GET", f"/models/{model_id}")
        return model

    def delete_model(self, model_id: str) -> None:
        self._send("DELETE", f"/models/{model_id}")

    def download_weights(self, model_id: str, path: str | Path | None = None) -> bytes:
        """The model's safetensors file, checked against the server's sha256; saved if path."""
        response = self._send("GET", f"/models/{model_id}/weights")
        data = response.content
        expected = response.headers.get("x-content-sha256")
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise ClientError(0, "integrity_error", f"weights of {model_id} arrived corrupted")
        if path is not None:
            Path(path).write_bytes(data)
        return data

    def predict(
        self,
        model: str,
        instances: npt.ArrayLike | Sequence[Sequence[float]],
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> JSON:
        """Predict with a model given by id, or by name (its latest version unless version, or
        the version an alias such as "production" names)."""
        rows = np.asarray(instances, dtype=np.float64)
        rows = rows.reshape(1, -1) if rows.ndim == 1 else rows.reshape(rows.shape[0], -1)
        body: JSON = {"instances": rows.tolist()}
        if version is None and alias is None and MODEL_ID.match(model):
            body["model_id"] = model
        else:
            body["model"] = model
            if version is not None:
                body["version"] = version
            if alias is not None:
                body["alias"] = alias
        result: JSON = self._json("POST", "/predict", json=body)
        return result

    def predict_labels(
        self,
        model: str,
        X: npt.ArrayLike,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> npt.NDArray[Any]:
        """Predictions as a NumPy array: the dataset's labels, or the regression targets."""
        return np.asarray(self.predict(model, X, version=version, alias=alias)["predictions"])

    def predict_proba(
        self,
        model: str,
        X: npt.ArrayLike,
        *,
        version: int | None = None,
        alias: str | None = None,
    ) -> npt.NDArray[np.float64]:
        """Class probabilities (n, n_classes), columns in the model's class order."""
        answer = self.predict(model, X, version=version, alias=alias)
        probabilities = answer.get("probabilities")
        if probabilities is None:
            raise ClientError(0, "not_a_classifier", f"model {model} is a regressor")
        return np.asarray(probabilities, dtype=np.float64)

    def find_model(self, name: str, *, version: int | None = None) -> JSON:
        """The given version of a named model, or its latest version."""
        page: JSON = self._json("GET", "/models", params={"name": name, "limit": 500})
        found = [m for m in page["items"] if version is None or m["version"] == version]
        if not found:
            which = f"version {version} of " if version is not None else ""
            raise ClientError(404, "not_found", f"{which}model {name!r} does not exist")
        latest: JSON = max(found, key=lambda m: int(m["version"]))
        return latest

    def get_model_name(self, name: str) -> JSON:
        """A model name's versions, its aliases and the history of their moves."""
        page: JSON = self._json("GET", f"/models/names/{name}")
        return page

    def set_alias(self, name: str, alias: str, version: int) -> JSON:
        """Point alias at a version of the named model (moving or creating it)."""
        path = f"/models/names/{name}/aliases/{alias}"
        moved: JSON = self._json("PUT", path, json={"version": version})
        return moved

    def delete_alias(self, name: str, alias: str) -> None:
        self._json("DELETE", f"/models/names/{name}/aliases/{alias}")

    def export_onnx(self, model_id: str) -> bytes:
        """The model as ONNX bytes (GET /models/{id}/onnx)."""
        return self._send("GET", f"/models/{model_id}/onnx").content
