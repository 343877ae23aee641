"""Fixtures for authcore's own tests: synthetic installed distributions on sys.path, and the
URL of each kind of session store."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from authcore import plugins
from authcore.testing.on_loop import LoopThread
from authcore.testing.redis_server import RedisServer, start_redis


@pytest.fixture
def fake_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """Install a distribution by writing its .dist-info (and module) into a directory on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    plugins.refresh()
    added_modules: list[str] = []

    def make(
        name: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str] | None = None, version: str = "1.0"
    ) -> Path:
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        lines = []
        for group, eps in entry_points.items():
            lines.append(f"[{group}]")
            lines += [f"{k} = {v}" for k, v in eps.items()]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
        for module, source in (modules or {}).items():
            (site / f"{module}.py").write_text(source)
            added_modules.append(module)
        plugins.refresh()
        return info

    yield make
    for module in added_modules:
        sys.modules.pop(module, None)
    plugins.refresh()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """``sessions.store`` of each kind: memory, an SQLite file, a real redis-server."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'sessions.db'}"
    url: str = request.getfixturevalue("redis_server").url
    return url


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for a test module (tests keep apart by key prefix)."""
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop in a thread of its own, for code run bridged onto it."""
    loop = LoopThread()
    yield loop
    loop.stop()


@pytest.fixture
def redis_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many commands each write to Redis from an event loop carries, from now on (one
    entry per write; the loop's connection writes the commands of one loop iteration together)."""
    from authcore.sessions.redis_loop import _Connection

    writes: list[int] = []
    flush = _Connection._flush

    def counted(connection: _Connection) -> None:
        writes.append(len(connection._unsent))
        flush(connection)

    monkeypatch.setattr(_Connection, "_flush", counted)  # observed, not replaced
    return writes
