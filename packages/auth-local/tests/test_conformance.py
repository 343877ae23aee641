"""The core's provider conformance suite, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from auth_local.testing import PostgresServer
from authcore import AuthManager, NewUser
from authcore.testing import Login, ProviderConformance

USERS = [
    NewUser(
        login="alice",
        password="Wonderland-1865!",
        given_name="Alice",
        family_name="Smith",
        email="alice@example.org",
        roles=("admins", "staff", "developers"),
    ),
    NewUser(login="bob", password="builder-Can-We-Fix-It", roles=("developers",)),
    NewUser(login="plus+one", password="addition-Sum-333", display_name="Plus One"),
    NewUser(login="zoë", password="Pässwörd-für-Zürich", given_name="Zoë"),
    NewUser(login="日本語", password="とても長いパスワードです-5", roles=("staff",)),
    NewUser(login="nopw"),  # no password: cannot log in
    NewUser(login="off", password="switched-Off-Since-1999", enabled=False),
]


def _valid() -> list[Login]:
    return [
        Login(
            login="alice",
            password="Wonderland-1865!",
            expect_groups=("admins", "staff", "developers"),
            expect_permissions=("all_proposals", "own_proposals", "code"),
            expect={"email": "alice@example.org", "given_name": "Alice", "family_name": "Smith"},
        ),
        Login(
            login="bob", password="builder-Can-We-Fix-It", expect_groups=("developers",), expect_permissions=("code",)
        ),
        Login(login="plus+one", password="addition-Sum-333", expect={"display_name": "Plus One"}),
        Login(login="zoë", password="Pässwörd-für-Zürich", expect={"given_name": "Zoë"}),
        Login(login="ZOË", password="Pässwörd-für-Zürich", expect_login="zoë"),
        Login(login="日本語", password="とても長いパスワードです-5", expect_groups=("staff",)),
        Login(login="ＡＬＩＣＥ", password="Wonderland-1865!", expect_login="alice"),  # full-width: NFKC
    ]


def _invalid() -> list[Login]:
    return [
        Login(login="alice", password="wrong-Password-1"),
        Login(login="alice", password="builder-Can-We-Fix-It"),
        Login(login="nobody", password="wrong-Password-1"),
        Login(login="nopw", password="wrong-Password-1"),
        Login(login="off", password="switched-Off-Since-1999"),  # right password, disabled user
        Login(login="аlice", password="Wonderland-1865!"),  # Cyrillic а: another login
    ]


class _LocalConformance(ProviderConformance):
    provider_name = "users"

    @pytest.fixture
    def conformance_manager(self, conformance_config: Mapping[str, Any]) -> Iterator[AuthManager]:
        manager = AuthManager.from_config(conformance_config)
        users = manager.users(self.provider_name)
        for user in USERS:
            users.create_user(user)
        try:
            yield manager
        finally:
            manager.close()

    @pytest.fixture
    def valid_logins(self) -> list[Login]:
        return _valid()

    @pytest.fixture
    def invalid_logins(self) -> list[Login]:
        return _invalid()


class TestSqliteConformance(_LocalConformance):
    """An SQLite file (WAL)."""

    @pytest.fixture
    def conformance_config(self, tmp_path: Path, configs: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        return configs(f"sqlite:///{tmp_path / 'users.db'}")


class TestSqliteMemoryConformance(_LocalConformance):
    """An SQLite database in memory (one connection shared by every thread)."""

    @pytest.fixture
    def conformance_config(self, configs: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        return configs("sqlite:///:memory:")


class TestPostgresConformance(_LocalConformance):
    """A real PostgreSQL; its URL holds the server's password, which must never show."""

    @pytest.fixture
    def conformance_config(self, postgres_url: str, configs: Callable[..., dict[str, Any]]) -> dict[str, Any]:
        return configs(postgres_url)

    @pytest.fixture
    def secret_values(self, postgres: PostgresServer, postgres_url: str) -> list[str]:
        return [postgres.password, postgres_url]
