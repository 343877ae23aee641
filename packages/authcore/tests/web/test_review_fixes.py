"""Regression tests for defects found in a security review of the web layer.

Each test failed before its fix; the docstring says what was wrong.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Iterator
from typing import Any

import authcore_webtest_support as support
import httpx
import pytest
from conftest import SECRET, manager_config
from fastapi import FastAPI
from flask import Flask

from authcore import AuthError, AuthManager
from authcore.web.common import Throttle, Throttled, WebSettings
from authcore.web.fastapi import FastAPIAuth
from authcore.web.flask import FlaskAuth
from authcore.web.service import create_app

with warnings.catch_warnings():
    # starlette warns that its httpx-based TestClient is deprecated: in-process is all we need here.
    warnings.simplefilter("ignore")  # StarletteDeprecationWarning is a UserWarning
    from fastapi.testclient import TestClient

LOGIN = {"plugin": "local", "login": "admin", "password": "adminpw"}


@pytest.fixture
def manager() -> Iterator[AuthManager]:
    m = AuthManager.from_config(manager_config())
    yield m
    m.close()


def fastapi_client(manager: AuthManager, **settings: Any) -> TestClient:
    auth = FastAPIAuth(manager, **settings)
    app = FastAPI()
    auth.install(app)
    return TestClient(app, raise_server_exceptions=False)


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


# --------------------------------------------------------------------------- 4xx, never 500


@pytest.mark.parametrize("value", ["\u00b2", "\u2075", "1\u00b9"])
def test_user_list_paging_with_unicode_digits_is_400_not_500(manager, value):
    """`str.isdigit()` is true for superscripts that `int()` refuses: the ValueError was a 500."""
    client = fastapi_client(manager)
    token = client.post("/auth/login", json=LOGIN).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for name in ("limit", "offset"):
        response = client.get("/auth/users/local", params={name: value}, headers=headers)
        assert response.status_code == 400, response.text

    app = Flask("t")
    app.secret_key = "k" * 40
    FlaskAuth(manager, app)
    flask_client = app.test_client()
    token = flask_client.post("/auth/login", json=LOGIN).json["token"]
    response = flask_client.get(
        "/auth/users/local", query_string={"limit": value}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 400


# --------------------------------------------------------------------------- logout ends the session


def test_service_page_logout_ends_the_session_even_with_a_stale_access_cookie():
    """The sign-out button only revoked the session when the access cookie still verified: with an
    expired (15-minute) access token the cookies were cleared but the refresh token stayed valid."""
    manager = AuthManager.from_config(manager_config(tokens={"secret": SECRET, "access_ttl": "1s", "leeway": 0}))
    try:
        client = TestClient(create_app(manager), base_url="http://127.0.0.1")
        csrf = csrf_of(client.get("/").text)
        form = {"provider": "local", "login": "alice", "password": "wonderland", "csrf_token": csrf}
        assert client.post("/login", data=form, follow_redirects=False).status_code == 303
        refresh = client.cookies["authcore_refresh"]
        time.sleep(1.6)  # the access cookie now holds an expired token (its CSRF value is bound to it)
        out = client.post("/logout", data={"csrf_token": client.cookies["authcore_csrf"]}, follow_redirects=False)
        assert out.status_code == 303
        with pytest.raises(AuthError):  # the session is gone
            manager.refresh(refresh)
    finally:
        manager.close()


def test_fastapi_cookie_logout_ends_the_session_even_with_a_stale_access_cookie():
    """`POST /auth/logout` with the session cookies answered 401 once the access token had expired,
    leaving the refresh cookie (and the server-side session) alive."""
    manager = AuthManager.from_config(manager_config(tokens={"secret": SECRET, "access_ttl": "1s", "leeway": 0}))
    try:
        client = TestClient(create_app(manager), base_url="http://127.0.0.1")
        csrf = csrf_of(client.get("/").text)
        form = {"provider": "local", "login": "alice", "password": "wonderland", "csrf_token": csrf}
        client.post("/login", data=form, follow_redirects=False)
        refresh = client.cookies["authcore_refresh"]
        time.sleep(1.6)  # the access cookie now holds an expired token (its CSRF value is bound to it)
        # CSRF still required
        assert client.post("/auth/logout").status_code == 403
        out = client.post("/auth/logout", headers={"X-CSRF-Token": client.cookies["authcore_csrf"]})
        assert out.status_code == 204
        with pytest.raises(AuthError):
            manager.refresh(refresh)
    finally:
        manager.close()


def test_flask_logout_ends_the_session_after_the_access_token_expired():
    """Flask's cookie logout called `manager.logout` with the expired access token: 401, session alive."""
    config = manager_config(tokens={"secret": SECRET, "access_ttl": "1s", "leeway": 0})
    manager = AuthManager.from_config(config)
    try:
        app = Flask("t")
        app.secret_key = "k" * 40
        FlaskAuth(manager, app)
        client = app.test_client()
        data = client.post("/auth/login", json=LOGIN).json
        time.sleep(1.6)
        out = client.post("/auth/logout", headers={"X-CSRF-Token": data["csrf_token"]})
        assert out.status_code == 204, out.json
        again = client.post("/auth/refresh", json={"refresh_token": data["refresh_token"]})
        assert again.status_code == 401
    finally:
        manager.close()


