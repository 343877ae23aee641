"""A Keycloak-compatible HTTP server for tests, importable by host applications and third parties.

    from auth_keycloak.testing import KeycloakTestServer, standard_realm

    with KeycloakTestServer() as server:
        realm = standard_realm(server)
        config = {"server_url": server.url, "realm": realm.name, "client_id": "authcore", ...}

With pytest: ``pytest_plugins = ["auth_keycloak.testing.pytest_plugin"]`` gives the
``keycloak_server`` and ``keycloak_realm`` fixtures. Only the standard library and
cryptography are used (python-keycloak is not imported).
"""

from __future__ import annotations

from .realm import Client, Group, Realm, Role, Session, SigningKey, User, sign_jwt
from .server import KeycloakTestServer

__all__ = [
    "KeycloakTestServer",
    "Realm",
    "Client",
    "User",
    "Role",
    "Group",
    "Session",
    "SigningKey",
    "sign_jwt",
    "standard_realm",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "OTHER_CLIENT_ID",
    "OTHER_CLIENT_SECRET",
    "PUBLIC_CLIENT_ID",
    "USERS",
]

#: The confidential client of :func:`standard_realm` (with a service account for user management).
CLIENT_ID = "authcore"
CLIENT_SECRET = "kc-test-client-secret-7b1f0c2e9a"
#: A second confidential client of the same realm ("another client" tests).
OTHER_CLIENT_ID = "other-app"
OTHER_CLIENT_SECRET = "kc-other-client-secret-41d9e3"
#: A public client (a browser front-end).
PUBLIC_CLIENT_ID = "frontend"

#: Users of :func:`standard_realm`: login → (password, realm roles, client roles of CLIENT_ID, groups).
USERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "alice": ("Alice-pw-1", ("user",), ("operator",), ("staff",)),
    "bob": ("Bob-pw-2", ("Admin", "user"), (), ("staff/mx",)),
    "carol": ("Carol-pw-3", ("user",), (), ()),
}


def standard_realm(server: KeycloakTestServer, name: str = "test") -> Realm:
    """A realm with the clients and users above (``carol`` has no e-mail; ``dave`` is disabled)."""
    realm = server.add_realm(name)
    realm.add_client(
        CLIENT_ID,
        CLIENT_SECRET,
        redirect_uris=["http://localhost/*", "http://127.0.0.1/*"],
        service_account_roles={"realm-management": ["manage-users", "view-users"]},
    )
    realm.add_client(OTHER_CLIENT_ID, OTHER_CLIENT_SECRET)
    realm.add_client(PUBLIC_CLIENT_ID, redirect_uris=["http://localhost/*"])
    for login, (password, roles, client_roles, groups) in USERS.items():
        realm.add_user(
            login,
            password,
            email=f"{login}@example.org" if login != "carol" else None,
            first_name=login.capitalize(),
            last_name="Example",
            realm_roles=list(roles),
            client_roles={CLIENT_ID: list(client_roles)} if client_roles else None,
            groups=list(groups),
        )
    realm.add_user("dave", "Dave-pw-4", enabled=False)
    return realm
