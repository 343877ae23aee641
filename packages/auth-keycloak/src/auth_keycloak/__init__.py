"""auth-keycloak: Keycloak (OpenID Connect) for authcore, built on python-keycloak.

Password logins, offline checks of Keycloak's bearer tokens against the realm's JWKS,
Keycloak's refresh and logout carried through authcore's sessions, single sign-on
(the shared pieces of :mod:`authcore.jose`) and user management. Importing this
package does not import python-keycloak; starting a provider does.
``auth_keycloak.testing`` is a Keycloak-compatible HTTP server for tests.
"""

from __future__ import annotations

from collections.abc import Callable

from authcore import Provider, hookimpl

from .config import KeycloakConfig
from .errors import KeycloakRefused, UnknownRole
from .provider import KeycloakProvider

__all__ = ["KeycloakProvider", "KeycloakConfig", "UnknownRole", "KeycloakRefused"]
__version__ = "0.1.0"


@hookimpl
def authcore_register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register :class:`KeycloakProvider` as type ``keycloak``."""
    register(KeycloakProvider)
