"""The core's provider conformance suite: against oidc-provider (password grant on) and the Keycloak test server."""

from __future__ import annotations

from typing import Any

import pytest

from auth_keycloak.testing import CLIENT_ID as KC_CLIENT_ID
from auth_keycloak.testing import CLIENT_SECRET as KC_CLIENT_SECRET
from auth_keycloak.testing import USERS as KC_USERS
from auth_keycloak.testing import KeycloakTestServer, Realm
from auth_oidc.testing import CLIENT_SECRET, USERS, OidcProviderServer
from authcore.testing import Login, ProviderConformance


class TestOidcProviderConformance(ProviderConformance):
    """panva's oidc-provider, password grant enabled, JWT access tokens."""

    provider_name = "sso"
    logins_per_thread = 5

    @pytest.fixture
    def password_server(self, oidc_server_factory: Any) -> OidcProviderServer:
        server: OidcProviderServer = oidc_server_factory(access_token_format="jwt", password_grant=True)
        return server

    @pytest.fixture
    def conformance_config(self, password_server: OidcProviderServer, kit: Any) -> dict[str, Any]:
        return kit.manager_config(password_server.issuer, password_grant=True)

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(
                login="alice",
                password=USERS["alice"][0],
                expect_permissions=("staff_area", "mx_area"),
                expect_groups=("staff", "mx"),
                expect={"email": "alice@example.org", "given_name": "Alice", "family_name": "Example"},
            ),
            Login(
                login="bob", password=USERS["bob"][0], expect_permissions=("own_proposals",), expect_groups=("users",)
            ),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return [
            Login(login="alice", password="wrong-Password-1"),
            Login(login="nobody", password="Whatever-1"),
            Login(login="bob", password=USERS["alice"][0]),
        ]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [CLIENT_SECRET]


class TestKeycloakPresetConformance(ProviderConformance):
    """The Keycloak-compatible test server through the ``keycloak`` preset."""

    provider_name = "sso"
    logins_per_thread = 5

    @pytest.fixture
    def conformance_config(
        self, keycloak_server: KeycloakTestServer, keycloak_realm: Realm, kit: Any
    ) -> dict[str, Any]:
        config = kit.manager_config(
            keycloak_server.issuer(keycloak_realm.name) + "/",  # MXCuBE writes the issuer with a trailing slash
            client_id=KC_CLIENT_ID,
            client_secret=KC_CLIENT_SECRET,
            scope="openid profile email",
            preset="keycloak",
            password_grant=True,
        )
        config["permissions"]["groups"].update({"user": ["own_proposals"], "Admin": ["all_proposals"]})
        return config

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(
                login="alice",
                password=KC_USERS["alice"][0],
                expect_permissions=("own_proposals", "staff_area"),
                expect_groups=("staff",),
                expect={"email": "alice@example.org", "roles": ("user", "operator")},
            ),
            Login(login="bob", password=KC_USERS["bob"][0], expect_permissions=("all_proposals", "mx_area")),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return [
            Login(login="alice", password="wrong-Password-1"),
            Login(login="nobody", password="Whatever-1"),
            Login(login="dave", password="Dave-pw-4"),  # disabled
        ]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [KC_CLIENT_SECRET]
