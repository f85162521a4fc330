"""/admin: tenants and API keys; every route needs an admin key."""

from __future__ import annotations

import logging

from fastapi import APIRouter, status

from app.api.deps import AdminDep, AuthGateDep, SessionDep
from app.db.tables import ApiKey
from app.schemas.admin import KeyCreate, KeyCreated, KeyList, KeyOut, TenantList, TenantOut
from app.schemas.common import error_responses
from app.store import keys

log = logging.getLogger("app.auth")

router = APIRouter(
    prefix="/admin", tags=["admin"], responses=error_responses(400, 401, 403, 404, 422)
)


def to_out(record: ApiKey) -> KeyOut:
    return KeyOut.model_validate(record, from_attributes=True)


@router.get("/tenants", response_model=TenantList)
def list_tenants(session: SessionDep, _admin: AdminDep) -> TenantList:
    items = [TenantOut(tenant_id=t, active_keys=n) for t, n in keys.tenants(session)]
    return TenantList(items=items)


@router.get("/keys", response_model=KeyList)
def list_keys(session: SessionDep, _admin: AdminDep) -> KeyList:
    return KeyList(items=[to_out(record) for record in keys.list_keys(session)])


@router.post("/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, admin: AdminDep) -> KeyCreated:
    with session.begin():
        record, plain = keys.create_key(session, body.tenant, is_admin=body.admin)
        created = KeyCreated(**to_out(record).model_dump(), key=plain)
    role = "admin key" if record.is_admin else "key"
    log.info(
        "%s %s created for tenant %s by key %s", role, record.id, record.tenant_id, admin.key_id
    )
    return created


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: str, session: SessionDep, gate: AuthGateDep, admin: AdminDep) -> KeyOut:
    with session.begin():
        revoked = to_out(keys.revoke_key(session, key_id))
        remaining = keys.active_key_count(session)
    gate.invalidate()
    log.info("key %s of tenant %s revoked by key %s", key_id, revoked.tenant_id, admin.key_id)
    if remaining == 0:
        # Revoking the last key never opens the server (app/auth.py): it now refuses everyone.
        log.warning(
            "no active API key is left: every request is refused (401) until an admin "
            "creates one with `dnn-service keys create --admin --tenant NAME`"
        )
    return revoked
