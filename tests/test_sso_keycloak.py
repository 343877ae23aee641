"""Single sign-on end to end: the standalone service, the Keycloak provider and the Keycloak-compatible server.

A browser's journey over real HTTP: the login page offers SSO, the service redirects to the
identity provider with PKCE S256 and state, the identity provider's login form is filled in,
the callback opens a session, and logging out ends the identity provider's session too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import httpx
import pytest

from auth_keycloak.testing import CLIENT_ID, CLIENT_SECRET, USERS, KeycloakTestServer, standard_realm
from authcore import AuthManager
from authcore.testing import servers
from authcore.web.common import WebSettings
from authcore.web.service import create_app


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "form":
            self.action = dict(attrs).get("action") or ""


@pytest.fixture(scope="module")
def service() -> Iterator[dict[str, Any]]:
    with KeycloakTestServer() as keycloak:
        realm = standard_realm(keycloak)
        config = {
            "providers": [
                {
                    "name": "corp",
                    "type": "keycloak",
                    "config": {
                        "server_url": keycloak.url,
                        "realm": realm.name,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "timeout": 5,
                    },
                }
            ],
            "permissions": {"groups": {"user": ["own_proposals"]}},
        }
        manager = AuthManager.from_config(config)
        port = servers.free_port()
        # Keycloak matches redirect URIs exactly, port included: register the service's callback.
        realm.clients[CLIENT_ID].redirect_uris = [f"http://127.0.0.1:{port}/auth/sso/corp/callback"]
        app = create_app(manager, WebSettings(cookie_auth=True))
        try:
            with servers.run_asgi(app, port, lifespan="auto") as url:
                yield {"url": url, "keycloak": keycloak}
        finally:
            manager.close()


def _login_at_keycloak(location: str, login: str, password: str) -> httpx.Response:
    page = httpx.get(location, timeout=10)
    assert page.status_code == 200
    form = _Form()
    form.feed(page.text)
    return httpx.post(urljoin(location, form.action), data={"username": login, "password": password}, timeout=10)


def test_sso_round_trip(service):
    login = "alice"
    password = USERS[login][0]
    with httpx.Client(base_url=service["url"], timeout=10) as browser:
        assert "/auth/sso/corp/login" in browser.get("/").text
        start = browser.get("/auth/sso/corp/login", params={"next": "/"})
        assert start.status_code == 302
        location = start.headers["location"]
        query = parse_qs(urlparse(location).query)
        assert location.startswith(service["keycloak"].url)
        assert query["code_challenge_method"] == ["S256"] and query["state"] and query["nonce"]
        back = _login_at_keycloak(location, login, password)
        assert back.status_code == 302
        callback = browser.get(back.headers["location"])
        assert callback.status_code == 303
        me = browser.get("/auth/me")
        assert me.status_code == 200 and me.json()["login"] == login
        assert me.json()["provider"] == "corp"
        out = browser.post("/logout", data={"csrf_token": browser.cookies["authcore_csrf"]})
        assert out.status_code == 303
        assert out.headers["location"].startswith(service["keycloak"].url)  # logout at the identity provider
        assert browser.get("/auth/me").status_code == 401


def test_sso_callback_refuses_a_forged_state(service):
    with httpx.Client(base_url=service["url"], timeout=10) as browser:
        start = browser.get("/auth/sso/corp/login")
        back = _login_at_keycloak(start.headers["location"], "alice", USERS["alice"][0])
        forged = re.sub(r"state=[^&]+", "state=forged", back.headers["location"])
        assert browser.get(forged).status_code == 401
        assert browser.get("/auth/me").status_code == 401
