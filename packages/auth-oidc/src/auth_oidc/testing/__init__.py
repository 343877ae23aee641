"""A real OpenID Connect server for tests: panva's ``oidc-provider`` (npm), started by Python.

    from auth_oidc.testing import OidcProviderServer, standard_client, standard_users

    with OidcProviderServer(clients=[standard_client()], users=standard_users(),
                            access_token_format="jwt") as server:
        config = {"issuer": server.issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

With pytest: ``pytest_plugins = ["auth_oidc.testing.pytest_plugin"]`` gives the
``oidc_server`` (JWT access tokens), ``oidc_server_opaque`` and ``oidc_server_factory``
fixtures. Needs ``node`` and ``npm`` (Debian package ``nodejs``); oidc-provider is
installed once per lock file into ``~/.cache/authcore/oidc-provider/`` (or
``$AUTHCORE_NODE_CACHE``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from .keys import SUPPORTED_ALGS, generate_jwks, public_jwks, sign_jwt
from .node_env import NodeMissing, ensure_installed
from .server import DEFAULT_RESOURCE, OidcProviderServer, ServerSettings

__all__ = [
    "OidcProviderServer",
    "ServerSettings",
    "NodeMissing",
    "generate_jwks",
    "public_jwks",
    "sign_jwt",
    "ensure_installed",
    "standard_client",
    "standard_users",
    "user_entry",
    "SUPPORTED_ALGS",
    "DEFAULT_RESOURCE",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "USERS",
    "REDIRECT_URIS",
    "POST_LOGOUT_REDIRECT_URIS",
]

#: The confidential client of the fixtures.
CLIENT_ID = "authcore-test"
CLIENT_SECRET = "test-only-secret"
REDIRECT_URIS = ("http://127.0.0.1/callback",)
POST_LOGOUT_REDIRECT_URIS = ("http://127.0.0.1/logged-out",)
#: The fixtures' users: login → (password, groups).
USERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "alice": ("alice-password", ("staff", "mx")),
    "bob": ("bob-password", ("users",)),
}


def user_entry(login: str, password: str, groups: Sequence[str] = (), **claims: Any) -> dict[str, Any]:
    """One ``users`` entry: a stable opaque ``sub`` and the usual profile claims, overridable by *claims*."""
    given = login.capitalize()
    base: dict[str, Any] = {
        # Issuers hand out opaque subjects, not logins: code that confuses the two fails here.
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:authcore:test-user:{login}")),
        "preferred_username": login,
        "email": f"{login}@example.org",
        "email_verified": True,
        "name": f"{given} Example",
        "given_name": given,
        "family_name": "Example",
        "groups": list(groups),
    }
    base.update(claims)
    return {"password": password, "claims": base}


def standard_users() -> dict[str, dict[str, Any]]:
    """alice (groups staff, mx) and bob (group users), from :data:`USERS`."""
    return {login: user_entry(login, password, groups) for login, (password, groups) in USERS.items()}


def standard_client(
    redirect_uris: Sequence[str] = REDIRECT_URIS,
    post_logout_redirect_uris: Sequence[str] = POST_LOGOUT_REDIRECT_URIS,
    **metadata: Any,
) -> dict[str, Any]:
    """The confidential client :data:`CLIENT_ID` (code, refresh, client credentials, and
    ``password``, which the server drops unless started with ``password_grant=True``)."""
    client: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout_redirect_uris),
        "grant_types": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    client.update(metadata)
    return client
