"""Load stored models (sha256-verified, cached in memory) and predict with them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.db.tables import Model
from app.errors import InvalidInput, NotFound, PayloadTooLarge
from app.metrics import PREDICTION_ROWS
from app.schemas.models import PredictRequest, PredictResponse
from app.store import aliases, models
from core import Network

# How long a resolved (tenant, model id) is trusted without asking the database again. The
# replica that deletes a model forgets it at once; other API replicas may serve it this long.
RESOLVED_TRUST_SECONDS = 1.0


@dataclass
class _Cached:
    network: Network
    tenant_id: str
    resolved_at: float


class ModelCache:
    """A small LRU of loaded networks keyed by model id; weights are verified once, on load.

    It also remembers which tenant owns each model for RESOLVED_TRUST_SECONDS, so a burst of
    predictions by model id skips the database lookup (most of a single-row prediction's cost).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._networks: OrderedDict[str, _Cached] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, model: Model) -> Network:
        """The network of a model the caller has just looked up (and so may use)."""
        now = time.monotonic()
        with self._lock:
            cached = self._networks.get(model.id)
            if cached is not None:
                self._networks.move_to_end(model.id)
                cached.tenant_id, cached.resolved_at = model.tenant_id, now
                return cached.network
        network = Network.from_bytes(models.verified_weights(session, model))
        with self._lock:
            self._networks[model.id] = _Cached(network, model.tenant_id, now)
            while len(self._networks) > self._capacity:
                self._networks.popitem(last=False)
        return network

    def recent(self, tenant_id: str, model_id: str) -> Network | None:
        """The network if this tenant looked the model up moments ago, else None (ask the store)."""
        with self._lock:
            cached = self._networks.get(model_id)
            if (
                cached is None
                or cached.tenant_id != tenant_id
                or time.monotonic() - cached.resolved_at >= RESOLVED_TRUST_SECONDS
            ):
                return None
            self._networks.move_to_end(model_id)
            return cached.network

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._networks.pop(model_id, None)


def resolve_model(session: Session, tenant_id: str, request: PredictRequest) -> Model:
    if request.model_id is not None:
        return models.get_model(session, tenant_id, request.model_id)
    assert request.model is not None  # the schema guarantees one of the two
    if request.alias is not None:
        return find_by_alias(session, tenant_id, request.model, request.alias)
    return models.find_model(session, tenant_id, request.model, request.version)


def find_by_alias(session: Session, tenant_id: str, name: str, alias: str) -> Model:
    """The version of the named model that the alias names."""
    model_id = aliases.resolve_alias(session, tenant_id, name, alias)
    if model_id is None:
        raise NotFound(f"model {name!r} has no alias {alias!r}")
    return models.get_model(session, tenant_id, model_id)


@dataclass(frozen=True)
class Inference:
    """What one forward pass gives: labels or values, and class probabilities for classifiers.

    predictions : ndarray of shape (n,) (or (n, k) for multi-output regression)
    probabilities : ndarray of shape (n, n_classes), or None for regression
    """

    predictions: np.ndarray[Any, Any]
    probabilities: np.ndarray[Any, Any] | None


def check_row_limit(n_rows: int, max_rows: int) -> None:
    if n_rows > max_rows:
        raise PayloadTooLarge(f"{n_rows} rows sent; at most {max_rows} per request")


def infer(network: Network, X: np.ndarray[Any, Any], *, max_rows: int) -> Inference:
    """Predict for X of shape (n, n_features); rows are reshaped to the network's input shape.

    Callers check the feature count first, so they can word the error in their own protocol.
    """
    check_row_limit(X.shape[0], max_rows)
    # Image models were trained on (n, h, w) samples; a flat row of h*w values is the same sample.
    samples = np.ascontiguousarray(X, dtype=network.dtype).reshape(
        (X.shape[0], *network.input_shape)
    )
    PREDICTION_ROWS.inc(X.shape[0])
    if network.task == "regression":
        return Inference(predictions=network.predict(samples), probabilities=None)
    # One forward pass serves both outputs: the label is the most probable class.
    probabilities = network.predict_proba(samples)
    assert network.classes is not None  # every classifier is trained with its classes
    return Inference(
        predictions=np.asarray(network.classes)[probabilities.argmax(axis=1)],
        probabilities=probabilities,
    )


def predict(
    network: Network, model_id: str, instances: list[list[float]], *, max_rows: int
) -> PredictResponse:
    check_row_limit(len(instances), max_rows)
    expected = network.n_features
    for index, row in enumerate(instances):
        if len(row) != expected:
            raise InvalidInput(
                f"instance {index} has {len(row)} features; model {model_id} expects {expected}",
                [{"loc": ["instances", index], "msg": f"expected {expected} features"}],
            )
    result = infer(network, np.asarray(instances, dtype=np.float64), max_rows=max_rows)
    probabilities = None if result.probabilities is None else result.probabilities.tolist()
    return PredictResponse(
        model_id=model_id, predictions=result.predictions.tolist(), probabilities=probabilities
    )
