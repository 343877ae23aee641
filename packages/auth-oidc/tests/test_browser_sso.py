"""The whole authorization-code flow in headless Chromium against panva's oidc-provider.

* FastAPI: authcore's own login page (``authcore serve``'s app) offers single sign-on; the
  browser signs in at the issuer's page, comes back signed in with its groups' permissions, and
  signing out ends the issuer's session too (RP-initiated logout).
* Flask: MXCuBE's ``server.yaml`` with its ``sso:`` section as the seed writes it (ISSUER with
  its trailing slash, empty LOGOUT_URI and TOKEN_INFO_URI, CODE_CHALLANGE_METHOD), served by the
  Flask adapter under MXCuBE's prefix: the host page's SSO link signs the user in, and the
  cookie session opens the app's protected views.

Never skipped: without /usr/bin/chromium or node the tests fail and say what to install.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, USERS, OidcProviderServer, standard_client
from authcore import AuthManager
from authcore.testing.servers import free_port, launch_chromium, run_asgi, run_wsgi

Factory = Callable[..., OidcProviderServer]

MXCUBE_PREFIX = "/mxcube/api/v0.1"
MXCUBE_SECRET = "mxcube-test-only-secret"
MXCUBE_SERVER_YAML = """\
server:
  SECRET_KEY: "ASECRETKEY"
  PERMANENT_SESSION_LIFETIME: 3600
mxcube:
  USER_DB_PATH: {tmp}/mxcube-users.db
sso:
  USE_SSO: true                                               # `true` to use SSO
  ISSUER: {issuer}/                                           # OpenIDConnect issuer URI
  LOGOUT_URI: ""                                              # OpenIDConnect logout URI
  TOKEN_INFO_URI: ""                                          # OpenIDConnect token info URI
  CLIENT_SECRET: {secret}                                     # OpenIDConnect client secret
  CLIENT_ID: mxcube                                           # OpenIDConnect client ID
  SCOPE: openid email profile                                 # OpenIDConnect default scopes
  CODE_CHALLANGE_METHOD: S256                                 # OpenIDConnect challange method
permissions:
  authenticated: [queue:read]
web:                      # MXCuBE's front end calls /mxcube/api/v0.1/login/...
  paths:
    login: /login/
    logout: /login/signout
    refresh_session: /login/refresh_session
    sso_login: /login/sso/{{provider}}
    sso_callback: /login/sso/{{provider}}/callback
