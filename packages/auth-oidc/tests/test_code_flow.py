"""Single sign-on against oidc-provider, driven through its login page with httpx."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from auth_oidc.testing import CLIENT_ID, CLIENT_SECRET, POST_LOGOUT_REDIRECT_URIS, OidcProviderServer
from authcore import InvalidCredentials, InvalidToken, NotSupported, PasswordCredentials


def test_authorization_request(oidc_server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(oidc_server.issuer, extra_authorize_params={"prompt": "login", "ui_locales": "fr"})
    request = provider.authorization_request(kit.redirect_uri)
    parts = urlsplit(request.url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == provider.discovery.get().authorization_endpoint
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == kit.redirect_uri and query["scope"] == "openid profile email groups"
    assert query["state"] == request.state and query["nonce"] == request.nonce
    assert query["code_challenge_method"] == "S256" and query["code_challenge"] != request.code_verifier
    assert (query["prompt"], query["ui_locales"]) == ("login", "fr")
    assert request.code_verifier not in repr(request)
    again = provider.authorization_request(kit.redirect_uri)
    assert (
        len({again.state, request.state, again.nonce, request.nonce, again.code_verifier, request.code_verifier}) == 6
    )


@pytest.mark.parametrize("access_token_format", ["jwt", "opaque"])
def test_code_flow_logs_in(
    oidc_server_factory: Any, make_provider: Any, kit: Any, access_token_format: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = oidc_server_factory(access_token_format=access_token_format)
    provider = make_provider(server.issuer)
    request = provider.authorization_request(kit.redirect_uri)
    answer = kit.browser_login(request)
    assert answer["state"] == request.state and answer["iss"] == server.issuer
    caplog.clear()  # the browser's own HTTP log shows the code, as a browser's history would
    requests = kit.count_requests(provider)
    identity = provider.authenticate(kit.code_credentials(request, answer))
    assert identity.login == "alice" and set(identity.groups) == {"staff", "mx"}
    assert (identity.given_name, identity.family_name, identity.email) == ("Alice", "Example", "alice@example.org")
    state = identity.session_state
    assert (
        state is not None
        and state["refresh_token"]
        and state["id_token"]
        and state["sub"] == identity.attributes["sub"]
    )
    assert state["access_expires_at"] > 0
    called = [url.rsplit("/", 1)[-1] for url in requests]
    # Opaque access tokens: the ID token has no profile claims, userinfo fills them (and the groups).
    assert called == (["token", "jwks"] if access_token_format == "jwt" else ["token", "jwks", "me"])
    for secret in (answer["code"], state["refresh_token"], state["id_token"], CLIENT_SECRET, request.code_verifier):
        assert secret not in caplog.text and secret not in repr(identity)


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": "another-nonce-value"},
        {"code_verifier": "x" * 64},
        {"code_verifier": None},
        {"redirect_uri": "http://127.0.0.1/other-callback"},
        {"code": "not-the-code"},
        {"issuer": "https://other-issuer.example.org"},
        {"issuer": None},  # the issuer says it always sends iss: a response without it is refused
    ],
    ids=["nonce", "verifier", "no-verifier", "redirect-uri", "code", "mix-up", "no-iss"],
)
def test_code_flow_refusals(
    oidc_server: OidcProviderServer, make_provider: Any, kit: Any, change: dict[str, Any]
) -> None:
    provider = make_provider(oidc_server.issuer)
    request = provider.authorization_request(kit.redirect_uri)
    answer = kit.browser_login(request)
    requests = kit.count_requests(provider)
    with pytest.raises(InvalidCredentials):
        provider.authenticate(kit.code_credentials(request, answer, **change))
    if "issuer" in change:  # the mix-up defence refuses before the code goes anywhere
        assert not any(url.endswith("/token") for url in requests)
    # The code was spent (or never sent): the real one still works only if it was never redeemed.
    if "issuer" in change or change.get("code_verifier", "") is None:
        assert provider.authenticate(kit.code_credentials(request, answer)).login == "alice"


def test_replayed_code_is_refused(oidc_server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(oidc_server.issuer)
    request = provider.authorization_request(kit.redirect_uri)
    credentials = kit.code_credentials(request, kit.browser_login(request))
    assert provider.authenticate(credentials).login == "alice"
    with pytest.raises(InvalidCredentials):
        provider.authenticate(credentials)


@pytest.mark.parametrize(
    ("settings", "alice", "bob"),
    [
        ({"allowed_groups": ["users"]}, False, True),
        ({"allowed_groups": ["mx", "nobody"]}, True, False),
        ({"denied_groups": ["mx"]}, False, True),
        ({"denied_groups": ["mx"], "groups_claim": "no_such_claim"}, False, False),  # groups unknown: refused
    ],
)
def test_group_rules(
    oidc_server_opaque: OidcProviderServer,
    make_provider: Any,
    kit: Any,
    settings: dict[str, Any],
    alice: bool,
    bob: bool,
) -> None:
    provider = make_provider(oidc_server_opaque.issuer, **settings)
    for login, allowed in (("alice", alice), ("bob", bob)):
        request = provider.authorization_request(kit.redirect_uri)
        credentials = kit.code_credentials(
            request, kit.browser_login(request, login=login, password=f"{login}-password")
        )
        if allowed:
            assert provider.authenticate(credentials).login == login
        else:
            with pytest.raises(InvalidCredentials) as caught:
                provider.authenticate(credentials)
            assert str(caught.value) == InvalidCredentials.default_message  # the same as a wrong password


def test_userinfo_never_and_login_claims(
    oidc_server_opaque: OidcProviderServer, make_provider: Any, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    never = make_provider(oidc_server_opaque.issuer, userinfo="never")
    request = never.authorization_request(kit.redirect_uri)
    with pytest.raises(InvalidCredentials):  # the ID token alone holds no preferred_username
        never.authenticate(kit.code_credentials(request, kit.browser_login(request)))
    assert "preferred_username" in caplog.text and "login_claim" in caplog.text
    by_email = make_provider(oidc_server_opaque.issuer, login_claim=["upn", "email"], userinfo="always")
    request = by_email.authorization_request(kit.redirect_uri)
    assert by_email.authenticate(kit.code_credentials(request, kit.browser_login(request))).login == "alice@example.org"


def test_refresh_and_logout_upstream(oidc_server: OidcProviderServer, make_provider: Any, kit: Any) -> None:
    provider = make_provider(oidc_server.issuer)
    request = provider.authorization_request(kit.redirect_uri)
    identity = provider.authenticate(kit.code_credentials(request, kit.browser_login(request)))
    refreshed = provider.refresh_upstream(identity)
    assert refreshed.login == "alice" and set(refreshed.groups) == {"staff", "mx"}
    assert refreshed.session_state["sub"] == identity.session_state["sub"]
    assert refreshed.session_state["refresh_token"]
    provider.logout_upstream(refreshed)  # RFC 7009 revocation of the refresh token
    with pytest.raises(InvalidToken):
        provider.refresh_upstream(refreshed)
    provider.logout_upstream(refreshed)  # already revoked: fine, nothing raised


def test_logout_url(oidc_server: OidcProviderServer, static_issuer: Any, make_provider: Any, kit: Any) -> None:
    provider = make_provider(oidc_server.issuer)
    request = provider.authorization_request(kit.redirect_uri)
    identity = provider.authenticate(kit.code_credentials(request, kit.browser_login(request)))
    url = provider.logout_url(identity, POST_LOGOUT_REDIRECT_URIS[0])
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert url.startswith(provider.discovery.get().end_session_endpoint + "?")
    assert query == {
        "client_id": CLIENT_ID,
        "id_token_hint": identity.session_state["id_token"],
        "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URIS[0],
    }
    configured = make_provider(oidc_server.issuer, LOGOUT_URI="https://sso.example.org/logout?x=1")
    assert configured.logout_url(identity).startswith("https://sso.example.org/logout?x=1&client_id=")
    static_issuer.openid({"keys": []})  # no end_session_endpoint
    assert make_provider(static_issuer.issuer).logout_url(identity) is None


def test_manager_login_refresh_logout(oidc_server: OidcProviderServer, kit: Any, authcore_manager_factory: Any) -> None:
    manager = authcore_manager_factory(kit.manager_config(oidc_server.issuer))
    provider = manager.provider("sso")
    request = provider.authorization_request(kit.redirect_uri)
    answer = kit.browser_login(request)
    result = manager.login(
        "sso",
        code=answer["code"],
        redirect_uri=request.redirect_uri,
        code_verifier=request.code_verifier,
        nonce=request.nonce,
        issuer=answer["iss"],
    )
    assert result.identity.login == "alice" and {"staff_area", "mx_area"} <= set(result.identity.permissions)
    refreshed = manager.refresh(result.refresh_token)
    assert manager.verify(refreshed.access_token).login == "alice"
    manager.logout(refreshed.access_token)
    with pytest.raises(InvalidToken):
        manager.verify(refreshed.access_token)


def test_password_logins_need_the_switch(
    oidc_server_factory: Any, make_provider: Any, authcore_manager_factory: Any, kit: Any
) -> None:
    server = oidc_server_factory(access_token_format="jwt", password_grant=True)
    provider = make_provider(server.issuer)
    with pytest.raises(NotSupported, match="password"):
        provider.authenticate(PasswordCredentials(login="alice", password="alice-password"))
    manager = authcore_manager_factory(kit.manager_config(server.issuer))
    with pytest.raises(InvalidCredentials, match="accepts: authorization_code, token") as caught:
        manager.login("sso", login="alice", password="alice-password")
    with pytest.raises(InvalidCredentials) as other:
        manager.login("sso", login="nobody", password="alice-password")
    assert str(caught.value) == str(other.value)  # nothing said about the user
    enabled = make_provider(server.issuer, password_grant=True)
    assert enabled.authenticate(PasswordCredentials(login="alice", password="alice-password")).login == "alice"
    with pytest.raises(InvalidCredentials):
        enabled.authenticate(PasswordCredentials(login="alice", password="wrong-password"))
