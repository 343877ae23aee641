"""The FastAPI adapter over real HTTP: uvicorn on a free loopback port, httpx and websockets clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
import websockets
from conftest import SECRET, manager_config
from fastapi import Depends, FastAPI, WebSocket

from authcore import AuthManager, ConfigError, VerifiedToken
from authcore.web.common import Throttle, WebSettings
from authcore.web.fastapi import FastAPIAuth

PREFIX = "/ispyb/api/v1"
SEED_BODY = {"plugin": "dummy", "login": "test", "password": "Admin", "token": "Admin"}


def build_app(manager: AuthManager, **settings: Any) -> tuple[FastAPI, FastAPIAuth]:
    auth = FastAPIAuth(manager, prefix=PREFIX, **settings)
    app = FastAPI()
    auth.install(app)

    @app.get(f"{PREFIX}/proposals")
    async def proposals(user: VerifiedToken = Depends(auth.current_user(["Admin"]))) -> dict[str, Any]:
        return {"login": user.login, "proposals": ["MX1234"]}

    @app.get("/read")
    async def read(user: VerifiedToken = Depends(auth.current_user(["read"]))) -> dict[str, str]:
        return {"login": user.login}

    @app.get("/contents")
    async def contents(user: VerifiedToken = Depends(auth.current_user({"contents": ["read"]}))) -> dict[str, str]:
        return {"login": user.login}

    @app.get("/open")
    async def open_endpoint() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/profile")
    async def profile(data: dict[str, Any], update: Any = Depends(auth.update_user)) -> dict[str, Any]:
        result: dict[str, Any] = await update(data)
        return result

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, auth_result: Any = Depends(auth.websocket_auth({"contents": ["read", "write"]}))
    ):
        if auth_result is None:
            return
        websocket, checked = auth_result
        await websocket.accept()
        await websocket.send_json({"checked": checked, "login": websocket.state.authcore_user.login})
        await websocket.close()

    return app, auth


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    config = manager_config()
    config["providers"].append({"name": "slow", "class": support.SLOW})
    manager = AuthManager.from_config(config)
    app, _auth = build_app(manager, throttle=Throttle(max_per_login=3, max_per_address=1000, window=60))
    with support.run_uvicorn(app) as url:
        yield url
    manager.close()


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=10) as c:
        yield c


def login(client: httpx.Client, plugin: str = "dummy", user: str = "test", password: str = "Admin") -> dict[str, Any]:
    response = client.post(f"{PREFIX}/auth/login", json={"plugin": plugin, "login": user, "password": password})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- py-ispyb client


def test_pyispyb_client_logs_in_with_the_seed_body_and_calls_a_protected_endpoint(client):
    response = client.post(f"{PREFIX}/auth/login", json=SEED_BODY, headers={"accept": "application/json"})
    assert response.status_code == 200
    data = response.json()
    assert data["login"] == "test"
    assert data["permissions"] == ["Admin"]
    assert data["token"].count(".") == 2
    assert data["refresh_token"] and data["expires_in"] > 0
    protected = client.get(f"{PREFIX}/proposals", headers=bearer(data["token"]))
    assert protected.status_code == 200
    assert protected.json() == {"login": "test", "proposals": ["MX1234"]}


def test_config_lists_every_enabled_provider_and_jwks_is_served(client):
    config = client.get(f"{PREFIX}/auth/config").json()
    assert [p["name"] for p in config["providers"]] == ["dummy", "local", "slow"]
    assert "secret" not in json.dumps(config).lower()
    assert client.get("/.well-known/jwks.json").json() == {"keys": []}


# --------------------------------------------------------------------------- current_user


def test_current_user_401_without_token_with_www_authenticate(client):
    response = client.get("/read")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_current_user_403_without_the_permission_and_jupyverse_dict_form(client):
    token = login(client, password="write")["token"]
    assert client.get("/read", headers=bearer(token)).status_code == 403
    token = login(client, password="read,contents:read")["token"]
    assert client.get("/read", headers=bearer(token)).status_code == 200
    assert client.get("/contents", headers=bearer(token)).status_code == 200
    assert client.get(f"{PREFIX}/auth/me", headers=bearer(token)).json()["username"] == "test"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer",
        "Bearer ",
        "Bearer  {token}",
        "Bearer {token} extra",
        "Basic dGVzdDpBZG1pbg==",
        "Token {token}",
        "{token}",
        "Bearer {token}\u00e9",
        "Bearer " + "A" * 20000,
        "Bearer not.a.jwt",
    ],
)
def test_malformed_authorization_headers_are_4xx_never_500(client, server, header):
    token = login(client, password="read")["token"]
    value = header.format(token=token).encode("utf-8")
    status = support.raw_status(server, "/read", [b"Authorization: " + value])
    assert 400 <= status < 500, (header, status)


def test_lowercase_bearer_scheme_is_accepted(client):
    token = login(client, password="read")["token"]
    assert client.get("/read", headers={"Authorization": f"bearer {token}"}).status_code == 200
    assert client.get("/read", headers={"Authorization": f"BEARER {token}"}).status_code == 200


def test_huge_headers_are_refused_with_4xx(server):
    assert 400 <= support.raw_status(server, "/read", [b"X-Padding: " + b"a" * 200_000]) < 500
    many = [b"X-H%d: v" % i for i in range(2000)]
    assert 400 <= support.raw_status(server, "/read", many) < 500


def test_tokens_in_query_strings_are_ignored_unless_configured(client):
    token = login(client, password="read")["token"]
    assert client.get("/read", params={"token": token}).status_code == 401
    assert client.get("/read", params={"access_token": token}).status_code == 401


# --------------------------------------------------------------------------- login bodies


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[1, 2]", 400),
        (b'"text"', 400),
        (b"{", 400),
        (b"[" * 100_000, 413),
        (json.dumps({"login": "test", "password": "Admin"}).encode(), 400),
        (json.dumps({"plugin": 5, "password": "Admin"}).encode(), 400),
        (json.dumps({"plugin": "nope", "login": "a", "password": "b"}).encode(), 400),
        (json.dumps({"plugin": "dummy", "login": "a", "password": "x" * 5000}).encode(), 422),
        (json.dumps({"plugin": "dummy", "login": "a\x00b", "password": "Admin"}).encode(), 401),
        (json.dumps({"plugin": "dummy", "login": "a", "password": "x" * 2000}).encode(), 401),
        (json.dumps({"plugin": "dummy"}).encode(), 401),
        (b"", 400),
    ],
)
def test_malformed_login_bodies_are_4xx_and_never_echo_input(client, body, status):
    response = client.post(f"{PREFIX}/auth/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert "Admin" not in response.text and "xxxx" not in response.text


def test_unknown_login_and_wrong_password_get_the_same_answer(client):
    unknown = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "nobody", "password": "x"})
    wrong = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "admin", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json() == {"detail": "invalid login or password", "code": "invalid_credentials"}


def test_failed_logins_are_throttled_per_login(client):
    for _ in range(3):
        r = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "eve", "password": "bad"})
        assert r.status_code == 401
    blocked = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "eve", "password": "evepw"})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    # another login from the same address is not affected
    assert login(client, "local", "admin", "adminpw")["login"] == "admin"


# --------------------------------------------------------------------------- refresh, logout


def test_refresh_rotates_and_logout_ends_the_session(client):
    first = login(client, password="read")
    refreshed = client.post(f"{PREFIX}/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 200
    second = refreshed.json()
    assert second["token"] != first["token"] and second["refresh_token"] != first["refresh_token"]
    assert client.get("/read", headers=bearer(second["token"])).status_code == 200
    assert client.post(f"{PREFIX}/auth/logout", headers=bearer(second["token"])).status_code == 204
    assert client.get("/read", headers=bearer(second["token"])).status_code == 401
    assert client.get("/read", headers=bearer(first["token"])).status_code == 401
    again = client.post(f"{PREFIX}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401
    assert client.post(f"{PREFIX}/auth/refresh", content=b"{}").status_code == 422
    assert client.post(f"{PREFIX}/auth/logout").status_code == 401


# --------------------------------------------------------------------------- user management


def test_user_management_endpoints_guarded_by_permission(client):
    admin = bearer(login(client, "local", "admin", "adminpw")["token"])
    alice = bearer(login(client, "local", "alice", "wonderland")["token"])
    base = f"{PREFIX}/auth/users/local"
    assert client.get(base).status_code == 401
    assert client.get(base, headers=alice).status_code == 403
    listed = client.get(base, headers=admin, params={"search": "ali"}).json()
    assert [u["login"] for u in listed["users"]] == ["alice"]

    created = client.post(base, headers=admin, json={"login": "bob", "password": "builder", "roles": ["staff"]})
    assert created.status_code == 201 and created.json()["client_id"] == "bob"
    assert "builder" not in created.text
    assert client.post(base, headers=admin, json={"login": "bob"}).status_code == 409
    assert client.post(base, headers=admin, json={"login": "carol", "bogus": 1}).status_code == 422
    assert login(client, "local", "bob", "builder")["permissions"] == ["contents:read", "read"]

    assert client.patch(f"{base}/bob", headers=admin, json={"email": "bob@example.org"}).json()["email"] == (
        "bob@example.org"
    )
    assert client.post(f"{base}/bob/disable", headers=admin).status_code == 204
    r = client.post(f"{PREFIX}/auth/login", json={"plugin": "local", "login": "bob", "password": "builder"})
    assert r.status_code == 401
    assert client.post(f"{base}/bob/enable", headers=admin).status_code == 204
    assert client.post(f"{base}/bob/roles", headers=admin, json={"roles": ["admin"]}).status_code == 204
    assert client.get(f"{base}/bob", headers=admin).json()["groups"] == ["admin", "staff"]
    assert client.request("DELETE", f"{base}/bob/roles", headers=admin, json={"roles": ["admin"]}).status_code == 204
    assert client.delete(f"{base}/bob", headers=admin).status_code == 204
    assert client.get(f"{base}/bob", headers=admin).status_code == 404
    assert client.get(f"{PREFIX}/auth/users/dummy", headers=admin).status_code == 501
    assert client.get(f"{PREFIX}/auth/users/nope", headers=admin).status_code == 400


def test_self_register_self_update_and_update_user_dependency(client):
    registered = client.post(f"{PREFIX}/auth/register/local", json={"login": "dave", "password": "pw-dave"})
    assert registered.status_code == 201
    assert client.post(f"{PREFIX}/auth/register/dummy", json={"login": "x", "password": "y"}).status_code == 501
    token = bearer(login(client, "local", "dave", "pw-dave")["token"])
    updated = client.patch(f"{PREFIX}/auth/me", headers=token, json={"display_name": "Dave"})
    assert updated.status_code == 200 and updated.json()["display_name"] == "Dave"
    via_dependency = client.post("/profile", headers=token, json={"given_name": "David"})
    assert via_dependency.status_code == 200 and via_dependency.json()["given_name"] == "David"
    assert client.post("/profile", json={"given_name": "x"}).status_code == 401


# --------------------------------------------------------------------------- websockets


def ws_url(server: str) -> str:
    return server.replace("http://", "ws://") + "/ws"


async def ws_exchange(url: str, headers: dict[str, str] | None = None) -> tuple[Any, int | None]:
    async with websockets.connect(url, additional_headers=headers or {}, open_timeout=5) as conn:
        try:
            message = await asyncio.wait_for(conn.recv(), 5)
        except websockets.ConnectionClosed as closed:
            return None, closed.rcvd.code if closed.rcvd else None
        await conn.wait_closed()
        return json.loads(message), conn.close_code


def test_websocket_refused_with_1008_without_token_or_permissions(client, server):
    assert asyncio.run(ws_exchange(ws_url(server))) == (None, 1008)
    token = login(client, password="other")["token"]
    assert asyncio.run(ws_exchange(ws_url(server), bearer(token))) == (None, 1008)
    assert asyncio.run(ws_exchange(ws_url(server) + f"?token={token}")) == (None, 1008)


def test_websocket_accepted_with_one_of_the_permissions(client, server):
    token = login(client, password="contents:read")["token"]
    message, code = asyncio.run(ws_exchange(ws_url(server), bearer(token)))
    assert message == {"checked": {"contents": ["read"]}, "login": "test"}
    assert code == 1000


def test_websocket_query_token_when_configured():
    manager = AuthManager.from_config(manager_config())
    app, _ = build_app(manager, query_token="token")
    try:
        with support.run_uvicorn(app) as url, httpx.Client(base_url=url) as c:
            token = login(c, password="contents:*")["token"]
            message, _code = asyncio.run(ws_exchange(ws_url(url) + f"?token={token}"))
            assert message["checked"] == {"contents": ["read", "write"]}
    finally:
        manager.close()


# --------------------------------------------------------------------------- async, CORS


def test_blocking_provider_does_not_block_the_event_loop(server):
    """While a login waits in a blocking provider, the event loop answers other requests.

    The provider holds the login until the test has had ``/open`` answered: were the login run
    on the loop, ``/open`` could not be answered before the release, and its client's timeout
    fails the test. Nothing is timed but that bound.
    """
    gate = support.Gate()
    support.SlowProvider.gate = gate
    try:
        with ThreadPoolExecutor(1) as pool:
            body = {"plugin": "slow", "login": "far", "password": "away"}
            slow = pool.submit(httpx.post, f"{server}{PREFIX}/auth/login", json=body, timeout=60)
            assert gate.entered.wait(30), "the login never reached the provider"
            assert httpx.get(f"{server}/open", timeout=10).status_code == 200
            assert not slow.done()  # answered while the login was still held in the provider
            gate.release.set()
            assert slow.result(timeout=60).status_code == 200
    finally:
        gate.release.set()
        support.SlowProvider.gate = None


def test_cors_is_off_unless_configured(client):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    response = client.options(f"{PREFIX}/auth/login", headers=preflight)
    assert "access-control-allow-origin" not in response.headers


def test_cors_when_configured_and_never_star_with_credentials():
    with pytest.raises(ConfigError):
        WebSettings(cors_origins=("*",), cors_credentials=True)
    manager = AuthManager.from_config({"tokens": {"secret": SECRET}, "providers": [{"name": "dummy"}]})
    try:
        app, _ = build_app(manager, cors_origins=("https://ui.example.org",), cors_credentials=True)
        with support.run_uvicorn(app) as url, httpx.Client(base_url=url) as c:
            ok = c.options(
                f"{PREFIX}/auth/login",
                headers={"Origin": "https://ui.example.org", "Access-Control-Request-Method": "POST"},
            )
            assert ok.headers["access-control-allow-origin"] == "https://ui.example.org"
            assert ok.headers["access-control-allow-credentials"] == "true"
            other = c.options(
                f"{PREFIX}/auth/login",
                headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            )
            assert "access-control-allow-origin" not in other.headers
    finally:
        manager.close()
