"""Who is calling: a Bearer API key names a tenant; with no key configured, one open tenant."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session

from app.errors import Unauthorized
from app.store import keys
from app.store.keys import Caller

OPEN_MODE_TENANT = "public"
OPEN_MODE_CALLER = Caller(tenant_id=OPEN_MODE_TENANT, is_admin=False, key_id=None)
# How long "are any keys configured?" is trusted before it is asked again.
MODE_CACHE_SECONDS = 1.0
MAX_CACHED_KEYS = 10_000


class AuthGate:
    """Resolves the Authorization header to a Caller.

    The service is in open mode exactly while no active key exists; creating the first key
    (`dnn-service keys create`) closes it within a second, without a restart. Answers are
    cached for that second too (a revoked key stops working within it), so most requests
    resolve their caller without touching the database.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys_exist = False
        self._checked_at = float("-inf")
        self._callers: dict[str, tuple[Caller, float]] = {}

    def cached_caller(self, authorization: str | None) -> Caller | None:
        """The caller if it is known without asking the database, else None."""
        now = time.monotonic()
        with self._lock:
            if authorization is None:
                fresh = now - self._checked_at < MODE_CACHE_SECONDS
                return OPEN_MODE_CALLER if fresh and not self._keys_exist else None
            cached = self._callers.get(authorization)
        if cached is not None and now - cached[1] < MODE_CACHE_SECONDS:
            return cached[0]
        return None

    def invalidate(self) -> None:
        """Forget every cached answer, e.g. after this process revoked a key."""
        with self._lock:
            self._callers.clear()
            self._checked_at = float("-inf")

    def keys_exist(self, session: Session) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._checked_at < MODE_CACHE_SECONDS:
                return self._keys_exist
        exist = keys.active_key_count(session) > 0
        with self._lock:
            self._keys_exist, self._checked_at = exist, now
        return exist

    def caller(self, session: Session, authorization: str | None) -> Caller:
        if authorization is None:
            if self.keys_exist(session):
                raise Unauthorized(
                    "this server needs an API key: send 'Authorization: Bearer <key>'"
                )
            return OPEN_MODE_CALLER
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <key>'")
        caller = keys.caller_for(session, token.strip())
        if caller is None:
            raise Unauthorized("the API key is not valid or has been revoked")
        with self._lock:
            if len(self._callers) >= MAX_CACHED_KEYS:
                self._callers.clear()
            self._callers[authorization] = (caller, time.monotonic())
        return caller
