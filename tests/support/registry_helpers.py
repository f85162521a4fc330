"""Helpers for the registry tests: keyed tenants on a live server, small datasets, trained models."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import httpx
import numpy as np
from job_helpers import TERMINAL, wait_for


def create_key_with_id(database_url: str, tenant: str) -> tuple[str, str]:
    """A new API key of tenant and its id, made with the real `dnn-service keys create`."""
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "create", "--tenant", tenant],
        env={**os.environ, "DNN_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.strip().splitlines()
    # "created key ID for tenant T; it is shown once:", then the key alone on the last line
    # (the database's first key is announced on a line before them).
    created = next(line for line in lines if line.startswith("created "))
    return created.split()[2], lines[-1]


def create_key(database_url: str, tenant: str) -> str:
    return create_key_with_id(database_url, tenant)[1]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def classes_problem(n: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Separable Gaussian blobs in 4 dimensions, n_classes of them."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    centres = rng.normal(scale=3.0, size=(n_classes, 4))
    return centres[y] + rng.normal(size=(n, 4)), y


def json_dataset(X: np.ndarray, y: np.ndarray, name: str) -> dict[str, Any]:
    return {"name": name, "features": X.round(5).tolist(), "labels": y.tolist()}


def npz_bytes(X: np.ndarray, y: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, X=X, y=y)
    return buffer.getvalue()


def tenant_client(url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=bearer(key), timeout=30.0)


def train_model(http: httpx.Client, dataset_id: str, name: str, **hyperparameters: Any) -> str:
    """Train a model on dataset_id as the tenant of http's key; its model id."""
    body = {
        "dataset_id": dataset_id,
        "name": name,
        "hyperparameters": {"hidden_layers": [8], "n_iterations": 40, **hyperparameters},
    }
    accepted = http.post("/train", json=body)
    assert accepted.status_code == 202, accepted.text
    job = wait_for(http, accepted.json()["job_id"], TERMINAL)
    assert job["status"] == "succeeded", job
    return str(job["model_id"])
