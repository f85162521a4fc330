"""Domain errors. Each carries its HTTP status and a stable code; app/main.py maps them once."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    @property
    def headers(self) -> dict[str, str]:
        return {}


class InvalidInput(ServiceError):
    status_code = 422
    code = "invalid_input"


class LimitExceeded(InvalidInput):
    """A request within the schema's bounds but beyond this server's configured limits."""

    code = "limit_exceeded"


class NotFound(ServiceError):
    status_code = 404
    code = "not_found"


class Conflict(ServiceError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(ServiceError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    code = "unsupported_media_type"


class Unauthorized(ServiceError):
    status_code = 401
    code = "unauthorized"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": "Bearer"}


class Forbidden(ServiceError):
    status_code = 403
    code = "forbidden"


class _RetryLater(ServiceError):
    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class TooManyRequests(_RetryLater):
    status_code = 429
    code = "too_many_requests"


class ServiceUnavailable(_RetryLater):
    status_code = 503
    code = "service_unavailable"


class NotInstalled(ServiceError):
    """A feature that needs an optional package this server was installed without."""

    status_code = 501
    code = "not_implemented"


class StoredModelCorrupt(ServiceError):
    """The stored weights no longer match their recorded sha256; they are never loaded."""

    status_code = 409
    code = "model_integrity_error"
