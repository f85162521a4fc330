"""API keys: created once (the plain key is shown then and never stored), looked up by hash.

Key rows are never deleted, only revoked: their presence is the persisted fact "keys were
created on this database", which keeps a server that once required keys requiring them
(app/auth.py). Do not add a delete.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db.tables import ApiKey, utcnow
from app.errors import NotFound
from app.ids import new_id

KEY_PREFIX = "dnn_"


@dataclass(frozen=True)
class Caller:
    tenant_id: str
    is_admin: bool
    key_id: str | None


def hash_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; no dictionary attack can reach them.
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant_id: str, *, is_admin: bool) -> tuple[ApiKey, str]:
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKey(
        id=new_id(),
        tenant_id=tenant_id,
        key_hash=hash_key(plain),
        prefix=plain[:12],
        is_admin=is_admin,
    )
    session.add(record)
    session.flush()
    return record, plain


def caller_for(session: Session, plain: str) -> Caller | None:
    record = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(plain), ApiKey.revoked_at.is_(None))
    )
    if record is None:
        return None
    return Caller(tenant_id=record.tenant_id, is_admin=record.is_admin, key_id=record.id)


def active_key_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).where(ApiKey.revoked_at.is_(None))) or 0)


def keys_ever_created(session: Session) -> bool:
    """Whether any key, revoked or not, was ever created on this database."""
    return session.scalar(select(ApiKey.id).limit(1)) is not None


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.tenant_id, ApiKey.created_at)).all()


def revoke_key(session: Session, key_id: str) -> ApiKey:
    record = session.get(ApiKey, key_id)
    if record is None:
        raise NotFound(f"key {key_id!r} does not exist")
    if record.revoked_at is None:
        session.execute(update(ApiKey).where(ApiKey.id == key_id).values(revoked_at=utcnow()))
        session.refresh(record)
    return record


def tenants(session: Session) -> list[tuple[str, int]]:
    """Each tenant with its number of active keys."""
    query = (
        select(ApiKey.tenant_id, func.count())
        .where(ApiKey.revoked_at.is_(None))
        .group_by(ApiKey.tenant_id)
        .order_by(ApiKey.tenant_id)
    )
    return [(tenant, int(count)) for tenant, count in session.execute(query).all()]
