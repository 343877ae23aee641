"""Personal access tokens over real HTTP, on every store: created with a name, a subset of the
creator's permissions and an expiry; listed without their secret; usable as bearer tokens on every
adapter; revoked; refused once their user is disabled; stored only as a hash."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask

from authcore import AuthManager, Identity, InvalidToken
from authcore.testing.contract_provider import contract_config
from authcore.testing.servers import run_asgi, run_wsgi
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth


@pytest.fixture
def store(store_url: str) -> str:
    return store_url


@pytest.fixture
def manager(store: str) -> Iterator[AuthManager]:
    config: dict[str, Any] = {**contract_config(), "sessions": {"store": store}}
    with AuthManager.from_config(config) as made:
        yield made


@pytest.fixture
def http(manager: AuthManager) -> Iterator[httpx.Client]:
    api = FastAPI()
    FastAPIAuth(manager).install(api)
    with run_asgi(api) as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def _login(http: httpx.Client, login: str, password: str) -> dict[str, str]:
    answer = http.post("/auth/login", json={"plugin": "contract", "login": login, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_use_list_revoke(http: httpx.Client, manager: AuthManager) -> None:
    admin = _login(http, "admin", "adminpw")  # permissions: users:admin, read
    created = http.post("/auth/tokens", headers=admin, json={"name": "nightly backup", "permissions": ["read"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("pat_") and len(body["token"]) == 47
    assert (body["name"], body["permissions"]) == ("nightly backup", ["read"])
    assert created.headers["cache-control"] == "no-store"
    token = body["token"]

    assert manager.verify(token).claims["name"] == "nightly backup"
    me = http.get("/auth/me", headers=_bearer(token))
    assert me.status_code == 200 and me.json()["login"] == "admin"
    assert me.json()["permissions"] == ["read"]  # the subset, not the creator's users:admin
    assert http.get("/auth/users/contract", headers=_bearer(token)).status_code == 403

    listed = http.get("/auth/tokens", headers=admin).json()["tokens"]
    assert [t["name"] for t in listed] == ["nightly backup"]
    assert token not in http.get("/auth/tokens", headers=admin).text  # shown once, never listed

    assert http.delete(f"/auth/tokens/{body['token_id']}", headers=admin).status_code == 204
    assert http.get("/auth/me", headers=_bearer(token)).status_code == 401
    assert http.get("/auth/tokens", headers=admin).json()["tokens"] == []
    with pytest.raises(InvalidToken):
        manager.verify(token)


def test_tokens_are_bounded(http: httpx.Client) -> None:
    alice = _login(http, "alice", "wonderland")  # permissions: read
    assert (
        http.post("/auth/tokens", headers=alice, json={"name": "x", "permissions": ["users:admin"]}).status_code == 403
    )
    for body in (
        {},
        {"name": ""},
        {"name": "x" * 101},
        {"name": "x", "permissions": "read"},
        {"name": "x", "permissions": [""]},
        {"name": "x", "expires_in": 59},
        {"name": "x", "expires_in": "soon"},
        {"name": "x", "extra": 1},
    ):
        assert http.post("/auth/tokens", headers=alice, json=body).status_code == 422, body
    assert http.post("/auth/tokens", headers=alice, json={"name": "x", "expires_in": 10**9}).status_code == 400
    token = http.post("/auth/tokens", headers=alice, json={"name": "zoë's 🔑"}).json()["token"]
    # A leaked token must not breed: a token cannot create tokens.
    assert http.post("/auth/tokens", headers=_bearer(token), json={"name": "child"}).status_code == 403
    assert http.get("/auth/tokens", headers=alice).json()["tokens"][0]["name"] == "zoë's 🔑"


def test_someone_elses_or_a_malformed_token_id_is_not_found(http: httpx.Client) -> None:
    alice = _login(http, "alice", "wonderland")
    eve = _login(http, "eve", "evepw")
    eves = http.post("/auth/tokens", headers=eve, json={"name": "eve's"}).json()
    alice_session = http.get("/auth/sessions", headers=alice).json()["sessions"][0]["session_id"]
    for token_id in (eves["token_id"], alice_session, "nobody", "x" * 65, "%00", "é"):
        assert http.delete(f"/auth/tokens/{token_id}", headers=alice).status_code == 404, token_id
    assert http.get("/auth/me", headers=_bearer(eves["token"])).status_code == 200  # untouched


@pytest.mark.parametrize(
    "token",
    ["pat_", "pat_" + "A" * 43, "pat_" + "A" * 42 + "é", "pat_" + "A" * 10_000, "PAT_" + "A" * 43, "pat_\x00"],
)
def test_guessed_or_malformed_tokens_are_refused(manager: AuthManager, token: str) -> None:
    with pytest.raises(InvalidToken) as refused:
        manager.verify(token)
    assert token not in str(refused.value)


def test_a_disabled_user_loses_their_tokens(http: httpx.Client) -> None:
    admin = _login(http, "admin", "adminpw")
    eve = _login(http, "eve", "evepw")
    token = http.post("/auth/tokens", headers=eve, json={"name": "script"}).json()["token"]
    assert http.get("/auth/me", headers=_bearer(token)).status_code == 200
    assert http.post("/auth/users/contract/eve/disable", headers=admin).status_code == 204
    assert http.get("/auth/me", headers=_bearer(token)).status_code == 401


def test_logout_with_the_token_itself_revokes_it(manager: AuthManager, http: httpx.Client) -> None:
    alice = _login(http, "alice", "wonderland")
    token = http.post("/auth/tokens", headers=alice, json={"name": "one-off"}).json()["token"]
    assert http.post("/auth/logout", headers=_bearer(token)).status_code == 204
    with pytest.raises(InvalidToken):
        manager.verify(token)


def test_only_the_hash_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    config: dict[str, Any] = {**contract_config(), "sessions": {"store": f"sqlite:///{path}"}}
    with AuthManager.from_config(config) as manager:
        api = FastAPI()
        FastAPIAuth(manager).install(api)
        with run_asgi(api) as url, httpx.Client(base_url=url) as http:
            token = http.post("/auth/tokens", headers=_login(http, "alice", "wonderland"), json={"name": "t"}).json()[
                "token"
            ]
    dump = "\n".join(sqlite3.connect(path).iterdump())
    assert token not in dump and token[4:] not in dump
    assert hashlib.sha256(token.encode()).hexdigest().upper() in dump.upper()


def test_usable_on_flask_too(manager: AuthManager) -> None:
    alice = Identity(login="alice", provider="contract", permissions=("read",))
    token, _record = manager.issue_personal_token(alice, lifetime=600)
    app = Flask("personal-tokens")
    app.secret_key = "flask-test-only-key"
    auth = FlaskAuth(manager, app)

    @app.get("/protected")
    @auth.login_required(["read"])
    def protected() -> dict[str, str]:
        return {"login": auth.current_user.login}

    with run_wsgi(app) as url:
        assert httpx.get(url + "/protected", headers=_bearer(token)).json() == {"login": "alice"}
        other = token[:-1] + ("B" if token.endswith("A") else "A")
        assert httpx.get(url + "/protected", headers=_bearer(other)).status_code == 401
