"""pytest fixtures for the Keycloak test server: ``pytest_plugins = ["auth_keycloak.testing.pytest_plugin"]``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import KeycloakTestServer, Realm, standard_realm


@pytest.fixture
def keycloak_server() -> Iterator[KeycloakTestServer]:
    """A running server on a free loopback port, stopped after the test."""
    server = KeycloakTestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def keycloak_realm(keycloak_server: KeycloakTestServer) -> Realm:
    """The server's ``test`` realm from :func:`~auth_keycloak.testing.standard_realm`."""
    return standard_realm(keycloak_server)
