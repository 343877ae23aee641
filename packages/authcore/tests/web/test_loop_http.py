"""Over real HTTP (FastAPI under uvicorn): where a login and a refresh run, and that they stay right there.

On the Redis store with providers that declare ``blocking = False``, the FastAPI adapter runs
``POST /auth/login`` and ``POST /auth/refresh`` on its event loop, the store's calls awaited
there (authcore.loop_bridge); a blocking provider still sends them to a worker thread; the
memory store runs them in-line. A plugin records the thread every login and refresh ran in.
Then many clients at once, on the loop path: every answer is its own client's (the loop's one
Redis connection carries all their calls), every reuse of a rotated refresh token is refused,
and with Redis stopped the answers are 503 until it is back, with no restart of the service.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import SECRET
from fastapi import FastAPI

from authcore import AuthManager, hookimpl
from authcore.models import Identity
from authcore.testing.redis_server import RedisServer
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth


class ThreadRecorder:
    """A plugin noting the thread each identity's permissions are worked out in (login and refresh)."""

    def __init__(self) -> None:
        self.threads: list[str] = []

    @hookimpl
    def authcore_permissions(self, identity: Identity) -> None:
        self.threads.append(threading.current_thread().name)


def serve(store: str, provider: dict[str, Any]) -> tuple[AuthManager, ThreadRecorder, Any]:
    config = {"tokens": {"secret": SECRET}, "sessions": {"store": store}, "providers": [provider]}
    manager = AuthManager.from_config(config)
    recorder = ThreadRecorder()
    manager.plugins.register(recorder)
    app = FastAPI()
    FastAPIAuth(manager).install(app)
    return manager, recorder, run_asgi(app)


def login(base: str, plugin: str, name: str) -> dict[str, Any]:
    answer = httpx.post(f"{base}/auth/login", json={"plugin": plugin, "login": name, "password": "read"})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert body["login"] == name
    return body


def refresh(base: str, token: str) -> httpx.Response:
    return httpx.post(f"{base}/auth/refresh", json={"refresh_token": token})


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return f"{redis_server.url}?prefix=l{uuid.uuid4().hex[:10]}:"


@pytest.mark.parametrize(
    ("store", "provider", "login_runs", "refresh_runs"),
    [
        ("redis", {"name": "dummy", "type": "dummy"}, "loop", "loop"),
        ("redis", {"name": "slow", "class": support.SLOW}, "worker", "loop"),
        ("memory", {"name": "dummy", "type": "dummy"}, "loop", "loop"),
        ("memory", {"name": "slow", "class": support.SLOW}, "worker", "loop"),
    ],
)
def test_where_a_login_and_a_refresh_run(
    store: str, provider: dict[str, Any], login_runs: str, refresh_runs: str, redis_server: RedisServer
) -> None:
    """A provider that waits (an LDAP directory far away) has its logins run in a worker
    thread; a refresh never asks it (it keeps no session upstream), so refreshes stay on the
    event loop: in-line on memory, awaited there on Redis."""
    support.SlowProvider.delay = 0.01
    try:
        url = f"{redis_server.url}?prefix=w{uuid.uuid4().hex[:10]}:" if store == "redis" else "memory://"
        manager, recorder, server = serve(url, provider)
        with server as base:
            tokens = login(base, provider["name"], "ann")
            assert refresh(base, tokens["refresh_token"]).status_code == 200
        manager.close()
    finally:
        support.SlowProvider.delay = 0.6
    assert len(recorder.threads) == 2
    ran = ["worker" if name.startswith("AnyIO worker") else "loop" for name in recorder.threads]
    assert ran == [login_runs, refresh_runs], recorder.threads


