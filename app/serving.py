"""Load stored models (sha256-verified, cached in memory) and predict with them."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from sqlalchemy.orm import Session

from app.db.tables import Model
from app.errors import InvalidInput, PayloadTooLarge
from app.schemas.models import PredictRequest, PredictResponse
from app.store import models
from core import Network


class ModelCache:
    """A small LRU of loaded networks keyed by model id; weights are verified once, on load."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._networks: OrderedDict[str, Network] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: Session, model: Model) -> Network:
        with self._lock:
            cached = self._networks.get(model.id)
            if cached is not None:
                self._networks.move_to_end(model.id)
                return cached
        network = Network.from_bytes(models.verified_weights(session, model))
        with self._lock:
            self._networks[model.id] = network
            while len(self._networks) > self._capacity:
                self._networks.popitem(last=False)
        return network

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._networks.pop(model_id, None)


def resolve_model(session: Session, tenant_id: str, request: PredictRequest) -> Model:
    if request.model_id is not None:
        return models.get_model(session, tenant_id, request.model_id)
    assert request.model is not None  # the schema guarantees one of the two
    return models.find_model(session, tenant_id, request.model, request.version)


def predict(
    network: Network, model_id: str, instances: list[list[float]], *, max_rows: int
) -> PredictResponse:
    if len(instances) > max_rows:
        raise PayloadTooLarge(f"{len(instances)} rows sent; at most {max_rows} per request")
    expected = network.n_features
    for index, row in enumerate(instances):
        if len(row) != expected:
            raise InvalidInput(
                f"instance {index} has {len(row)} features; model {model_id} expects {expected}",
                [{"loc": ["instances", index], "msg": f"expected {expected} features"}],
            )
    X = np.asarray(instances, dtype=network.dtype)
    if network.task == "regression":
        return PredictResponse(model_id=model_id, predictions=network.predict(X).tolist())
    # One forward pass serves both fields: the label is the most probable class.
    probabilities = network.predict_proba(X)
    assert network.classes is not None  # every classifier is trained with its classes
    predictions = network.classes[probabilities.argmax(axis=1)].tolist()
    return PredictResponse(
        model_id=model_id, predictions=predictions, probabilities=probabilities.tolist()
    )
