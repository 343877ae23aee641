"""authcore: pluggable authentication and authorization for Python web services.

The public API. Host applications hold an :class:`AuthManager`; provider packages
subclass :class:`Provider` and register it with :func:`hookimpl`-decorated
``authcore_register_providers``.
"""

from __future__ import annotations

from .errors import (
    AuthError,
    ConfigError,
    Forbidden,
    InvalidCredentials,
    InvalidToken,
    NotSupported,
    ProviderUnavailable,
    TokenExpired,
    UnknownProvider,
    UserExists,
    UserNotFound,
)
from .hookspecs import hookimpl
from .manager import AuthManager
from .models import Identity, LoginResult, VerifiedToken
from .permissions import require
from .providers import (
    AnonymousCredentials,
    AuthorizationCodeCredentials,
    AuthorizationRequest,
    BearerIdentity,
    BearerTokens,
    Credentials,
    Health,
    NewUser,
    PasswordCredentials,
    Provider,
    ProviderConfig,
    Registration,
    SelfUpdate,
    SingleSignOn,
    TokenCredentials,
    UpstreamSessions,
    UserManagement,
    UserUpdate,
)

__version__ = "0.2.0"

__all__ = [
    "AnonymousCredentials",
    "AuthError",
    "AuthManager",
    "AuthorizationCodeCredentials",
    "AuthorizationRequest",
    "BearerIdentity",
    "BearerTokens",
    "ConfigError",
    "Credentials",
    "Forbidden",
    "Health",
    "Identity",
    "InvalidCredentials",
    "InvalidToken",
    "LoginResult",
    "NewUser",
    "NotSupported",
    "PasswordCredentials",
    "Provider",
    "ProviderConfig",
    "ProviderUnavailable",
    "Registration",
    "SelfUpdate",
    "SingleSignOn",
    "TokenCredentials",
    "TokenExpired",
    "UnknownProvider",
    "UpstreamSessions",
    "UserExists",
    "UserManagement",
    "UserNotFound",
    "UserUpdate",
    "VerifiedToken",
    "hookimpl",
    "require",
    "__version__",
]
