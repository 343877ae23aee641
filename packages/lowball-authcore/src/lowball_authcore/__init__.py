"""lowball-authcore: authcore and lowball, each as the other's auth provider.

* :class:`AuthcoreAuthProvider`: pass it to ``Lowball(config=..., auth_provider=...)`` and a
  lowball service logs in through any authcore provider (LDAP, Keycloak, OIDC…), with the
  identity's authcore permissions as its lowball roles.
* :class:`LowballProvider`: authcore provider type ``lowball``; an existing lowball
  ``AuthProvider`` subclass, named by ``"module:Class"`` in authcore's YAML, serves authcore logins.

Importing this package does not import lowball (authcore loads it to register the
``lowball`` type); lowball is imported when :class:`AuthcoreAuthProvider` is first used or
a ``lowball`` provider starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from authcore import Provider, hookimpl

from .provider import LowballConfig, LowballProvider

__all__ = [
    "LowballProvider",
    "LowballConfig",
    "AuthcoreAuthProvider",
    "AuthcoreAuthPackage",
    "AuthcoreClientData",
]
__version__ = "0.1.0"

#: The names that need lowball, imported from :mod:`lowball_authcore.authprovider` on first use (PEP 562).
_LOWBALL_SIDE = frozenset({"AuthcoreAuthProvider", "AuthcoreAuthPackage", "AuthcoreClientData"})

if TYPE_CHECKING:
    from .authprovider import AuthcoreAuthPackage, AuthcoreAuthProvider, AuthcoreClientData
else:

    def __getattr__(name: str) -> Any:
        if name not in _LOWBALL_SIDE:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.authprovider"), name)
        globals()[name] = value
        return value


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`LowballProvider` as type ``lowball``."""
    register(LowballProvider)
