"""Per-user session control over real HTTP, on every store: a user lists and ends their sessions, an
administrator lists and ends a user's, and a user disabled through user management loses every
session at once. Memory, SQLite and a real Redis, behind the FastAPI adapter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from authcore import AuthManager
from authcore.testing.contract_provider import contract_config
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth

USERS = "/auth/users/contract"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[httpx.Client, AuthManager]]:
    if request.param == "memory":
        store = "memory://"
    elif request.param == "sqlite":
        store = f"sqlite:///{tmp_path / 'sessions.db'}"
    else:
        store = request.getfixturevalue("redis_server").url
    config: dict[str, Any] = {**contract_config(), "sessions": {"store": store}}
    with AuthManager.from_config(config) as manager:
        api = FastAPI()
        FastAPIAuth(manager).install(api)
        with run_asgi(api) as url, httpx.Client(base_url=url, timeout=10) as http:
            yield http, manager


def _login(http: httpx.Client, login: str, password: str) -> dict[str, str]:
    response = http.post("/auth/login", json={"plugin": "contract", "login": login, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_a_user_lists_and_ends_their_sessions(site: tuple[httpx.Client, AuthManager]) -> None:
    http, _manager = site
    laptop = _login(http, "alice", "wonderland")
    phone = _login(http, "alice", "wonderland")
    _login(http, "eve", "evepw")
    listed = http.get("/auth/sessions", headers=laptop).json()["sessions"]
    assert len(listed) == 2 and [s["current"] for s in listed] == [True, False]
    assert {s["login"] for s in listed} == {"alice"} and "identity" not in listed[0]
    phone_id = listed[1]["session_id"]

    assert http.delete(f"/auth/sessions/{phone_id}", headers=laptop).status_code == 204
    assert http.get("/auth/me", headers=phone).status_code == 401
    assert http.get("/auth/me", headers=laptop).status_code == 200

    eve_id = http.get("/auth/sessions", headers=_login(http, "eve", "evepw")).json()["sessions"][0]["session_id"]
    for foreign in (eve_id, phone_id, "no-such-session", "%00", "é" * 300):
        assert http.delete(f"/auth/sessions/{foreign}", headers=laptop).status_code == 404  # not hers
    assert http.get("/auth/me", headers=_login(http, "eve", "evepw")).status_code == 200

    assert http.delete("/auth/sessions", headers=laptop).status_code == 204  # sign out everywhere
    assert http.get("/auth/me", headers=laptop).status_code == 401


def test_an_administrator_ends_a_users_sessions(site: tuple[httpx.Client, AuthManager]) -> None:
    http, manager = site
    admin = _login(http, "admin", "adminpw")
    alice = [_login(http, "alice", "wonderland") for _ in range(3)]
    listed = http.get(f"{USERS}/alice/sessions", headers=admin)
    assert listed.status_code == 200 and len(listed.json()["sessions"]) == 3
    assert http.get(f"{USERS}/alice/sessions", headers=alice[0]).status_code == 403
    assert http.delete(f"{USERS}/alice/sessions", headers=admin).status_code == 204
    for headers in alice:
        assert http.get("/auth/me", headers=headers).status_code == 401
    assert manager.sessions_of("alice") == []
    assert http.get(f"{USERS}/nobody/sessions", headers=admin).json() == {"sessions": []}


def test_a_disabled_user_loses_every_session_at_once(site: tuple[httpx.Client, AuthManager]) -> None:
    http, manager = site
    admin = _login(http, "admin", "adminpw")
    eve = [_login(http, "eve", "evepw") for _ in range(2)]
    for headers in eve:
        assert http.get("/auth/me", headers=headers).status_code == 200  # cached from here on
    assert http.post(f"{USERS}/eve/disable", headers=admin).status_code == 204
    for headers in eve:
        assert http.get("/auth/me", headers=headers).status_code == 401
    assert manager.sessions_of("eve") == []
    assert http.get("/auth/me", headers=admin).status_code == 200  # nobody else's
