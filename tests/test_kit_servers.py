"""Every server the test kits start reads the same way: ``running`` and ``pid`` are properties.

A kit where ``running`` was a method on some servers and a property on others let
``if server.running:`` pass on a method object, true whatever the process did. ``pid`` is the
process id while the server runs and None otherwise, on every server, so a test that killed one
sees it gone. The shape is checked on every class; the behaviour on servers that start in a
fraction of a second (their own suites cover the rest).
"""

from __future__ import annotations

import inspect
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from auth_ldap.testing import SlapdServer
from auth_local.testing import PostgresServer
from auth_oidc.testing import OidcProviderServer
from authcore.testing.haproxy import HAProxy
from authcore.testing.ports import free_port
from authcore.testing.redis_server import RedisServer, SentinelServer
from authcore.testing.service_process import ServiceProcess

SERVERS = [ServiceProcess, HAProxy, RedisServer, SentinelServer, PostgresServer, SlapdServer, OidcProviderServer]


@pytest.mark.parametrize("server_class", SERVERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", ["running", "pid"])
def test_running_and_pid_are_properties(server_class: type, name: str) -> None:
    assert isinstance(inspect.getattr_static(server_class, name), property)


def _gone(server: Any) -> bool:
    deadline = time.monotonic() + 10
    while server.running and time.monotonic() < deadline:
        time.sleep(0.01)
    return not server.running


def test_a_killed_redis_is_not_running_and_has_no_pid(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, free_port(), appendonly=False)
    assert not server.running and server.pid is None
    server.start()
    try:
        pid = server.pid
        assert server.running and pid is not None and Path(f"/proc/{pid}").exists()
        os.kill(pid, signal.SIGKILL)
        assert _gone(server) and server.pid is None
    finally:
        server.stop()


def test_a_killed_slapd_is_not_running_and_has_no_pid(tmp_path: Path) -> None:
    with SlapdServer(tmp_path, tls=False, load_default_data=False) as server:
        pid = server.pid
        assert server.running and pid is not None and Path(f"/proc/{pid}").exists()
        os.kill(pid, signal.SIGKILL)
        assert _gone(server) and server.pid is None
    assert not server.running
