"""AuthcoreAuth in-process: Jupyverse's ``App`` wrapper, a FastAPI app, real authcore managers.

The real ``jupyverse`` CLI, LDAP and the swap with fps-auth are in the repository's
``tests/test_jupyverse.py``; these check the API's rules quickly, route by route.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from jupyverse_api.app import App
from jupyverse_auth import Auth, User
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from authcore import AuthManager, Identity
from fps_auth_authcore.backend import AuthcoreAuth
from fps_auth_authcore.claims import DisplayNameClaim
from fps_auth_authcore.config import AuthcoreAuthConfig
from fps_auth_authcore.profiles import ProfileStore, initials

HOST = "http://127.0.0.1"


def build(tmp_path: Path, providers: list[dict[str, Any]]) -> tuple[TestClient, AuthcoreAuth]:
    manager = AuthManager.from_config({"providers": providers})
    manager.plugins.register(DisplayNameClaim())
    fastapi_app = FastAPI()
    config = AuthcoreAuthConfig(config_file="authcore.yml", directory=str(tmp_path / "profiles"))
    auth = AuthcoreAuth(App(fastapi_app), manager, config, ProfileStore(tmp_path / "profiles"))

    @fastapi_app.get("/api/contents")
    async def contents(user: User = Depends(auth.current_user({"contents": ["read"]}))) -> dict[str, str]:
        return {"username": user.username, "name": user.name, "settings": user.settings}

    @fastapi_app.put("/api/settings")
    async def settings(
        body: dict[str, Any],
        user: User = Depends(auth.current_user()),
        update: Any = Depends(auth.update_user),
    ) -> dict[str, str]:
        new = await update(body)
        return {"settings": new.settings}

    @fastapi_app.websocket("/api/kernels/k/channels")
    async def channels(
        websocket: WebSocket, result: Any = Depends(auth.websocket_auth({"kernels": ["read", "execute"]}))
    ) -> None:
        if result is None:
            return
        websocket, checked = result
        await websocket.accept()
        await websocket.send_json({"checked": checked})
        await websocket.close()

    return TestClient(fastapi_app, base_url=HOST), auth


@pytest.fixture
def dummy(tmp_path: Path) -> Iterator[TestClient]:
    client, auth = build(tmp_path, [{"name": "dummy"}])
    with client:
        yield client
    auth.manager.close()


def sign_in(client: TestClient, password: str, login: str = "alice") -> dict[str, str]:
    response = client.post("/auth/login", json={"plugin": "dummy", "login": login, "password": password})
    assert response.status_code == 200, response.text
    return {"X-XSRFToken": client.cookies["_xsrf"]}


def test_it_is_jupyverses_auth(tmp_path: Path) -> None:
    _client, auth = build(tmp_path, [{"name": "dummy"}])
    assert isinstance(auth, Auth)
    auth.manager.close()


def test_current_user_401_403_200(dummy: TestClient) -> None:
    assert dummy.get("/api/contents").status_code == 401
    sign_in(dummy, "kernels:read")
    assert dummy.get("/api/contents").status_code == 403
    sign_in(dummy, "contents:*")
    answer = dummy.get("/api/contents")
    assert answer.status_code == 200
    assert answer.json() == {"username": "alice", "name": "alice", "settings": "{}"}
    # JupyterLab sends Jupyter Server's `Authorization: token …`: the cookie session still counts.
    assert dummy.get("/api/contents", headers={"Authorization": "token abc"}).status_code == 200
    # A script's bearer token instead of the cookies.
    token = dummy.post("/auth/login", json={"plugin": "dummy", "login": "bot", "password": "contents:read"}).json()
    dummy.cookies.clear()
    bearer = {"Authorization": f"Bearer {token['token']}"}
    assert dummy.get("/api/contents", headers=bearer).json()["username"] == "bot"


def test_browser_navigation_goes_to_the_sign_in_page(dummy: TestClient) -> None:
    page = dummy.get("/api/contents", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 307 and page.headers["location"] == "/login"
    assert dummy.get("/login").status_code == 200


def channels(client: TestClient, origin: str = HOST) -> Any:
    """The kernel channel's first message when accepted, else the close code (the session's cookies sent)."""
    cookie = "; ".join(f"{name}={value}" for name, value in client.cookies.items())
    url = f"{HOST.replace('http', 'ws')}/api/kernels/k/channels"
    try:
        with client.websocket_connect(url, headers={"Origin": origin, "Cookie": cookie}) as ws:
            return ws.receive_json()
    except WebSocketDisconnect as exc:
        return exc.code


def test_websocket_needs_one_permission(dummy: TestClient) -> None:
    assert channels(dummy) == 1008  # no session
    sign_in(dummy, "contents:read")
    assert channels(dummy) == 1008  # neither kernels:read nor kernels:execute
    sign_in(dummy, "kernels:execute")
    assert channels(dummy) == {"checked": {"kernels": ["execute"]}}
    # The same session from another site's page: refused (browsers send cookies cross-site).
    assert channels(dummy, origin="http://evil.example") == 1008


def test_update_user_keeps_the_profile(dummy: TestClient, tmp_path: Path) -> None:
    headers = sign_in(dummy, "contents:read")
    saved = dummy.put("/api/settings", json={"settings": '{"a": 1}'}, headers=headers)
    assert saved.status_code == 200 and saved.json() == {"settings": '{"a": 1}'}
    assert dummy.get("/api/contents").json()["settings"] == '{"a": 1}'
    assert dummy.put("/api/settings", json={"settings": "{}"}).status_code == 403  # no X-XSRFToken
    refused = dummy.put("/api/settings", json={"permissions": {"contents": ["write"]}}, headers=headers)
    assert refused.status_code == 400 and "permissions" in refused.json()["detail"]
    assert dummy.put("/api/settings", json={"settings": 3}, headers=headers).status_code == 400
    files = list((tmp_path / "profiles").glob("*.json"))
    assert len(files) == 1 and "alice" not in files[0].name
    assert json.loads(files[0].read_text()) == {"settings": '{"a": 1}'}


def test_api_me(dummy: TestClient) -> None:
    headers = sign_in(dummy, "contents:read,yjs:*")
    me = dummy.get("/api/me", params={"permissions": "{'contents': ['read', 'write'], 'yjs': ['read']}"})
    assert me.json()["permissions"] == {"contents": ["read"], "yjs": ["read"]}
    assert me.json()["identity"]["username"] == "alice"
    assert dummy.get("/api/me", params={"permissions": "[1]"}).status_code == 400
    changed = dummy.patch("/api/me", json={"display_name": "Alice Liddell", "username": "root"}, headers=headers)
    assert changed.status_code == 200
    identity = changed.json()["identity"]
    assert (identity["username"], identity["display_name"], identity["initials"]) == ("alice", "Alice Liddell", "AL")


def test_noauth_is_everyone(tmp_path: Path) -> None:
    client, auth = build(tmp_path, [{"name": "noauth"}])
    with client:
        assert client.get("/api/contents").json()["username"] == "anonymous"
        assert client.get("/api/contents").json()["name"] == "Anonymous"  # the provider's display name
        assert channels(client, origin="http://anywhere.example") == {"checked": {"kernels": ["read", "execute"]}}
        assert client.get("/login").status_code == 404
    auth.manager.close()


def test_display_name_claim() -> None:
    claim = DisplayNameClaim()
    assert claim.authcore_token_claims(Identity(login="a", display_name="Ann Lee")) == {"name": "Ann Lee"}
    assert claim.authcore_token_claims(Identity(login="a", given_name="Ann", family_name="Lee")) == {"name": "Ann Lee"}
    assert claim.authcore_token_claims(Identity(login="a")) is None


def test_config_refuses_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        AuthcoreAuthConfig(config_file="a.yml", mode="user")  # type: ignore[call-arg]


def test_initials() -> None:
    assert (initials("Alice Liddell"), initials("john.doe"), initials("zoë"), initials("")) == ("AL", "JD", "Z", "")


def test_an_expired_access_cookie_is_renewed_on_a_get(dummy: TestClient) -> None:
    headers = sign_in(dummy, "contents:read")
    old = dict(dummy.cookies.items())
    # What a browser holds once the access cookie's Max-Age has run out: the refresh cookie only.
    dummy.cookies.delete("authcore_access")
    # An unsafe request is not renewed: its CSRF token was the old access cookie's.
    assert dummy.put("/api/settings", json={"settings": "{}"}, headers=headers).status_code == 403
    renewed = dummy.get("/api/contents")
    assert renewed.status_code == 200
    assert {"authcore_access", "authcore_refresh", "_xsrf"} <= set(renewed.cookies.keys())
    assert renewed.cookies["authcore_refresh"] != old["authcore_refresh"]  # rotated
    # Requests sent at the same time with the old cookies get the same renewal: no refresh-token
    # reuse, which would end the session.
    stale = f"authcore_refresh={old['authcore_refresh']}; _xsrf={old['_xsrf']}"
    again = dummy.get("/api/contents", headers={"Cookie": stale})
    assert again.status_code == 200
    assert again.cookies["authcore_refresh"] == renewed.cookies["authcore_refresh"]
    fresh = f"authcore_access={renewed.cookies['authcore_access']}"
    assert dummy.get("/api/contents", headers={"Cookie": fresh}).status_code == 200
    assert dummy.get("/api/contents", headers={"Cookie": "authcore_refresh=forged"}).status_code == 401
