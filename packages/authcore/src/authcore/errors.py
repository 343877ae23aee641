"""The error hierarchy: every failure authcore reports is an :class:`AuthError`.

Each class carries the HTTP status the web layer answers with and the CLI exit code.
Messages are written for the person who reads them and never contain a password, a
token, a secret, or a hint whether a login exists.
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "ConfigError",
    "InvalidCredentials",
    "InvalidToken",
    "TokenExpired",
    "Forbidden",
    "ProviderUnavailable",
    "NotSupported",
    "UnknownProvider",
    "UserNotFound",
    "UserExists",
]


class AuthError(Exception):
    """Base class of every error authcore raises on purpose."""

    #: HTTP status the web adapters answer with.
    status_code: int = 500
    #: Exit code of the ``authcore`` command line.
    exit_code: int = 1
    #: Short machine-readable name, used in JSON error bodies.
    code: str = "auth_error"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message())

    @classmethod
    def default_message(cls) -> str:
        """The message used when none is given."""
        return "authentication error"

    @property
    def message(self) -> str:
        """The human-readable message."""
        return str(self.args[0])


class ConfigError(AuthError):
    """The configuration is invalid: names the file, line and key path where known."""

    status_code = 500
    exit_code = 2
    code = "config_error"

    @classmethod
    def default_message(cls) -> str:
        return "invalid configuration"


class UnknownProvider(ConfigError):
    """A provider type or instance name that is not installed or not configured."""

    code = "unknown_provider"


class InvalidCredentials(AuthError):
    """Login refused. Deliberately the same for an unknown login and a wrong password."""

    status_code = 401
    code = "invalid_credentials"

    @classmethod
    def default_message(cls) -> str:
        return "invalid login or password"


class InvalidToken(AuthError):
    """A token that is malformed, forged, revoked, or otherwise not acceptable."""

    status_code = 401
    code = "invalid_token"

    @classmethod
    def default_message(cls) -> str:
        return "invalid token"


class TokenExpired(InvalidToken):
    """A token whose lifetime (or whose session's lifetime) is over."""

    code = "token_expired"

    @classmethod
    def default_message(cls) -> str:
        return "token expired"


class Forbidden(AuthError):
    """Authenticated, but without the permissions the operation requires."""

    status_code = 403
    code = "forbidden"

    @classmethod
    def default_message(cls) -> str:
        return "permission denied"


class ProviderUnavailable(AuthError):
    """The identity source cannot be reached or answered with an error of its own."""

    status_code = 503
    code = "provider_unavailable"

    @classmethod
    def default_message(cls) -> str:
        return "identity provider unavailable"


class NotSupported(AuthError):
    """The provider does not support the requested operation."""

    status_code = 501
    exit_code = 2
    code = "not_supported"

    def __init__(self, provider: str, operation: str) -> None:
        self.provider = provider
        self.operation = operation
        super().__init__(f"provider {provider!r} does not support {operation!r}")


class UserNotFound(AuthError):
    """User management: no user with that login. Never raised by a login, which says only
    :class:`InvalidCredentials`."""

    status_code = 404
    code = "user_not_found"

    @classmethod
    def default_message(cls) -> str:
        return "no such user"


class UserExists(AuthError):
    """User management: a user with that login already exists."""

    status_code = 409
    code = "user_exists"

    @classmethod
    def default_message(cls) -> str:
        return "user already exists"
