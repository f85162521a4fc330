"""Idempotency-Key records: a retried POST gets the first response instead of a second resource."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.db.tables import IdempotencyRecord
from app.errors import Conflict, InvalidInput

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]


def request_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            [{"loc": ["header", "Idempotency-Key"], "msg": "malformed"}],
        )
    return key


def find_replay(
    session: Session, tenant_id: str, scope: str, key: str, digest: str
) -> Replay | None:
    record = session.get(IdempotencyRecord, (tenant_id, scope, key))
    if record is None:
        return None
    if record.request_sha256 != digest:
        raise Conflict(
            "this Idempotency-Key was already used with a different request body; "
            "use a new key for a new request"
        )
    return Replay(status_code=record.status_code, response=record.response)


def remember(
    session: Session,
    tenant_id: str,
    scope: str,
    key: str,
    digest: str,
    status_code: int,
    response: dict[str, Any],
) -> None:
    session.add(
        IdempotencyRecord(
            tenant_id=tenant_id,
            scope=scope,
            key=key,
            request_sha256=digest,
            status_code=status_code,
            response=response,
        )
    )
    session.flush()


def forget(session: Session, tenant_id: str, scope: str, key: str) -> None:
    """Drop a record whose request did not take effect after all, so a retry runs anew."""
    record = session.get(IdempotencyRecord, (tenant_id, scope, key))
    if record is not None:
        session.delete(record)
