"""authcore: pluggable authentication and authorization for Python web services.

The public API. Host applications hold an :class:`AuthManager`; provider packages
subclass :class:`Provider` and register it with :func:`hookimpl`-decorated
``authcore_register_providers``.

Each name is imported from its module on first use (PEP 562), so importing a submodule
(``authcore.testing.plugin``, which pytest loads in every run where authcore is
installed, or ``authcore.errors``) does not import the whole core.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

#: Where each public name is defined: the submodule imported when the name is first used.
_SOURCES = {
    "errors": "AuthError ConfigError Forbidden InvalidCredentials InvalidToken NotSupported ProviderUnavailable "
    "SessionStoreUnavailable TokenExpired TokenNotFound UnknownProvider UserExists UserNotFound UserChangeRefused "
    "BadRequest NotAuthenticated PayloadTooLarge Throttled UnknownPlugin UnsupportedMediaType",
    "providers": "AnonymousCredentials AuthorizationCodeCredentials Credentials Health PasswordCredentials Provider "
    "ProviderConfig TokenCredentials",
    "capabilities": "AuthorizationRequest BearerIdentity BearerTokens Invitations NewUser PasswordSelfService "
    "Registration SecondFactor SecondFactorRequired SecondFactorStatus SelfUpdate SingleSignOn TotpEnrolment "
    "UpstreamSessions UserManagement UserUpdate",
    "models": "Identity LoginResult VerifiedToken",
    "manager": "AuthManager",
    "hookspecs": "hookimpl",
    "permissions": "require",
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names.split()}

__all__ = [
    "AnonymousCredentials",
    "AuthError",
    "AuthManager",
    "AuthorizationCodeCredentials",
    "AuthorizationRequest",
    "BadRequest",
    "BearerIdentity",
    "BearerTokens",
    "ConfigError",
    "Credentials",
    "Forbidden",
    "Health",
    "Identity",
    "InvalidCredentials",
    "InvalidToken",
    "Invitations",
    "LoginResult",
    "NewUser",
    "NotAuthenticated",
    "NotSupported",
    "PasswordCredentials",
    "PasswordSelfService",
    "PayloadTooLarge",
    "Provider",
    "ProviderConfig",
    "ProviderUnavailable",
    "Registration",
    "SecondFactor",
    "SecondFactorRequired",
    "SecondFactorStatus",
    "SelfUpdate",
    "SessionStoreUnavailable",
    "SingleSignOn",
    "Throttled",
    "TokenCredentials",
    "TokenExpired",
    "TokenNotFound",
    "TotpEnrolment",
    "UnknownPlugin",
    "UnknownProvider",
    "UnsupportedMediaType",
    "UpstreamSessions",
    "UserChangeRefused",
    "UserExists",
    "UserManagement",
    "UserNotFound",
    "UserUpdate",
    "VerifiedToken",
    "hookimpl",
    "require",
    "__version__",
]

if TYPE_CHECKING:  # the static view of the same names, for type checkers and IDEs
    from .capabilities import (
        AuthorizationRequest,
        BearerIdentity,
        BearerTokens,
        Invitations,
        NewUser,
        PasswordSelfService,
        Registration,
        SecondFactor,
        SecondFactorRequired,
        SecondFactorStatus,
        SelfUpdate,
        SingleSignOn,
        TotpEnrolment,
        UpstreamSessions,
        UserManagement,
        UserUpdate,
    )
    from .errors import (
        AuthError,
        BadRequest,
        ConfigError,
        Forbidden,
        InvalidCredentials,
        InvalidToken,
        NotAuthenticated,
        NotSupported,
        PayloadTooLarge,
        ProviderUnavailable,
        SessionStoreUnavailable,
        Throttled,
        TokenExpired,
        TokenNotFound,
        UnknownPlugin,
        UnknownProvider,
        UnsupportedMediaType,
        UserChangeRefused,
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
        Credentials,
        Health,
        PasswordCredentials,
        Provider,
        ProviderConfig,
        TokenCredentials,
    )
else:  # hidden from type checkers, which would otherwise accept any name as an attribute

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'authcore' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
