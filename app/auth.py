"""Who is calling, and whether the server requires API keys at all.

The mode is decided once at start-up (`decide_mode`) and can only close afterwards: a server
that requires keys keeps requiring them when every key is revoked (it then refuses everyone
until an admin creates a key with `dnn-service keys create`), and a loopback server that
started open closes for good as soon as the first key is created.
"""

from __future__ import annotations

import enum
import hmac
import ipaddress
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from app.errors import Unauthorized
from app.refresh_ahead import RefreshAhead
from app.settings import Settings
from app.store import keys
from app.store.keys import Caller

log = logging.getLogger("app.auth")

OPEN_MODE_TENANT = "public"
OPEN_MODE_CALLER = Caller(tenant_id=OPEN_MODE_TENANT, is_admin=False, key_id=None)
# How long "has a key been created?" and a key's caller are trusted before they are asked again.
MODE_CACHE_SECONDS = 1.0
MAX_CACHED_KEYS = 10_000
FIRST_KEY_HINT = "dnn-service keys create --admin --tenant NAME"

SessionFactory = sessionmaker[Session]


class AuthMode(enum.StrEnum):
    KEYS = "keys"
    NONE = "none"
    # Open, single tenant, until the first key is created on the database; then KEYS for good.
    UNTIL_FIRST_KEY = "until_first_key"


@dataclass(frozen=True)
class AuthDecision:
    mode: AuthMode
    reason: str
    warnings: tuple[str, ...] = ()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def decide_mode(settings: Settings, host: str, *, keys_ever_created: bool) -> AuthDecision:
    """The start-up decision: explicit DNN_AUTH wins; unset, open only where nothing was closed."""
    warnings: list[str] = []
    legacy = settings.allow_open_network
    if legacy is not None:
        warnings.append(
            "DNN_ALLOW_OPEN_NETWORK is deprecated: set DNN_AUTH=none (open) or DNN_AUTH=keys"
            + (" (ignored, DNN_AUTH is set)" if settings.auth is not None else "")
        )
    if settings.auth == "keys":
        return AuthDecision(AuthMode.KEYS, "DNN_AUTH=keys", tuple(warnings))
    if settings.auth == "none":
        if keys_ever_created:
            warnings.append(
                "DNN_AUTH=none on a database where API keys were created: callers without a "
                f"key share the open tenant {OPEN_MODE_TENANT!r}"
            )
        return AuthDecision(AuthMode.NONE, "DNN_AUTH=none", tuple(warnings))
    if keys_ever_created:
        return AuthDecision(
            AuthMode.KEYS,
            "DNN_AUTH unset and an API key was created on this database",
            tuple(warnings),
        )
    if is_loopback(host):
        reason = f"DNN_AUTH unset, loopback bind {host} and no API key ever created"
        return AuthDecision(AuthMode.UNTIL_FIRST_KEY, reason, tuple(warnings))
    if legacy:
        reason = f"DNN_AUTH unset, DNN_ALLOW_OPEN_NETWORK=true on {host}, no API key ever created"
        return AuthDecision(AuthMode.UNTIL_FIRST_KEY, reason, tuple(warnings))
    return AuthDecision(
        AuthMode.KEYS, f"DNN_AUTH unset and {host} is not a loopback address", tuple(warnings)
    )


def log_decision(decision: AuthDecision, *, active_keys: int) -> None:
    """Every start-up decision is written to the log, with what it means for a caller."""
    for warning in decision.warnings:
        log.warning(warning)
    if decision.mode == AuthMode.KEYS:
        log.info("auth mode: keys (%s); every request needs an API key", decision.reason)
        if active_keys == 0:
            log.warning(
                "auth mode: keys, but no active API key exists: every request is refused (401) "
                "until an admin creates one with `%s`",
                FIRST_KEY_HINT,
            )
    elif decision.mode == AuthMode.NONE:
        log.warning(
            "auth mode: none (%s); every caller without a key shares the tenant %r",
            decision.reason,
            OPEN_MODE_TENANT,
        )
    else:
        log.warning(
            "auth mode: none until the first API key is created (%s); every caller shares the "
            "tenant %r. `%s` switches this server to keys for good.",
            decision.reason,
            OPEN_MODE_TENANT,
            FIRST_KEY_HINT,
        )


