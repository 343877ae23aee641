"""Fixtures for the web tests: managers with real providers, servers on free loopback ports."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The support module (test providers, server helpers) is imported by name, also by providers' `class:` paths.
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import authcore_webtest_support as support  # noqa: E402

from authcore import AuthManager  # noqa: E402

REPO = HERE.parents[3]
ARTIFACTS = REPO / "test-artifacts"

SECRET = "web-tests-secret-" + "x" * 40


def manager_config(**extra: Any) -> dict[str, Any]:
    """Dummy + in-memory users (alice/wonderland, admin/adminpw with role admin)."""
    config: dict[str, Any] = {
        "tokens": {"secret": SECRET},
        "providers": [
            {"name": "dummy", "type": "dummy"},
            {
                "name": "local",
                "class": support.MEMUSERS,
                "config": {
                    "users": {"alice": "wonderland", "admin": "adminpw", "eve": "evepw"},
                    "roles": {"admin": ["admin"], "alice": ["staff"]},
                },
            },
        ],
        "permissions": {"groups": {"admin": ["users:admin", "read"], "staff": ["read", "contents:read"]}},
    }
    config.update(extra)
    return config


@pytest.fixture
def make_manager() -> Iterator[Callable[..., AuthManager]]:
    made: list[AuthManager] = []

    def factory(config: dict[str, Any] | None = None, **extra: Any) -> AuthManager:
        manager = AuthManager.from_config(config if config is not None else manager_config(**extra))
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
