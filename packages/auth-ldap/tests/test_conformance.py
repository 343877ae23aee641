"""The core's provider conformance suite, in search-then-bind and in direct-bind mode."""

from __future__ import annotations

from typing import Any

import pytest

from auth_ldap.testing import SlapdServer
from authcore.testing import Login, ProviderConformance


def _valid() -> list[Login]:
    return [
        Login(
            login="alice",
            password="alice-pw",
            expect_groups=("admins", "staff", "developers"),
            expect_permissions=("all_proposals", "own_proposals", "code"),
            expect={"email": "alice@example.org", "given_name": "Alice", "family_name": "Smith"},
        ),
        Login(login="bob", password="bob-pw", expect_groups=("developers", "ops", "auditors")),
        Login(login="#hash", password="hash-pw", expect_groups=("ops",)),
        Login(login="plus+one", password="plus-pw", expect={"display_name": "Plus One"}),
        Login(login="zoë", password="zoë-pw", expect={"given_name": "Zoë"}),
        Login(login="ALICE", password="alice-pw", expect_login="alice"),
    ]


def _invalid() -> list[Login]:
    return [
        Login(login="alice", password="wrong-Password-1"),
        Login(login="alice", password="bob-pw"),
        Login(login="nobody", password="wrong-Password-1"),
        Login(login="nopw", password="wrong-Password-1"),  # entry without userPassword
        Login(login="b*", password="bob-pw"),
        Login(login="jose", password="passwörd-ü"),
    ]


class TestLdapConformance(ProviderConformance):
    """Search then bind with the reader account."""

    provider_name = "ldap"

    @pytest.fixture
    def conformance_config(self, slapd: SlapdServer, configs: Any) -> dict[str, Any]:
        search_config, manager_config = configs
        return manager_config(search_config(slapd))

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return [
            *_valid(),
            Login(login="john.doe", password="john-pw", expect_groups=("staff", "Sales, EMEA (intl)")),
            Login(login="jose", password="pässwörd-ü", expect={"display_name": "José Müller"}),
        ]

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return _invalid()

    @pytest.fixture
    def secret_values(self, slapd: SlapdServer) -> list[str]:
        return [slapd.reader_password, slapd.writer_password, slapd.admin_password]


class TestLdapDirectBindConformance(ProviderConformance):
    """Direct bind from a DN template (py-ispyb's keys: no service account at all)."""

    provider_name = "ispyb"

    @pytest.fixture
    def conformance_config(self, slapd: SlapdServer) -> dict[str, Any]:
        return {
            "providers": [
                {
                    "name": "ispyb",
                    "type": "ldap",
                    "config": {
                        "LDAP_URI": slapd.uri,
                        "LDAP_BASE_INTERNAL": slapd.people_dn,
                        "LDAP_BASE_GROUPS": slapd.groups_dn,
                    },
                }
            ],
            "permissions": {
                "groups": {"admins": ["all_proposals"], "staff": ["own_proposals"], "developers": ["code"]}
            },
        }

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return _valid()

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return _invalid()

    @pytest.fixture
    def secret_values(self, slapd: SlapdServer) -> list[str]:
        return [slapd.reader_password, slapd.admin_password]
