"""The local provider behind the web layer over real HTTP (FastAPI adapter): registration, the policy's
422, logins, self-update, and administration by a user whose role maps to ``users:admin``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI

from authcore import AuthManager, NewUser
from authcore.testing.servers import run_asgi
from authcore.web.fastapi import FastAPIAuth

PW = "Correct-Horse-Battery-9"


@pytest.fixture
def http(make_manager: Callable[..., AuthManager]) -> Iterator[httpx.Client]:
    """The FastAPI adapter on a real port; open registration (new users are ``staff``), one administrator."""
    manager = make_manager(registration="open", registration_roles=["staff"])
    manager.users("users").create_user(NewUser(login="root-admin", password=PW, roles=("admins",)))
    api = FastAPI()
    FastAPIAuth(manager).install(api)
    with run_asgi(api) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _login(http: httpx.Client, login: str, password: str = PW) -> dict[str, str]:
    response = http.post("/auth/login", json={"plugin": "users", "login": login, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_register_log_in_update_and_administer(http: httpx.Client) -> None:
    """A stranger registers and logs in; an administrator finds and disables them; their token dies."""
    weak = http.post("/auth/register/users", json={"login": "uma", "password": "short"})
    assert weak.status_code == 422 and "short" not in weak.text
    created = http.post("/auth/register/users", json={"login": "uma", "password": PW, "email": "u@example.org"})
    assert created.status_code == 201, created.text
    again = http.post("/auth/register/users", json={"login": "UMA", "password": PW})
    assert again.status_code == 409

    uma = _login(http, "Uma")
    me = http.get("/auth/me", headers=uma).json()
    assert me["login"] == "uma" and "own_proposals" in me["permissions"]  # staff -> own_proposals
    changed = http.patch("/auth/me", headers=uma, json={"display_name": "Uma U"})
    assert changed.status_code == 200, changed.text

    admin = _login(http, "root-admin")
    assert http.get("/auth/users/users", headers=uma).status_code == 403
    listed = http.get("/auth/users/users", headers=admin, params={"search": "uma"}).json()
    assert [u["login"] for u in listed["users"]] == ["uma"]
    assert http.post("/auth/users/users/uma/disable", headers=admin).status_code == 204
    assert http.get("/auth/me", headers=uma).status_code == 401
    refused = http.post("/auth/login", json={"plugin": "users", "login": "uma", "password": PW})
    assert refused.status_code == 401
