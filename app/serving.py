"""The one inference service: every predict route (JSON, .npy, v2) resolves, validates and runs here.

    resolve   a model reference (id, or name with an optional version) to a loaded network,
              scoped to the caller's tenant; sha256-verified, cached in memory
    validate  the input matrix once: rows, feature count, numbers, finite, within the dtype
    run       the core's own predict / predict_with_proba (the class choice is the core's)
    shape     an Inference the routes encode in their own protocol

Routes only decode their wire format into a NumPy array of shape (n, n_features) (or
(n, *input_shape), as the v2 protocol's tensors declare it) and encode the Inference back; they
never call the core themselves.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import anyio.to_thread
import numpy as np
import orjson
from sqlalchemy.orm import Session, sessionmaker

from app.db.tables import Model
from app.errors import InvalidInput, NotFound, PayloadTooLarge
from app.metrics import PREDICTION_ROWS, ModelSeries
from app.model_cache import RESOLVED_TRUST_SECONDS, LoadedModel, ModelCache, ModelRef, find
from app.refresh_ahead import RefreshAhead
from core import Network

# Predictions up to this many rows take well under a millisecond: not worth a thread hop.
INLINE_ROWS = 64

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Inference:
    """What one forward pass gives.

    predictions : ndarray of shape (n,) (or (n, k) for multi-output regression)
    probabilities : ndarray of shape (n, n_classes), or None for regression
    """

    model: LoadedModel
    predictions: Array
    probabilities: Array | None

    def json_bytes(self) -> bytes:
        """The body of POST /predict's answer, encoded: numeric arrays go to orjson as arrays.

        float32 values are written as their shortest float32 representation, so they read
        back as the same float32 numbers.
        """
        predictions: Any = np.ascontiguousarray(self.predictions)
        if predictions.dtype.kind not in "fiu":
            predictions = predictions.tolist()  # labels of any JSON type
        probabilities = self.probabilities
        return orjson.dumps(
            {
                "model_id": self.model.id,
                "predictions": predictions,
                "probabilities": None
                if probabilities is None
                else np.ascontiguousarray(probabilities),
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )


def parse_version(text: str, max_version: int) -> int | None:
    """A version number from a URL segment, or None; ``"²".isdigit()`` is true, so ASCII only,
    and no leading zero ("01"), which the documented pattern refuses."""
    if (
        text.isascii()
        and text.isdigit()
        and not text.startswith("0")
        and len(text) <= 10
        and int(text) <= max_version
    ):
        return int(text)
    return None


def dtype_limit(dtype: np.dtype[Any]) -> float:
    return float(np.finfo(dtype).max)


def validate(network: Network, X: Array, *, max_rows: int) -> Array:
    """X of shape (n, n_features), or (n, *input_shape) for a model of shaped samples (images),
    checked once and cast once to the network's dtype; the answer has shape (n, n_features).

    Refuses (413) more rows than max_rows and (422) no rows, another feature count, samples of
    another shape, anything that is not a number, NaN, infinities, and values beyond what the
    network's dtype holds (1e39 does not fit a float32 model: it would become infinity).
    Runs under ``np.errstate(over="ignore", invalid="ignore")``, as InferenceService.infer
    calls it, so that the cast of such a value warns nothing.
    """
    if X.ndim > 2:
        # Right count, wrong shape ((n, 3, 6) for (3, 3, 2) images) is still the wrong input.
        if X.shape[1:] != network.input_shape:
            raise InvalidInput(
                f"samples of shape {list(X.shape[1:])} do not match the model's input shape "
                f"{list(network.input_shape)} (or rows of {network.n_features} values)"
            )
        X = X.reshape(X.shape[0], -1)
    if X.ndim != 2 or X.shape[0] < 1:
        raise InvalidInput(f"the input must have shape (n, n_features) with n >= 1, not {X.shape}")
    n_rows, n_features = X.shape
    if n_rows > max_rows:
        raise PayloadTooLarge(f"{n_rows} rows sent; at most {max_rows} per request")
    if n_features != network.n_features:
        raise InvalidInput(
            f"the rows have {n_features} features; the model expects {network.n_features}"
        )
    if X.dtype.kind not in "iuf":
        raise InvalidInput(f"features must be numbers, not {X.dtype}")
    dtype = np.dtype(network.dtype)
    cast = np.ascontiguousarray(X, dtype=dtype)
    # One pass over the cast values catches NaN, infinities and overflow alike.
    if not np.isfinite(cast).all():
        _refuse_non_finite(X, dtype)
    return cast


def _refuse_non_finite(X: Array, dtype: np.dtype[Any]) -> None:
    """Say which value could not be taken, and why (only called when one could not)."""
    values = X.astype(np.float64)
    non_finite = np.argwhere(~np.isfinite(values))
    if len(non_finite):
        row, column = (int(i) for i in non_finite[0])
        raise InvalidInput(
            f"feature {column} of row {row} is NaN or infinite; features must be finite numbers",
            [{"loc": ["instances", row, column], "msg": "not a finite number"}],
        )
    limit = dtype_limit(dtype)
    row, column = (int(i) for i in np.argwhere(np.abs(values) > limit)[0])
    raise InvalidInput(
        f"feature {column} of row {row} is {values[row, column]:g}, beyond the range of this "
        f"{dtype.name} model: features must lie within ±{limit:g}",
        [{"loc": ["instances", row, column], "msg": f"beyond ±{limit:g} ({dtype.name})"}],
    )


def run(model: LoadedModel, X: Array) -> Inference:
    """The core's predictions for validated inputs (see `validate`), under the same errstate."""
    network = model.network
    probabilities: Array | None
    if network.task == "regression":
        predictions, probabilities = network.predict(X), None
        outputs = predictions
    else:
        predictions, probabilities = network.predict_with_proba(X)
        outputs = probabilities
    # Finite inputs near the dtype's limit can still overflow inside the network (after
    # standardization or a product); such an answer is no prediction and is not valid JSON.
    if not np.isfinite(outputs).all():
        raise InvalidInput(
            "the model's output overflowed for these inputs; "
            "send feature values of the magnitude the model was trained on"
        )
    PREDICTION_ROWS.inc(X.shape[0])
    return Inference(model, predictions, probabilities)


