"""The pytest plugin behind the ``pytest11`` entry point: fixtures for authcore users.

Kept import-light: pytest imports this module in every run where authcore is installed,
so it imports pytest and nothing else; authcore itself is imported when a fixture is used.
``packages/authcore/tests/test_plugin_import.py`` checks that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from authcore import AuthManager
    from authcore.testing.redis_server import RedisServer


@pytest.fixture
def authcore_state_dir(tmp_path: Path) -> Path:
    """A private state directory (development secret, session database) for one test."""
    path = tmp_path / "authcore-state"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def authcore_manager_factory() -> Iterator[Callable[..., AuthManager]]:
    """Build :class:`~authcore.AuthManager` objects from config dicts; all are closed after the test."""
    from authcore import AuthManager  # here, not at the top: pytest imports this module in every run

    made: list[AuthManager] = []

    def factory(config: Mapping[str, Any], **kwargs: Any) -> AuthManager:
        manager = AuthManager.from_config(config, **kwargs)
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        manager.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Debian's ``redis-server`` on a free loopback port, AOF in ``tmp_path``; stopped by pid afterwards."""
    from authcore.testing.redis_server import start_redis  # here: pytest imports this module in every run

    server = start_redis(tmp_path / "redis")
    yield server
    server.stop()