class AuthGate:
    """Resolves the Authorization header to a Caller under the server's auth mode.

    In UNTIL_FIRST_KEY mode the gate trusts "no key was ever created" for a second after the
    database said so, and latches to KEYS the first time one was: nothing turns it back. A
    key's caller is trusted for that second too (a revoked key stops working within it), so
    most requests resolve their caller without touching the database; answers past half that
    second are re-read in the background (see app/refresh_ahead.py).
    """

    def __init__(self, mode: AuthMode = AuthMode.KEYS, metrics_token: str | None = None) -> None:
        self._lock = threading.Lock()
        self._mode = mode
        self._metrics_token = metrics_token
        self._checked_at = float("-inf")
        self._callers: dict[str, tuple[Caller, float]] = {}
        self._refresh = RefreshAhead("auth")

    @property
    def mode(self) -> AuthMode:
        return self._mode

    def _open_known(self, factory: SessionFactory | None = None) -> bool | None:
        """True/False when whether anonymous callers are let in is known without the database.

        With a session ``factory``, an answer due for renewal is re-read in the background.
        """
        with self._lock:
            if self._mode == AuthMode.KEYS:
                return False
            if self._mode == AuthMode.NONE:
                return True
            age = time.monotonic() - self._checked_at
        if age >= MODE_CACHE_SECONDS:
            return None
        if factory is not None and RefreshAhead.due(age, MODE_CACHE_SECONDS):
            self._refresh.start(None, lambda: self._recheck_mode(factory))
        return True

    def _recheck_mode(self, factory: SessionFactory) -> None:
        with factory() as session:
            self._check_mode(session)

    def keys_required(self, session: Session) -> bool:
        known = self._open_known()
        if known is not None:
            return not known
        return self._check_mode(session)

    def _check_mode(self, session: Session) -> bool:
        """Ask the database whether a key was ever created (and latch to KEYS if so)."""
        asked_at = time.monotonic()  # the answer is trusted from when it was asked for
        ever = keys.keys_ever_created(session)
        with self._lock:
            if ever and self._mode == AuthMode.UNTIL_FIRST_KEY:
                self._mode = AuthMode.KEYS
                log.warning(
                    "auth mode: keys (an API key was created); every request needs an API key "
                    "from now on, also after a restart and when every key is revoked"
                )
            self._checked_at = asked_at
            return self._mode == AuthMode.KEYS

    def cached_caller(
        self, authorization: str | None, factory: SessionFactory | None = None
    ) -> Caller | None:
        """The caller if it is known without asking the database, else None (ask it).

        Raises Unauthorized at once for an anonymous caller when keys are known to be required.
        With a session ``factory``, an answer due for renewal is re-read in the background.
        """
        if authorization is None:
            known = self._open_known(factory)
            if known is False:
                raise _missing_key()
            return OPEN_MODE_CALLER if known else None
        with self._lock:
            cached = self._callers.get(authorization)
        if cached is None:
            return None
        age = time.monotonic() - cached[1]
        if age >= MODE_CACHE_SECONDS:
            return None
        if factory is not None and RefreshAhead.due(age, MODE_CACHE_SECONDS):
            self._refresh.start(authorization, lambda: self._recheck_caller(factory, authorization))
        return cached[0]

    def _recheck_caller(self, factory: SessionFactory, authorization: str) -> None:
        try:
            with factory() as session:
                self.caller(session, authorization)
        except Unauthorized:  # revoked since: forget it now rather than when it expires
            with self._lock:
                self._callers.pop(authorization, None)

    def invalidate(self) -> None:
        """Forget every cached caller, e.g. after this process revoked a key. Never reopens."""
        with self._lock:
            self._callers.clear()
            self._checked_at = float("-inf")

    def caller(self, session: Session, authorization: str | None) -> Caller:
        if authorization is None:
            if self.keys_required(session):
                raise _missing_key()
            return OPEN_MODE_CALLER
        token = bearer_token(authorization)
        asked_at = time.monotonic()
        caller = keys.caller_for(session, token)
        if caller is None:
            raise Unauthorized("the API key is not valid or has been revoked")
        with self._lock:
            if len(self._callers) >= MAX_CACHED_KEYS:
                self._callers.clear()
            self._callers[authorization] = (caller, asked_at)
        return caller

    def is_metrics_token(self, authorization: str | None) -> bool:
        if self._metrics_token is None or authorization is None:
            return False
        scheme, _, token = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self._metrics_token.encode()
        )


def bearer_token(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("the Authorization header must be 'Bearer <key>'")
    return token.strip()


def _missing_key() -> Unauthorized:
    return Unauthorized("this server needs an API key: send 'Authorization: Bearer <key>'")
