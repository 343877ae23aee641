"""Two service instances on one Redis over real HTTP: throttle counters and SSO state are shared.

Two FastAPI apps (two AuthManagers, the same configuration, ``sessions.store`` one Redis URL),
each served by uvicorn on its own loopback port, as two replicas behind a load balancer:

* failures on instance A count on instance B: B refuses with 429 after A took them;
* an SSO login started on A (state, nonce and PKCE verifier in A's signed cookie) is called
  back on B and succeeds; replaying that callback on A is refused (the state was claimed);
* the same two apps on memory stores behave as before: counters and SSO state per instance;
* with Redis down, a throttled login answers 503 (neither a lock-out nor a pass), and works
  again once Redis is back.

The identity provider is the fake one of ``authcore_webtest_support`` (an authorization
endpoint over real HTTP, PKCE S256 checked at the token step).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import manager_config
from fastapi import FastAPI

from authcore import AuthManager
from authcore.sessions.redis import RedisSessionStore
from authcore.sessions.shared import MemorySharedState
from authcore.testing.redis_server import RedisServer
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth

MAX_PER_LOGIN = 3
SSO_COOKIE = "authcore_sso"


def site_config(store: str, idp: str) -> dict[str, Any]:
    """One configuration for both instances: throttling on with small limits, cookie sessions, SSO."""
    config = manager_config(
        sessions={"store": store},
        web={
            "cookie_session": True,
            "throttle": {"enabled": True, "max_per_login": MAX_PER_LOGIN, "max_per_address": 1000, "window": 600},
        },
    )
    config["providers"].append({"name": "corp", "class": support.FAKESSO, "config": {"issuer": idp}})
    return config


def app_of(manager: AuthManager) -> tuple[FastAPI, FastAPIAuth]:
    auth = FastAPIAuth(manager)
    app = FastAPI()
    auth.install(app)
    return app, auth


@pytest.fixture(scope="module")
def idp() -> Iterator[str]:
    with support.run_uvicorn(support.fake_idp_app()) as url:
        yield url


class Site:
    """Two instances of one service: base URLs, managers and FastAPI integrations."""

    def __init__(self, store: str, idp: str) -> None:
        self.idp = idp
        self.managers = [AuthManager.from_config(site_config(store, idp)) for _ in range(2)]
        apps = [app_of(manager) for manager in self.managers]
        self.auths = [auth for _app, auth in apps]
        self._stack = ExitStack()
        self.urls = [self._stack.enter_context(run_asgi(app)) for app, _auth in apps]
        self.a, self.b = self.urls

    def close(self) -> None:
        self._stack.close()
        for manager in self.managers:
            manager.close()


@pytest.fixture
def redis_site(redis_server: RedisServer, idp: str) -> Iterator[Site]:
    site = Site(f"{redis_server.url}?prefix=s{uuid.uuid4().hex[:10]}:", idp)
    yield site
    site.close()


@pytest.fixture
def memory_site(idp: str) -> Iterator[Site]:
    site = Site("memory://", idp)
    yield site
    site.close()


def login(base: str, password: str, login_name: str = "alice") -> httpx.Response:
    return httpx.post(f"{base}/auth/login", json={"plugin": "local", "login": login_name, "password": password})


def start_sso(base: str) -> tuple[str, str]:
    """Start an SSO login on *base*, let the identity provider approve; (callback path and query, state cookie)."""
    start = httpx.get(f"{base}/auth/sso/corp/login", params={"next": "/after"})
    assert start.status_code == 302
    cookie = start.cookies[SSO_COOKIE]
    back = httpx.get(start.headers["location"])  # the identity provider approves
    assert back.status_code == 302
    location = back.headers["location"]
    assert location.startswith(base + "/auth/sso/corp/callback?")
    return location.removeprefix(base), cookie


def callback(base: str, path_and_query: str, cookie: str) -> httpx.Response:
    """The browser's return to *base* (a load balancer may pick any instance), with the state cookie."""
    return httpx.get(base + path_and_query, headers={"Cookie": f"{SSO_COOKIE}={cookie}"})


# --------------------------------------------------------------------------- on one Redis


