"""Which model a request names, and the per-process cache of loaded networks.

A reference (an id, or a name with an optional version or alias) resolves within the caller's
tenant to a stored model; its network is loaded once, sha256-verified, and kept in a small LRU.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.db.tables import Model
from app.errors import NotFound, StoredModelCorrupt
from app.store import aliases, models
from core import Network
from core.errors import ModelFormatError

# How long a resolved reference is trusted without asking the database again. The replica that
# deletes a model forgets it at once; other API replicas may serve it (or a name's previous
# latest version) this long.
RESOLVED_TRUST_SECONDS = 1.0


@dataclass(frozen=True)
class ModelRef:
    """Which model a request names: an id, or a name with a version or an alias (neither: the
    latest version)."""

    model_id: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        if (self.model_id is None) == (self.name is None):
            raise ValueError("a model reference is an id or a name, not both or neither")
        if (self.version is not None or self.alias is not None) and self.name is None:
            raise ValueError("a version or an alias goes with a name, not with an id")
        if self.version is not None and self.alias is not None:
            raise ValueError("a version or an alias, not both")


@dataclass(frozen=True)
class LoadedModel:
    id: str
    name: str
    version: int
    network: Network


@dataclass
class _Entry:
    model: LoadedModel
    tenant_id: str
    resolved_at: float


class ModelCache:
    """A small LRU of loaded networks keyed by model id; weights are verified once, on load.

    It also remembers, for RESOLVED_TRUST_SECONDS, which tenant owns each model and which model
    a (tenant, name, version) reference meant, so a burst of predictions skips the database
    lookup (most of a single-row prediction's cost).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._names: dict[tuple[str, str, int | None], tuple[str, float]] = {}
        self._lock = threading.Lock()

    def load(self, session: Session, tenant_id: str, row: Model, ref: ModelRef) -> LoadedModel:
        """The loaded model of a row the caller has just looked up (and so may use)."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(row.id)
            if entry is not None:
                self._entries.move_to_end(row.id)
                entry.tenant_id, entry.resolved_at = row.tenant_id, now
                self._remember_name(tenant_id, ref, row.id, now)
                return entry.model
        data = models.verified_weights(session, row)
        try:
            network = Network.from_bytes(data)
        except ModelFormatError as exc:
            raise StoredModelCorrupt(
                f"the stored weights of model {row.id!r} match their sha256 but cannot be "
                f"read as a model ({exc}); they will not be loaded"
            ) from None
        loaded = LoadedModel(row.id, row.name, row.version, network)
        with self._lock:
            self._entries[row.id] = _Entry(loaded, row.tenant_id, now)
            self._remember_name(tenant_id, ref, row.id, now)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
        return loaded

    def _remember_name(self, tenant_id: str, ref: ModelRef, model_id: str, now: float) -> None:
        # An alias is read from the database every time: a move must take effect at once, and
        # another replica cannot tell this one that it moved.
        if ref.name is not None and ref.alias is None:
            if len(self._names) >= 4 * self._capacity:
                self._names.clear()  # a bounded memo, not an index: start again when full
            self._names[(tenant_id, ref.name, ref.version)] = (model_id, now)

    def recent(self, tenant_id: str, ref: ModelRef) -> tuple[LoadedModel, float] | None:
        """The model and the age of its resolution, if this tenant resolved the reference
        moments ago (RESOLVED_TRUST_SECONDS), else None (ask the store)."""
        now = time.monotonic()
        with self._lock:
            model_id = ref.model_id
            resolved_at = now
            if model_id is None:
                assert ref.name is not None
                if ref.alias is not None:
                    return None
                named = self._names.get((tenant_id, ref.name, ref.version))
                if named is None:
                    return None
                model_id, resolved_at = named
            entry = self._entries.get(model_id)
            if entry is None or entry.tenant_id != tenant_id:
                return None
            age = now - min(resolved_at, entry.resolved_at)
            if age >= RESOLVED_TRUST_SECONDS:
                return None
            self._entries.move_to_end(model_id)
            return entry.model, age

    def forget(self, model_id: str) -> None:
        with self._lock:
            self._entries.pop(model_id, None)
            self._names = {k: v for k, v in self._names.items() if v[0] != model_id}


def find(session: Session, tenant_id: str, ref: ModelRef) -> Model:
    """The stored model a reference names within the tenant; NotFound otherwise."""
    if ref.model_id is not None:
        return models.get_model(session, tenant_id, ref.model_id)
    assert ref.name is not None
    if ref.alias is not None:
        model_id = aliases.resolve_alias(session, tenant_id, ref.name, ref.alias)
        if model_id is None:
            raise NotFound(f"model {ref.name!r} has no alias {ref.alias!r}")
        return models.get_model(session, tenant_id, model_id)
    return models.find_model(session, tenant_id, ref.name, ref.version)
