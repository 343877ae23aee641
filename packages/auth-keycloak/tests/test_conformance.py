"""The core's provider conformance suite against the Keycloak test server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth_keycloak.testing import CLIENT_SECRET, USERS
from authcore.testing import Login, ProviderConformance


class TestKeycloakConformance(ProviderConformance):
    provider_name = "sso"
    logins_per_thread = 10

    @pytest.fixture
    def conformance_config(self, sso_config: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        return sso_config()

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            Login(
                login="alice",
                password=USERS["alice"][0],
                expect_permissions=("own_proposals", "beamline:operate", "staff_area"),
                expect_groups=("staff",),
                expect={"email": "alice@example.org", "given_name": "Alice", "family_name": "Example"},
            ),
            Login(login="bob", password=USERS["bob"][0], expect_permissions=("all_proposals", "mx_area")),
            Login(login="carol", password=USERS["carol"][0], expect_permissions=("own_proposals",)),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return [
            Login(login="alice", password="wrong-Password-1"),
            Login(login="nobody", password="Whatever-1"),
            Login(login="dave", password="Dave-pw-4"),  # disabled: Keycloak says 400 "Account disabled"
        ]

    @pytest.fixture
    def secret_values(self) -> list[str]:
        return [CLIENT_SECRET]
