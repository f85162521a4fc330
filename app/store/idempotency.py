"""Idempotency-Key records: a retried POST gets the first response instead of a second resource.

`run_once` is the one flow every idempotent route uses. The record is inserted *first*, inside
the request's transaction, with `INSERT ... ON CONFLICT DO NOTHING`: the database's primary key
decides who wins, not a check-then-insert. On PostgreSQL a concurrent request with the same key
waits on that insert until the first transaction ends, then finds the first answer committed
and replays it (or, if the first failed and rolled back, takes the key itself). On SQLite the
write transactions are serialized by BEGIN IMMEDIATE already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db.tables import IdempotencyRecord
from app.errors import Conflict, InvalidInput
from app.store.upsert import insert_for

MAX_KEY_LENGTH = 200
# status_code of a reserved record whose request has not finished; never committed as such by
# run_once (the record is completed in the same transaction), but seen if a caller does.
IN_PROGRESS = 0
IN_PROGRESS_RETRY_AFTER_SECONDS = 1


@dataclass(frozen=True)
class Outcome:
    status_code: int
    response: dict[str, Any]
    # True when this is the stored answer of an earlier request with the same key.
    replayed: bool


class RequestInProgress(Conflict):
    """Another request with this key has not finished yet: retry after a moment."""

    code = "request_in_progress"

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(IN_PROGRESS_RETRY_AFTER_SECONDS)}


def request_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            [{"loc": ["header", "Idempotency-Key"], "msg": "malformed"}],
        )
    return key


def run_once(
    session: Session,
    *,
    tenant_id: str,
    scope: str,
    key: str | None,
    digest: str,
    act: Callable[[], tuple[int, dict[str, Any]]],
) -> Outcome:
    """Run `act` (which writes through `session`) at most once per (tenant, scope, key).

    Call it inside the request's open transaction; `act` returns (status code, JSON body).
    Without a key it simply runs. With a key already answered, the first answer comes back
    (a different request body under the same key is a 409).
    """
    if key is None:
        status_code, response = act()
        return Outcome(status_code, response, replayed=False)
    if not _reserve(session, tenant_id, scope, key, digest):
        return _replay(session, tenant_id, scope, key, digest)
    status_code, response = act()
    session.execute(
        update(IdempotencyRecord)
        .where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
        .values(status_code=status_code, response=response)
    )
    return Outcome(status_code, response, replayed=False)


def _reserve(session: Session, tenant_id: str, scope: str, key: str, digest: str) -> bool:
    """Insert the record, or nothing when the key is taken; True when this request took it."""
    statement = (
        insert_for(session, IdempotencyRecord)
        .values(
            tenant_id=tenant_id,
            scope=scope,
            key=key,
            request_sha256=digest,
            status_code=IN_PROGRESS,
            response={},
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "scope", "key"])
        .returning(IdempotencyRecord.key)
    )
    return session.execute(statement).first() is not None


def _replay(session: Session, tenant_id: str, scope: str, key: str, digest: str) -> Outcome:
    # A fresh read (READ COMMITTED on PostgreSQL): the winner's committed row, not a cached one.
    record = session.execute(
        select(
            IdempotencyRecord.request_sha256,
            IdempotencyRecord.status_code,
            IdempotencyRecord.response,
        ).where(
            IdempotencyRecord.tenant_id == tenant_id,
            IdempotencyRecord.scope == scope,
            IdempotencyRecord.key == key,
        )
    ).first()
    if record is None:
        # Taken a moment ago and released since (its request failed): the client may retry.
        raise RequestInProgress("a request with this Idempotency-Key has just ended; retry it")
    request_sha256, status_code, response = record
    if request_sha256 != digest:
        raise Conflict(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new request"
        )
    if status_code == IN_PROGRESS:
        raise RequestInProgress(
            "a request with this Idempotency-Key is still being processed; retry shortly"
        )
    return Outcome(status_code, dict(response), replayed=True)


def forget(session: Session, tenant_id: str, scope: str, key: str) -> None:
    """Drop a record whose request did not take effect after all, so a retry runs anew."""
    record = session.get(IdempotencyRecord, (tenant_id, scope, key))
    if record is not None:
        session.delete(record)
