from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool

from app.schemas.common import StrictModel

TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class KeyCreate(StrictModel):
    tenant: str = Field(pattern=TENANT_PATTERN)
    # Strict: a grant of admin rights is a JSON true, never "yes", "on" or 1 read as true.
    admin: StrictBool = False


class KeyOut(BaseModel):
    id: str
    tenant_id: str
    prefix: str
    is_admin: bool
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(KeyOut):
    key: str = Field(description="the API key itself; shown once, only its hash is stored")


class TenantOut(BaseModel):
    tenant_id: str
    active_keys: int


class TenantList(BaseModel):
    items: list[TenantOut]


class KeyList(BaseModel):
    items: list[KeyOut]
