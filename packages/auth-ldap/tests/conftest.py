"""Fixtures: real slapd servers (see :mod:`auth_ldap.testing`).

A missing slapd FAILS the tests (CI installs it): ``apt-get install slapd ldap-utils``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth_ldap.testing import SlapdServer

pytest_plugins = ["auth_ldap.pytest_plugin"]  # slapd and private_slapd


def search_config(server: SlapdServer, **overrides: Any) -> dict[str, Any]:
    """Search-then-bind configuration against *server* with the reader account."""
    return server.provider_config(**{"timeout": 2, "connect_timeout": 2, **overrides})


def manager_config(provider: dict[str, Any], name: str = "ldap", **top: Any) -> dict[str, Any]:
    """A whole authcore configuration with one ldap provider called *name*."""
    return {
        "providers": [{"name": name, "type": "ldap", "config": provider}],
        "permissions": {"groups": {"admins": ["all_proposals"], "staff": ["own_proposals"], "developers": ["code"]}},
        **top,
    }


@pytest.fixture(scope="session")
def configs() -> tuple[Callable[..., dict[str, Any]], Callable[..., dict[str, Any]]]:
    """``(search_config, manager_config)`` helpers (conftest modules are not importable under importlib mode)."""
    return search_config, manager_config
