"""The error hierarchy: every failure authcore reports is an :class:`AuthError`.

Each class carries the HTTP status the web layer answers with and the CLI exit code.
Messages are written for the person who reads them and never contain a password, a
token, a secret, or a hint whether a login exists.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

__all__ = [
    "AuthError",
    "ConfigError",
    "InvalidCredentials",
    "InvalidToken",
    "TokenExpired",
    "Forbidden",
    "ProviderUnavailable",
    "SessionStoreUnavailable",
    "NotSupported",
    "UnknownProvider",
    "UserNotFound",
    "UserExists",
    "UserChangeRefused",
    "TokenNotFound",
    "BadRequest",
    "NotAuthenticated",
    "UnsupportedMediaType",
    "UnknownPlugin",
    "PayloadTooLarge",
    "Throttled",
]


class AuthError(Exception):
    """Base class of every error authcore raises on purpose."""

    #: HTTP status the web adapters answer with.
    status_code: int = 500
    #: Exit code of the ``authcore`` command line.
    exit_code: int = 1
    #: Short machine-readable name, used in JSON error bodies.
    code: str = "auth_error"
    #: The message used when none is given.
    default_message: str = "authentication error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0])


class ConfigError(AuthError):
    """The configuration is invalid: names the file, line and key path where known."""

    status_code = 500
    exit_code = 2
    code = "config_error"
    default_message = "invalid configuration"


class UnknownProvider(ConfigError):
    """A provider type or instance name that is not installed or not configured."""

    code = "unknown_provider"


class InvalidCredentials(AuthError):
    """Login refused. Deliberately the same for an unknown login and a wrong password."""

    status_code = 401
    code = "invalid_credentials"
    default_message = "invalid login or password"


class InvalidToken(AuthError):
    """A token that is malformed, forged, revoked, or otherwise not acceptable."""

    status_code = 401
    code = "invalid_token"
    default_message = "invalid token"


class TokenExpired(InvalidToken):
    """A token whose lifetime (or whose session's lifetime) is over."""

    code = "token_expired"
    default_message = "token expired"


class Forbidden(AuthError):
    """Authenticated, but without the permissions the operation requires."""

    status_code = 403
    code = "forbidden"
    default_message = "permission denied"


class ProviderUnavailable(AuthError):
    """The identity source cannot be reached or answered with an error of its own."""

    status_code = 503
    code = "provider_unavailable"
    default_message = "identity provider unavailable"


class SessionStoreUnavailable(ProviderUnavailable):
    """The session store (Redis) cannot be reached or is too slow: logins and refreshes answer 503."""

    code = "session_store_unavailable"
    default_message = "session store unavailable"


class NotSupported(AuthError):
    """The provider does not support the requested operation."""

    status_code = 501
    exit_code = 2
    code = "not_supported"

    def __init__(self, provider: str, operation: str) -> None:
        self.provider, self.operation = provider, operation
        super().__init__(f"provider {provider!r} does not support {operation!r}")


class UserNotFound(AuthError):
    """User management: no user with that login (a login says only :class:`InvalidCredentials`)."""

    status_code = 404
    code = "user_not_found"
    default_message = "no such user"


class UserExists(AuthError):
    """User management: a user with that login already exists."""

    status_code = 409
    code = "user_exists"
    default_message = "user already exists"


class UserChangeRefused(AuthError):
    """User management: the provider refuses a change (a protected attribute, the directory's refusal): 409."""

    status_code = 409
    code = "change_refused"
    default_message = "the provider refused the change"


class TokenNotFound(AuthError):
    """No live token (a token's session) with that id, or none the caller may see: 404."""

    status_code = 404
    code = "token_not_found"
    default_message = "token not found"


# Request-level errors: the web layer's, and a provider's that finds a request unusable.
class BadRequest(AuthError):
    """The request body or parameters are malformed (400, or 422 for a body that fails validation)."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str | None = None, *, status_code: int = 400, problems: list[Any] | None = None):
        super().__init__(message or "bad request")
        self.status_code, self.problems = status_code, problems or []


class NotAuthenticated(InvalidCredentials):
    """No credentials at all (401): "authentication required", not a failed login; no RFC 6750 ``error=``."""

    code = "not_authenticated"
    default_message = "authentication required"


class UnsupportedMediaType(AuthError):
    """The body is not ``application/json`` where JSON is required (415)."""

    status_code = 415
    code = "unsupported_media_type"
    default_message = "the body must be JSON (Content-Type: application/json)"


class UnknownPlugin(AuthError):
    """A login's ``plugin`` that names no enabled provider (400); the message lists them (``/auth/config`` does too)."""

    status_code = 400
    code = "unknown_provider"

    def __init__(self, enabled: Collection[str]) -> None:
        super().__init__(f"'plugin' must name an enabled provider: {', '.join(sorted(enabled)) or 'none'}")


class PayloadTooLarge(AuthError):
    """The request body is larger than the web layer reads (413)."""

    status_code = 413
    code = "payload_too_large"
    default_message = "request body too large"


class Throttled(AuthError):
    """Too many failed logins for this login or address (429, ``Retry-After``)."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed attempts; try again later")
        self.retry_after = max(1, int(retry_after + 0.999))