def test_the_instances_share_the_redis_store_state(redis_site: Site) -> None:
    for auth, manager in zip(redis_site.auths, redis_site.managers, strict=True):
        throttle = auth.core.settings.throttle
        assert throttle is not None and throttle.state is manager._sessions.store
        assert isinstance(throttle.state, RedisSessionStore)
        assert auth.core.sso.used_states.state is manager._sessions.store


def test_failures_on_one_instance_refuse_on_the_other(redis_site: Site) -> None:
    a, b = redis_site.a, redis_site.b
    for _ in range(MAX_PER_LOGIN):
        assert login(a, "wrong").status_code == 401
    refused = login(b, "wonderland")  # the right password, but the login is locked everywhere
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert login(a, "wonderland", "ALICE").status_code == 429  # its canonical form too
    ok = login(b, "evepw", "eve")  # another login from the same address is not locked
    assert ok.status_code == 200 and ok.json()["login"] == "eve"


def test_a_success_on_one_instance_clears_the_failures_seen_by_the_other(redis_site: Site) -> None:
    a, b = redis_site.a, redis_site.b
    for _ in range(MAX_PER_LOGIN - 1):
        assert login(a, "wrong").status_code == 401
    assert login(b, "wonderland").status_code == 200  # clears alice's counter for both
    for _ in range(MAX_PER_LOGIN - 1):
        assert login(a, "wrong").status_code == 401  # not locked: the count restarted at the success
    assert login(b, "wrong").status_code == 401  # the last failure allowed, taken on B
    assert login(a, "wonderland").status_code == 429


def test_sso_started_on_one_instance_completes_on_the_other_once(redis_site: Site) -> None:
    a, b = redis_site.a, redis_site.b
    path, cookie = start_sso(a)
    done = callback(b, path, cookie)
    assert done.status_code == 303 and done.headers["location"] == "/after"
    me = httpx.get(f"{b}/auth/me", cookies={"authcore_access": done.cookies["authcore_access"]})
    assert me.status_code == 200 and me.json()["login"] == "sso-user"
    # The same callback again, on the instance that started it: the state was claimed on B.
    replay = callback(a, path, cookie)
    assert replay.status_code == 401 and replay.json()["detail"] == "single sign-on: state already used"
    assert "authcore_access" not in replay.cookies


def test_a_forged_or_foreign_state_cookie_still_fails_on_redis(redis_site: Site) -> None:
    path, cookie = start_sso(redis_site.a)
    payload, _mac = cookie.split(".")
    assert callback(redis_site.b, path, payload + ".AAAA").status_code == 401
    other_path, _ = start_sso(redis_site.b)
    assert callback(redis_site.a, other_path, cookie).status_code == 401  # state mismatch


def test_redis_down_answers_503_and_recovers(redis_site: Site, redis_server: RedisServer) -> None:
    a = redis_site.a
    assert login(a, "wrong").status_code == 401
    redis_server.stop()
    down = login(a, "wonderland")
    assert down.status_code == 503 and "wonderland" not in down.text
    assert httpx.get(f"{a}/auth/sso/corp/login").status_code == 503  # the SSO key lives in Redis too
    redis_server.start()
    assert login(a, "wonderland").status_code == 200


# --------------------------------------------------------------------------- memory stores: as before


def test_memory_instances_keep_their_own_counters_and_sso_state(memory_site: Site) -> None:
    a, b = memory_site.a, memory_site.b
    for auth in memory_site.auths:
        throttle = auth.core.settings.throttle
        assert throttle is not None and isinstance(throttle.state, MemorySharedState)
    for _ in range(MAX_PER_LOGIN):
        assert login(a, "wrong").status_code == 401
    assert login(a, "wonderland").status_code == 429
    assert login(b, "wonderland").status_code == 200  # B never saw A's failures
    path, cookie = start_sso(a)
    assert callback(b, path, cookie).status_code == 401  # B cannot check A's per-process signature
    path, cookie = start_sso(a)
    assert callback(a, path, cookie).status_code == 303
    assert callback(a, path, cookie).status_code == 401  # redeemed once, per process
