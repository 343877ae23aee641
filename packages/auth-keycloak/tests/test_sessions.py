"""Keycloak's refresh and logout through the core's sessions; the SSO code flow end to end."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import USERS, KeycloakTestServer, Realm
from authcore import AuthManager, InvalidCredentials, InvalidToken

REDIRECT = "http://localhost/callback"


def provider_of(manager: AuthManager) -> KeycloakProvider:
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    return provider


def session_of(realm: Realm, login: str) -> list[bool]:
    user = realm.user_by_name(login)
    assert user is not None
    return [s.active for s in realm.sessions.values() if s.user_id == user.id]


def test_refresh_reaches_keycloak(manager: AuthManager, keycloak_server: KeycloakTestServer, keycloak_realm: Realm):
    first = manager.login("sso", login="alice", password=USERS["alice"][0])
    before = keycloak_server.hits("/protocol/openid-connect/token")
    keycloak_realm.user_by_name("alice").realm_roles.add("Admin")  # type: ignore[union-attr]
    second = manager.refresh(first.refresh_token)
    assert keycloak_server.hits("/protocol/openid-connect/token") == before + 1
    assert second.login == "alice"
    assert manager.verify(second.access_token).login == "alice"


def test_logout_ends_the_keycloak_session(manager: AuthManager, keycloak_server, keycloak_realm: Realm):
    result = manager.login("sso", login="bob", password=USERS["bob"][0])
    assert session_of(keycloak_realm, "bob") == [True]
    manager.logout(result.access_token)
    assert session_of(keycloak_realm, "bob") == [False]
    with pytest.raises(InvalidToken):
        manager.verify(result.access_token)
    with pytest.raises(InvalidToken):
        manager.refresh(result.refresh_token)


def test_upstream_session_ended_elsewhere_ends_ours(manager: AuthManager, keycloak_realm: Realm):
    result = manager.login("sso", login="carol", password=USERS["carol"][0])
    keycloak_realm.end_sessions(keycloak_realm.user_by_name("carol").id)  # type: ignore[union-attr]
    with pytest.raises(InvalidToken):  # Keycloak: 400 "Session not active"
        manager.refresh(result.refresh_token)
    with pytest.raises(InvalidToken):
        manager.verify(result.access_token)


def test_refresh_state_is_server_side(manager: AuthManager):
    result = manager.login("sso", login="alice", password=USERS["alice"][0])
    assert result.identity.session_state and result.identity.session_state["refresh_token"]
    assert "refresh_token" not in repr(result.identity)
    assert "session_state" not in result.identity.model_dump()
    claims = manager.verify(result.access_token).claims
    assert result.identity.session_state["refresh_token"] not in str(claims)


class _Form(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "form":
            self.action = values.get("action") or ""
        if tag == "input" and values.get("name"):
            self.fields.append(values["name"] or "")


def browser_login(url: str, login: str, password: str) -> requests.Response:
    page = requests.get(url, timeout=5)
    assert page.status_code == 200
    form = _Form()
    form.feed(page.text)
    assert {"username", "password"} <= set(form.fields)
    return requests.post(
        urljoin(url, form.action), data={"username": login, "password": password}, allow_redirects=False, timeout=5
    )


def test_sso_code_flow_end_to_end(manager: AuthManager, keycloak_realm: Realm):
    provider = provider_of(manager)
    request = provider.authorization_request(REDIRECT)
    query = parse_qs(urlsplit(request.url).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"] == [request.state]
    assert query["nonce"] == [request.nonce] and "code_verifier" not in request.url
    reply = browser_login(request.url, "alice", USERS["alice"][0])
    assert reply.status_code == 302
    location = reply.headers["Location"]
    assert location.startswith(REDIRECT)
    callback = parse_qs(urlsplit(location).query)
    assert callback["state"] == [request.state]
    result = manager.login(
        "sso",
        code=callback["code"][0],
        redirect_uri=REDIRECT,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
    )
    assert result.login == "alice"
    assert "beamline:operate" in result.permissions
    assert manager.verify(result.access_token).login == "alice"
    with pytest.raises(InvalidCredentials):  # a code is good once
        manager.login("sso", code=callback["code"][0], redirect_uri=REDIRECT, code_verifier=request.code_verifier)
    logout = provider.logout_url(result.identity, "http://localhost/bye")
    assert logout is not None and "id_token_hint=" in logout and "post_logout_redirect_uri=" in logout
    manager.logout(result.access_token)


def _code(provider: KeycloakProvider) -> tuple[str, str, str]:
    request = provider.authorization_request(REDIRECT)
    reply = browser_login(request.url, "bob", USERS["bob"][0])
    return parse_qs(urlsplit(reply.headers["Location"]).query)["code"][0], request.code_verifier, request.nonce


def test_sso_code_flow_checks(manager: AuthManager):
    provider = provider_of(manager)
    code, _verifier, nonce = _code(provider)
    with pytest.raises(InvalidCredentials):  # the wrong PKCE verifier
        manager.login("sso", code=code, redirect_uri=REDIRECT, code_verifier="A" * 64, nonce=nonce)
    code, verifier, _nonce = _code(provider)
    with pytest.raises(InvalidCredentials):  # the nonce of another request
        manager.login("sso", code=code, redirect_uri=REDIRECT, code_verifier=verifier, nonce="another-nonce-value")
    code, verifier, nonce = _code(provider)
    with pytest.raises(InvalidCredentials):  # another redirect URI
        manager.login("sso", code=code, redirect_uri=REDIRECT + "2", code_verifier=verifier, nonce=nonce)
    code, _verifier, _nonce = _code(provider)
    with pytest.raises(InvalidCredentials):  # no verifier at all
        manager.login("sso", code=code, redirect_uri=REDIRECT)


def test_login_form_refuses_a_wrong_password(manager: AuthManager):
    request = provider_of(manager).authorization_request(REDIRECT)
    reply = browser_login(request.url, "alice", "wrong")
    assert reply.status_code == 200 and re.search("Invalid username or password", reply.text)


def test_auth_endpoint_refuses_unregistered_redirects(manager: AuthManager):
    request = provider_of(manager).authorization_request("http://evil.example/cb")
    assert requests.get(request.url, timeout=5).status_code == 400