# --------------------------------------------------------------------------- throttle key


def test_throttle_per_login_is_not_bypassed_by_case_or_whitespace():
    """The per-login key was the exact string: `Eve`, `EVE`, ` eve` were separate counters, so an
    attacker against a case-insensitive directory (LDAP) got max_per_login tries per spelling."""
    throttle = Throttle(max_per_login=3, max_per_address=1000)
    for spelling in ("eve", "Eve", "EVE "):
        throttle.failure(spelling, None)
    with pytest.raises(Throttled):
        throttle.check(" eVe", None)


# --------------------------------------------------------------------------- Authorization header


def test_two_authorization_headers_are_refused(manager):
    """Only the first of several `Authorization` headers was looked at; ambiguous credentials are a 401."""
    client = fastapi_client(manager)
    token = client.post("/auth/login", json=LOGIN).json()["token"]
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", "Bearer other")]
    assert client.get("/auth/me", headers=httpx.Headers(headers)).status_code == 401

    app = Flask("t")
    app.secret_key = "k" * 40
    FlaskAuth(manager, app)
    response = app.test_client().get("/auth/me", headers=headers)
    assert response.status_code == 401


# --------------------------------------------------------------------------- SSO state single use


def test_sso_state_cannot_be_used_twice():
    """The signed state cookie was valid until it expired: replaying it with a new code for the same
    state (a second trip through the identity provider) started a second session."""
    with support.run_uvicorn(support.fake_idp_app()) as idp:
        config = manager_config()
        config["providers"].append({"name": "corp", "class": support.FAKESSO, "config": {"issuer": idp}})
        manager = AuthManager.from_config(config)
        try:
            client = TestClient(create_app(manager, WebSettings(cookie_auth=True)), base_url="http://127.0.0.1")
            start = client.get("/auth/sso/corp/login", follow_redirects=False)
            state_cookie = client.cookies["authcore_sso"]
            first = httpx.get(start.headers["location"]).headers["location"]
            assert client.get(first, follow_redirects=False).status_code == 303
            second = httpx.get(start.headers["location"]).headers["location"]  # same state, fresh code
            client.cookies.clear()
            client.cookies.set("authcore_sso", state_cookie, path="/auth/sso/")
            assert client.get(second, follow_redirects=False).status_code == 401
        finally:
            manager.close()


# --------------------------------------------------------------------------- Secure behind a proxy


def test_cookies_are_secure_when_the_public_url_is_https_even_if_the_host_is_loopback():
    """`Secure` was decided from the Host header only: behind a reverse proxy that forwards to
    127.0.0.1 (nginx's default `Host: $proxy_host`) the session cookies of an HTTPS site lost `Secure`."""
    manager = AuthManager.from_config(manager_config())
    try:
        settings = WebSettings(cookie_auth=True, public_url="https://auth.example.org")
        client = TestClient(create_app(manager, settings), base_url="http://127.0.0.1:8000")
        page = client.get("/")
        assert all("Secure" in c for c in page.headers.get_list("set-cookie"))
        form = {"provider": "local", "login": "alice", "password": "wonderland", "csrf_token": csrf_of(page.text)}
        cookies = client.post("/login", data=form, follow_redirects=False).headers.get_list("set-cookie")
        assert cookies and all("Secure" in c for c in cookies)

        app = Flask("t")
        app.secret_key = "k" * 40
        FlaskAuth(manager, app, public_url="https://auth.example.org")
        response = app.test_client().post("/auth/login", json=LOGIN, base_url="http://127.0.0.1:5000")
        assert "Secure" in response.headers["Set-Cookie"]
    finally:
        manager.close()


# --------------------------------------------------------------------------- Flask login CSRF


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"])
def test_flask_cookie_login_refuses_cross_site_form_content_types(manager, content_type):
    """Flask's JSON login starts a cookie session and parsed any body as JSON: a cross-site
    `<form enctype="text/plain">` could log the victim's browser into the attacker's account
    (login CSRF). A real JSON content type cannot be sent cross-site without a CORS preflight."""
    app = Flask("t")
    app.secret_key = "k" * 40
    FlaskAuth(manager, app)
    body = b'{"plugin": "local", "login": "admin", "password": "adminpw", "x": "="}'
    response = app.test_client().post("/auth/login", data=body, content_type=content_type)
    assert response.status_code == 415
    assert "Set-Cookie" not in response.headers