"""


def _sign_in_at_the_issuer(page: Any, login: str, password: str) -> None:
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_code_flow_through_the_login_page_on_fastapi(oidc_server_factory: Factory, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from authcore.web.common import WebSettings
    from authcore.web.service import create_app

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = standard_client([f"{base}/auth/sso/corp/callback"], [f"{base}/?signed_out=1"])
    server = oidc_server_factory(access_token_format="jwt", clients=[client])
    manager = AuthManager.from_config(
        {
            "providers": [
                {
                    "name": "corp",
                    "type": "oidc",
                    "config": {
                        "issuer": server.issuer,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "scope": "openid profile email groups",
                    },
                }
            ],
            "permissions": {"groups": {"staff": ["beamline:operate"], "users": ["own_proposals"]}},
        }
    )
    try:
        with run_asgi(create_app(manager, WebSettings(cookie_auth=True)), port) as url, sync_playwright() as pw:
            browser = launch_chromium(pw)
            try:
                page = browser.new_page()
                page.goto(url + "/")
                page.get_by_role("link", name="Sign in with corp (single sign-on)").click()
                expect(page.locator("input[name=login]")).to_be_visible()
                assert page.url.startswith(server.issuer)  # the issuer's own page, not ours
                _sign_in_at_the_issuer(page, "alice", "wrong-password")
                expect(page.get_by_text("Invalid login or password")).to_be_visible()
                _sign_in_at_the_issuer(page, "alice", USERS["alice"][0])
                expect(page.locator("#login-name")).to_have_text("alice")
                expect(page.locator("#permissions")).to_contain_text("beamline:operate")
                page.screenshot(path=str(tmp_path / "oidc-signed-in.png"), full_page=True)
                cookies = {c["name"]: c for c in page.context.cookies(url)}
                assert cookies["authcore_access"]["httpOnly"] is True

                # Single sign-out: the issuer asks for confirmation, then sends the browser back.
                page.get_by_role("button", name="Sign out").click()
                page.get_by_role("button", name="Yes, sign me out").click()
                expect(page.get_by_role("status")).to_have_text("You have signed out.")
                # The issuer's session is gone: signing in again shows its login form.
                page.get_by_role("link", name="Sign in with corp (single sign-on)").click()
                expect(page.locator("input[name=login]")).to_be_visible()
            finally:
                browser.close()
    finally:
        manager.close()


@pytest.fixture
def mxcube_app(oidc_server_factory: Factory, tmp_path: Path) -> Any:
    """MXCuBE-like Flask app configured by a server.yaml whose sso: section is the seed's."""
    from flask import Flask

    from authcore.web.flask import FlaskAuth

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    client = standard_client(
        [f"{base}{MXCUBE_PREFIX}/login/sso/sso/callback"], [f"{base}/"], client_id="mxcube", client_secret=MXCUBE_SECRET
    )
    server = oidc_server_factory(access_token_format="opaque", clients=[client])
    config = tmp_path / "server.yaml"
    config.write_text(MXCUBE_SERVER_YAML.format(tmp=tmp_path, issuer=server.issuer, secret=MXCUBE_SECRET))
    app = Flask("mxcube-like")
    app.secret_key = "flask-test-only-key"
    auth = FlaskAuth(AuthManager.from_file(config), app, prefix=MXCUBE_PREFIX)

    @app.get("/")
    def home() -> str:
        return f'<h1>MXCuBE</h1><a href="{MXCUBE_PREFIX}/login/sso/sso?next={MXCUBE_PREFIX}/queue">Sign in</a>'

    @app.get(f"{MXCUBE_PREFIX}/queue")
    @auth.login_required(["queue:read"])
    def queue() -> dict[str, Any]:
        user = auth.current_user
        return {"user": user.login, "provider": user.provider, "permissions": sorted(user.permissions)}

    with run_wsgi(app, port) as url:
        yield {"url": url, "server": server, "auth": auth}
    auth.manager.close()


def test_mxcube_sso_section_logs_in_through_flask_in_chromium(mxcube_app: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = mxcube_app["url"]
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page()
            page.goto(url + "/")
            page.get_by_role("link", name="Sign in").click()
            _sign_in_at_the_issuer(page, "alice", USERS["alice"][0])
            expect(page).to_have_url(f"{url}{MXCUBE_PREFIX}/queue")
            body = page.evaluate("JSON.parse(document.body.innerText)")
            assert body == {"user": "alice", "provider": "sso", "permissions": ["queue:read"]}
        finally:
            browser.close()


def test_mxcube_sso_needs_a_session_and_refuses_a_replayed_state(mxcube_app: dict[str, Any]) -> None:
    """Over plain HTTP: protected views refuse anonymous callers; a callback's state works once."""
    import httpx

    from auth_oidc.testing.flow import drive_login

    url = mxcube_app["url"]
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        assert browser.get(f"{MXCUBE_PREFIX}/queue").status_code == 401
        start = browser.get(f"{MXCUBE_PREFIX}/login/sso/sso")
        assert start.status_code == 302
        callback = drive_login(
            httpx.Client(follow_redirects=False),
            start.headers["location"],
            login="alice",
            password=USERS["alice"][0],
            redirect_uri=f"{url}{MXCUBE_PREFIX}/login/sso/sso/callback",
        )
        done = browser.get(callback)
        assert done.status_code == 303, done.text
        assert browser.get(f"{MXCUBE_PREFIX}/queue").json()["user"] == "alice"
        assert browser.get(f"{MXCUBE_PREFIX}/login/refresh_session").status_code == 200
        replay = browser.get(callback)
        assert replay.status_code in (400, 401)
