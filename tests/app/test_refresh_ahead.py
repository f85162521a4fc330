"""Cached database answers are renewed in the background before they expire, and never trusted
longer than before: a revoked key, a first key and a deleted model take effect as soon as the
background re-read sees them (real SQLite; the trust windows are stretched to 2 s so that the
half-way point is well apart from the expiry on a slow machine)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from app import auth, model_cache, serving
from app.auth import OPEN_MODE_CALLER, AuthGate, AuthMode
from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.errors import Unauthorized
from app.model_cache import ModelCache, ModelRef
from app.serving import InferenceService
from app.store import keys, models
from core import Network

TRUST = 2.0


@pytest.fixture
def factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sessionmaker[Session]]:
    monkeypatch.setattr(auth, "MODE_CACHE_SECONDS", TRUST)
    monkeypatch.setattr(model_cache, "RESOLVED_TRUST_SECONDS", TRUST)
    monkeypatch.setattr(serving, "RESOLVED_TRUST_SECONDS", TRUST)
    url = f"sqlite:///{tmp_path / 'refresh.db'}"
    upgrade_to_head(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def until(check: Callable[[], bool], deadline: float) -> bool:
    """Whether ``check`` became true before ``deadline`` (a time.monotonic() value)."""
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return False


def past_half(start: float) -> None:
    time.sleep(max(0.0, start + TRUST / 2 + 0.05 - time.monotonic()))


def test_a_key_revoked_elsewhere_is_dropped_before_its_answer_expires(
    factory: sessionmaker[Session],
) -> None:
    with factory() as session, session.begin():
        row, plain = keys.create_key(session, "alice", is_admin=False)
        key_id = row.id
    gate, header = AuthGate(AuthMode.KEYS), f"Bearer {plain}"
    start = time.monotonic()
    with factory() as session:
        assert gate.caller(session, header).tenant_id == "alice"
    with factory() as session, session.begin():  # another process revokes it
        keys.revoke_key(session, key_id)
    assert gate.cached_caller(header, factory) is not None  # fresh: no re-read yet
    past_half(start)
    # Still trusted, so still served, and the re-read starts in the background...
    assert gate.cached_caller(header, factory) is not None
    # ...which drops it before the answer would have expired.
    assert until(lambda: gate.cached_caller(header) is None, start + TRUST - 0.2)
    with factory() as session, pytest.raises(Unauthorized):
        gate.caller(session, header)


def test_the_first_key_closes_an_open_gate_before_its_answer_expires(
    factory: sessionmaker[Session],
) -> None:
    gate = AuthGate(AuthMode.UNTIL_FIRST_KEY)
    start = time.monotonic()
    with factory() as session:
        assert not gate.keys_required(session)
    assert gate.cached_caller(None, factory) is OPEN_MODE_CALLER
    with factory() as session, session.begin():
        keys.create_key(session, "alice", is_admin=True)
    past_half(start)
    assert gate.cached_caller(None, factory) is OPEN_MODE_CALLER

    def closed() -> bool:
        try:
            gate.cached_caller(None)
        except Unauthorized:
            return True
        return False

    assert until(closed, start + TRUST - 0.2)
    assert gate.mode == AuthMode.KEYS


def _store(factory: sessionmaker[Session]) -> str:
    network = Network((3, 2, 1), seed=0)
    with factory() as session, session.begin():
        model = models.create_model(
            session,
            tenant_id="alice",
            name="net",
            job_id="job",
            dataset_id=None,
            architecture={"task": network.task, "dtype": network.dtype},
            metrics={},
            weights=network.to_bytes(),
        )
        return model.id


def test_a_model_in_use_stays_resolved_while_it_exists(factory: sessionmaker[Session]) -> None:
    model_id = _store(factory)
    service = InferenceService(ModelCache(4), factory, max_rows=100)
    ref = ModelRef(name="net")
    start = time.monotonic()
    assert service.resolve("alice", ref).id == model_id
    past_half(start)
    assert service.cached("alice", ref) is not None  # renewed in the background from here

    def renewed() -> bool:
        hit = service.cache.recent("alice", ref)
        return hit is not None and hit[1] < TRUST / 2

    assert until(renewed, start + TRUST - 0.2)
    # Deleted elsewhere: the next re-read finds nothing, so the answer expires on time.
    with factory() as session, session.begin():
        models.delete_model(session, "alice", model_id)
    renewed_at = time.monotonic() - service.cache.recent("alice", ref)[1]  # type: ignore[index]
    past_half(renewed_at)
    assert service.cached("alice", ref) is not None
    assert until(lambda: service.cached("alice", ref) is None, renewed_at + TRUST + 1.0)
    assert time.monotonic() >= renewed_at + TRUST
