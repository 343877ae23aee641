"""pytest fixtures for the oidc-provider test server: ``pytest_plugins = ["auth_oidc.testing.pytest_plugin"]``.

Override ``oidc_redirect_uris`` / ``oidc_post_logout_redirect_uris`` in a conftest to register
the URIs of the application under test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from . import POST_LOGOUT_REDIRECT_URIS, REDIRECT_URIS, OidcProviderServer, standard_client, standard_users

__all__ = [
    "oidc_redirect_uris",
    "oidc_post_logout_redirect_uris",
    "oidc_server_factory",
    "oidc_server",
    "oidc_server_opaque",
]

ServerFactory = Callable[..., OidcProviderServer]


@pytest.fixture
def oidc_redirect_uris() -> list[str]:
    """The ``redirect_uris`` of the fixtures' client."""
    return list(REDIRECT_URIS)


@pytest.fixture
def oidc_post_logout_redirect_uris() -> list[str]:
    """The ``post_logout_redirect_uris`` of the fixtures' client."""
    return list(POST_LOGOUT_REDIRECT_URIS)


@pytest.fixture
def oidc_server_factory(
    oidc_redirect_uris: list[str], oidc_post_logout_redirect_uris: list[str]
) -> Iterator[ServerFactory]:
    """``oidc_server_factory(**settings)``: start a server (the standard client and users unless
    given); every server it started is stopped after the test."""
    servers: list[OidcProviderServer] = []

    def start(**settings: Any) -> OidcProviderServer:
        settings.setdefault("clients", [standard_client(oidc_redirect_uris, oidc_post_logout_redirect_uris)])
        settings.setdefault("users", standard_users())
        server = OidcProviderServer(**settings)
        servers.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def oidc_server(oidc_server_factory: ServerFactory) -> OidcProviderServer:
    """A running server with JWT access tokens (typ ``at+jwt``), client ``authcore-test``, users alice and bob."""
    return oidc_server_factory(access_token_format="jwt")


@pytest.fixture
def oidc_server_opaque(oidc_server_factory: ServerFactory) -> OidcProviderServer:
    """The same with oidc-provider's default opaque access tokens (checked by introspection)."""
    return oidc_server_factory(access_token_format="opaque")
