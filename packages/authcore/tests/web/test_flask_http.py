"""The Flask adapter over real HTTP (werkzeug's server in a thread): blueprint, decorator, sliding sessions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import SECRET, manager_config
from flask import Flask

from authcore import AuthManager
from authcore.web.flask import FlaskAuth

PREFIX = "/mxcube/api/v0.1"


def build(manager: AuthManager, **options: Any) -> Flask:
    app = Flask("mxcube-like")
    app.secret_key = "flask-test-secret-" + "y" * 30
    auth = FlaskAuth(manager, app, prefix=PREFIX, **options)

    @app.get(f"{PREFIX}/queue")
    @auth.login_required(["read"])
    def queue() -> dict[str, Any]:
        return {"login": auth.current_user.login}

    @app.post(f"{PREFIX}/queue")
    @auth.login_required
    def add_to_queue() -> dict[str, Any]:
        return {"added": True}

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    manager = AuthManager.from_config(manager_config())
    with support.run_werkzeug(build(manager)) as url:
        yield url
    manager.close()


def test_login_sets_an_httponly_sliding_session_cookie(server):
    with httpx.Client(base_url=server, timeout=10) as client:
        r = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "alice", "password": "wonderland"})
        assert r.status_code == 200
        data = r.json()
        assert data["login"] == "alice" and data["csrf_token"] and data["token"]
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie and "Expires=" in cookie
        assert client.get(f"{PREFIX}/queue").json() == {"login": "alice"}
        assert client.get(f"{PREFIX}/auth/me").json()["login"] == "alice"
        # unsafe method with the cookie: CSRF header required
        assert client.post(f"{PREFIX}/queue").status_code == 403
        assert client.post(f"{PREFIX}/queue", headers={"X-CSRF-Token": data["csrf_token"]}).status_code == 200
        refreshed = client.get(f"{PREFIX}/auth/refresh_session")
        assert refreshed.status_code == 200 and refreshed.json()["login"] == "alice"
        assert "set-cookie" in refreshed.headers  # the expiry is pushed back
        assert client.post(f"{PREFIX}/auth/logout").status_code == 403
        assert client.post(f"{PREFIX}/auth/logout", headers={"X-CSRF-Token": data["csrf_token"]}).status_code == 204
        assert client.get(f"{PREFIX}/queue").status_code == 401
        # the bearer token died with the session
        assert client.get(f"{PREFIX}/queue", headers={"Authorization": f"Bearer {data['token']}"}).status_code == 401


def test_bearer_tokens_and_malformed_headers(server):
    with httpx.Client(base_url=server, timeout=10) as client:
        data = client.post(f"{PREFIX}/auth/login", json={"plugin": "dummy", "login": "t", "password": "read"}).json()
        token = data["token"]
        with httpx.Client(base_url=server, timeout=10) as fresh:  # no session cookie
            assert fresh.get(f"{PREFIX}/queue", headers={"Authorization": f"bearer {token}"}).status_code == 200
            r = fresh.get(f"{PREFIX}/queue")
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        for header in (b"Bearer  " + token.encode(), b"Basic abc", b"Bearer", b"Bearer " + b"A" * 20000):
            status = support.raw_status(server, f"{PREFIX}/queue", [b"Authorization: " + header])
            assert 400 <= status < 500, header[:20]
        assert 400 <= support.raw_status(server, f"{PREFIX}/queue", [b"X-Big: " + b"a" * 200_000]) < 500
        weak = client.post(f"{PREFIX}/auth/login", json={"plugin": "dummy", "login": "t", "password": "x"}).json()
        assert client.get(f"{PREFIX}/queue", headers={"Authorization": f"Bearer {weak['token']}"}).status_code == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"nope", 400),
        (b"[]", 400),
        (b'{"login": "a"}', 400),
        (b'{"plugin": "zzz", "login": "a", "password": "b"}', 400),
    ],
)
def test_malformed_login_bodies(server, body, status):
    r = httpx.post(f"{server}{PREFIX}/auth/login", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status


def test_same_answer_for_unknown_login_and_wrong_password_and_user_management(server):
    unknown = httpx.post(f"{server}{PREFIX}/auth/login", json={"plugin": "local", "login": "zz", "password": "x"})
    wrong = httpx.post(f"{server}{PREFIX}/auth/login", json={"plugin": "local", "login": "alice", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401 and unknown.content == wrong.content
    admin = httpx.post(
        f"{server}{PREFIX}/auth/login", json={"plugin": "local", "login": "admin", "password": "adminpw"}
    )
    headers = {"Authorization": f"Bearer {admin.json()['token']}"}
    listed = httpx.get(f"{server}{PREFIX}/auth/users/local", headers=headers)
    assert listed.status_code == 200 and "alice" in [u["login"] for u in listed.json()["users"]]
    assert httpx.get(f"{server}{PREFIX}/auth/users/dummy", headers=headers).status_code == 501
    assert httpx.get(f"{server}{PREFIX}/auth/config").json()["providers"][0]["name"] == "dummy"
    assert httpx.get(f"{server}/.well-known/jwks.json").json() == {"keys": []}


def test_idle_timeout_and_absolute_lifetime():
    config = manager_config(
        tokens={"secret": SECRET, "access_ttl": "2s", "leeway": 1},
        sessions={"idle_timeout": "1h", "max_lifetime": "3s"},
    )
    manager = AuthManager.from_config(config)
    try:
        with support.run_werkzeug(build(manager, idle_timeout=2.5)) as url, httpx.Client(base_url=url) as client:
            body = {"plugin": "dummy", "login": "m", "password": "read"}
            assert client.post(f"{PREFIX}/auth/login", json=body).status_code == 200
            time.sleep(1.0)
            assert client.get(f"{PREFIX}/auth/refresh_session").status_code == 200  # idle clock pushed back
            time.sleep(1.0)
            # 2 s after login but 1 s after the last request: alive; the expired access token is refreshed
            assert client.get(f"{PREFIX}/queue").status_code == 200
            time.sleep(2.8)  # idle longer than 2.5 s
            assert client.get(f"{PREFIX}/queue").status_code == 401

            assert client.post(f"{PREFIX}/auth/login", json=body).status_code == 200
            for _ in range(5):  # active all the time, but the core's absolute lifetime (3 s) wins
                time.sleep(0.9)
                last = client.get(f"{PREFIX}/auth/refresh_session").status_code
            assert last == 401
    finally:
        manager.close()


def test_cookie_sessions_need_a_secret_key():
    manager = AuthManager.from_config(manager_config())
    try:
        with pytest.raises(RuntimeError, match="secret_key"):
            FlaskAuth(manager, Flask("x"))
    finally:
        manager.close()