def test_beside_a_provider_refreshing_upstream_other_sessions_refresh_on_the_loop(redis_url: str) -> None:
    """A directory (logins wait) beside a provider that refreshes a session upstream and waits
    (Keycloak): over HTTP on Redis, a directory session's refresh runs on the loop, the other's
    upstream step in a worker thread, never on the loop."""
    config = {
        "tokens": {"secret": SECRET},
        "sessions": {"store": redis_url},
        "providers": [{"name": "slow", "class": support.SLOW}, {"name": "remote", "class": support.SLOW_UPSTREAM}],
    }
    support.SlowProvider.delay = 0.01
    support.SlowUpstreamProvider.on_a_loop = []
    manager = AuthManager.from_config(config)
    recorder = ThreadRecorder()
    manager.plugins.register(recorder)
    app = FastAPI()
    FastAPIAuth(manager).install(app)
    try:
        with run_asgi(app) as base:
            directory, remote = login(base, "slow", "dora"), login(base, "remote", "rémi")
            del recorder.threads[:]
            for tokens in (directory, remote, directory):
                answer = refresh(base, tokens["refresh_token"])
                assert answer.status_code == 200, answer.text
                tokens.update(answer.json())
            assert refresh(base, "not-a-refresh-token").status_code == 401
    finally:
        manager.close()
        support.SlowProvider.delay = 0.6
    assert support.SlowUpstreamProvider.on_a_loop == [False]
    loop_thread = recorder.threads[0]
    assert recorder.threads[2] == loop_thread and recorder.threads[1] != loop_thread, recorder.threads
    assert not loop_thread.startswith("AnyIO worker")


@pytest.mark.parametrize(
    ("body", "waits"),
    [
        (b'{"refresh_token": "rt"}', "loop"),  # arefresh: the session's own provider decides
        (b"", "thread"),  # a cookie session's refresh runs handle(): where the slowest would
        (b"   ", "thread"),
        (b"{not json", "none"),  # refused without any I/O
        (b'{"refresh_token": 5}', "none"),
        (b"\xff\xfe", "none"),
    ],
)
def test_where_a_refresh_runs_beside_a_provider_refreshing_upstream(redis_url: str, body: bytes, waits: str) -> None:
    from authcore.web.http import WebRequest
    from authcore.web.routes import ROUTES

    config = {
        "tokens": {"secret": SECRET},
        "sessions": {"store": redis_url},
        "providers": [{"name": "slow", "class": support.SLOW}, {"name": "remote", "class": support.SLOW_UPSTREAM}],
    }
    route = next(route for route in ROUTES if route.operation == "refresh")
    with AuthManager.from_config(config) as manager:
        core = FastAPIAuth(manager).core
        request = WebRequest("POST", "/auth/refresh", {"content-type": ["application/json"]}, {}, {})
        request.preload(body)
        assert core.waits(route, request) == waits


@pytest.fixture
def loop_site(redis_url: str) -> Iterator[tuple[str, AuthManager]]:
    manager, _recorder, server = serve(redis_url, {"name": "dummy", "type": "dummy"})
    with server as base:
        yield base, manager
    manager.close()


def test_many_clients_at_once_each_get_their_own_answers(loop_site: tuple[str, AuthManager]) -> None:
    base, _manager = loop_site

    def one_client(index: int) -> None:
        name = f"user{index}"
        tokens = login(base, "dummy", name)
        for _ in range(5):
            answer = refresh(base, tokens["refresh_token"])
            assert answer.status_code == 200, answer.text
            assert answer.json()["login"] == name
            me = httpx.get(f"{base}/auth/me", headers={"Authorization": f"Bearer {answer.json()['token']}"})
            assert me.json()["login"] == name
            old, tokens = tokens, answer.json()
        assert refresh(base, old["refresh_token"]).status_code == 401  # reuse: the session ends
        assert refresh(base, tokens["refresh_token"]).status_code == 401

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(one_client, range(24)))


def test_redis_down_is_503_on_the_loop_and_the_service_recovers(
    loop_site: tuple[str, AuthManager], redis_server: RedisServer
) -> None:
    base, _manager = loop_site
    tokens = login(base, "dummy", "ann")
    redis_server.stop()
    try:
        down_login = httpx.post(f"{base}/auth/login", json={"plugin": "dummy", "login": "bob", "password": "read"})
        down_refresh = refresh(base, tokens["refresh_token"])
    finally:
        redis_server.start()
    for answer in (down_login, down_refresh):
        assert answer.status_code == 503
        assert answer.json()["detail"] == "session store unavailable"
    answer = refresh(base, tokens["refresh_token"])  # the failed rotation never happened
    assert answer.status_code == 200 and answer.json()["login"] == "ann"
    assert login(base, "dummy", "bob")["login"] == "bob"