@dataclass
class _Counts:
    name: str
    version: int
    success: int = 0
    success_ns: int = 0
    failure: int = 0
    failure_ns: int = 0
    rows: int = 0
    last_ms: int = 0


@dataclass
class InferenceStats:
    """Per-model counts of this process, for the v2 statistics extension."""

    _counts: dict[str, _Counts] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, model: LoadedModel, ok: bool, rows: int, elapsed_ns: int) -> None:
        with self._lock:
            counts = self._counts.setdefault(model.id, _Counts(model.name, model.version))
            if ok:
                counts.success += 1
                counts.success_ns += elapsed_ns
                counts.rows += rows
            else:
                counts.failure += 1
                counts.failure_ns += elapsed_ns
            counts.last_ms = time.time_ns() // 1_000_000

    def of(self, model_id: str) -> _Counts | None:
        with self._lock:
            counts = self._counts.get(model_id)
            return None if counts is None else _Counts(**vars(counts))

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._counts.pop(model_id, None)


class InferenceService:
    """Resolve, validate, run: what every predict route calls, and the only caller of the core."""

    def __init__(
        self,
        cache: ModelCache,
        session_factory: sessionmaker[Session],
        *,
        max_rows: int,
        series: ModelSeries | None = None,
    ) -> None:
        self.cache = cache
        self.session_factory = session_factory
        self.max_rows = max_rows
        self.stats = InferenceStats()
        # Prometheus' per-model series (bounded); the stats above serve the v2 extension.
        self.series = series or ModelSeries(cap=500)
        self._refresh = RefreshAhead("model")

    def cached(self, tenant_id: str, ref: ModelRef) -> LoadedModel | None:
        """The model without any I/O if it was resolved moments ago, else None. A resolution
        due for renewal is re-read in the background (see app/refresh_ahead.py)."""
        hit = self.cache.recent(tenant_id, ref)
        if hit is None:
            return None
        loaded, age = hit
        if RefreshAhead.due(age, RESOLVED_TRUST_SECONDS):
            self._refresh.start((tenant_id, ref), lambda: self._reresolve(tenant_id, ref))
        return loaded

    def _reresolve(self, tenant_id: str, ref: ModelRef) -> None:
        with self.session_factory() as session:
            try:
                row = find(session, tenant_id, ref)
            except NotFound:  # deleted since: the cached resolution expires as it would have
                return
            self.load(session, tenant_id, row, ref)

    def resolve(self, tenant_id: str, ref: ModelRef) -> LoadedModel:
        """The loaded model a reference names (blocking: may read the database)."""
        loaded = self.cached(tenant_id, ref)
        if loaded is not None:
            return loaded
        with self.session_factory() as session:
            return self.load(session, tenant_id, find(session, tenant_id, ref), ref)

    def load(self, session: Session, tenant_id: str, row: Model, ref: ModelRef) -> LoadedModel:
        return self.cache.load(session, tenant_id, row, ref)

    def infer(self, model: LoadedModel, X: Array) -> Inference:
        """Validate X once and run the core (CPU work; blocking for large batches)."""
        started = time.perf_counter_ns()
        try:
            # An overflow, in the cast to the model's dtype or inside the network, is answered
            # as an error (validate, run), not logged as a warning on every request. One
            # errstate for both: entering one costs as much as a single-row forward pass.
            with np.errstate(over="ignore", invalid="ignore"):
                result = run(model, validate(model.network, X, max_rows=self.max_rows))
        except Exception:
            elapsed = time.perf_counter_ns() - started
            self.stats.record(model, False, 0, elapsed)
            self.series.record(model.id, model.name, model.version, False, elapsed / 1e9)
            raise
        elapsed = time.perf_counter_ns() - started
        self.stats.record(model, True, X.shape[0], elapsed)
        self.series.record(model.id, model.name, model.version, True, elapsed / 1e9)
        return result

    def predict_blocking(self, tenant_id: str, ref: ModelRef, X: Array) -> Inference:
        return self.infer(self.resolve(tenant_id, ref), X)

    async def predict(self, tenant_id: str, ref: ModelRef, X: Array) -> Inference:
        """Resolve and infer; small batches on a cached model stay on the event loop."""
        loaded = self.cached(tenant_id, ref)
        if loaded is not None and X.shape[0] <= INLINE_ROWS:
            return self.infer(loaded, X)
        return await anyio.to_thread.run_sync(self.predict_blocking, tenant_id, ref, X)

    def forget(self, model_id: str) -> None:
        self.cache.forget(model_id)
        self.stats.forget(model_id)
