"""Fixtures: the Keycloak test server with the standard realm, and managers configured against it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth_keycloak.testing import CLIENT_ID, CLIENT_SECRET, KeycloakTestServer, Realm
from auth_keycloak.testing.pytest_plugin import keycloak_realm, keycloak_server
from authcore import AuthManager

__all__ = ["keycloak_realm", "keycloak_server"]

PERMISSIONS = {
    "user": ["own_proposals"],
    "Admin": ["all_proposals"],
    "operator": ["beamline:operate"],
    "staff": ["staff_area"],
    "mx": ["mx_area"],
}


def manager_config(server: KeycloakTestServer, realm_: Realm, /, **overrides: Any) -> dict[str, Any]:
    """An authcore configuration with one keycloak provider called ``sso``."""
    config: dict[str, Any] = {
        "server_url": server.url,
        "realm": realm_.name,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "timeout": 2,
    }
    config.update(overrides)
    return {
        "providers": [{"name": "sso", "type": "keycloak", "config": config}],
        "permissions": {"groups": PERMISSIONS},
    }


@pytest.fixture
def sso_config(keycloak_server: KeycloakTestServer, keycloak_realm: Realm) -> Callable[..., dict[str, Any]]:
    """``sso_config(**overrides)``: the configuration dict :func:`manager_config` builds."""

    def build(**overrides: Any) -> dict[str, Any]:
        return manager_config(keycloak_server, keycloak_realm, **overrides)

    return build


@pytest.fixture
def make_manager(
    keycloak_server: KeycloakTestServer,
    keycloak_realm: Realm,
    authcore_manager_factory: Callable[..., AuthManager],
) -> Callable[..., AuthManager]:
    """``make_manager(**provider_config_overrides)``: a manager against the test server."""

    def make(**overrides: Any) -> AuthManager:
        return authcore_manager_factory(manager_config(keycloak_server, keycloak_realm, **overrides))

    return make


@pytest.fixture
def manager(make_manager: Callable[..., AuthManager]) -> AuthManager:
    """A manager with the default provider settings."""
    return make_manager()
