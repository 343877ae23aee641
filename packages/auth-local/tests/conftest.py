"""Fixtures: each test's own database, on SQLite (a file, WAL) and on a real PostgreSQL.

A missing PostgreSQL FAILS the tests (CI installs Debian's ``postgresql``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from authcore import AuthManager

pytest_plugins = ["auth_local.pytest_plugin"]  # postgres and postgres_url

#: argon2 parameters that keep the suite quick (the defaults cost ~50 ms a login).
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}
GROUPS = {"admins": ["all_proposals", "users:admin"], "staff": ["own_proposals"], "developers": ["code"]}


def manager_config(database_url: str, name: str = "users", **provider: Any) -> dict[str, Any]:
    """A whole authcore configuration with one local provider called *name*."""
    return {
        "tokens": {"secret": "a-test-secret-that-is-long-enough-0123456789"},
        "providers": [
            {"name": name, "type": "local", "config": {"database_url": database_url, **FAST_ARGON2, **provider}}
        ],
        "permissions": {"groups": GROUPS},
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of the test's own: an SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'users.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def make_manager(database_url: str) -> Iterator[Callable[..., AuthManager]]:
    """``make_manager(**provider_config)``: managers on this test's database, closed afterwards."""
    made: list[AuthManager] = []

    def make(**provider: Any) -> AuthManager:
        manager = AuthManager.from_config(manager_config(database_url, **provider))
        made.append(manager)
        return manager

    yield make
    for manager in made:
        manager.close()


@pytest.fixture
def manager(make_manager: Callable[..., AuthManager]) -> AuthManager:
    """A manager with the default local provider (``users``) on this test's database."""
    return make_manager()


@pytest.fixture(scope="session")
def configs() -> Callable[..., dict[str, Any]]:
    """``manager_config`` (conftest modules are not importable under importlib mode)."""
    return manager_config
