"""Token kinds: access tokens pass with every header ``typ`` Keycloak (or RFC 9068) uses; ID, refresh,
logout and DPoP-bound tokens never pass as access tokens, whatever their header says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from keycloak import KeycloakOpenID

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import CLIENT_ID, USERS, KeycloakTestServer, Realm
from auth_keycloak.testing.realm import LOGOUT_EVENT, b64url_decode
from auth_keycloak.verify import KeycloakVerifier
from authcore import AuthManager, InvalidToken

RFC9068_CLIENT = "rfc9068-app"
RFC9068_SECRET = "kc-rfc9068-client-secret-5c1e"


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(b64url_decode(token.split(".")[0]))
    return header


def alice_claims(realm: Realm, **overrides: Any) -> dict[str, Any]:
    user = realm.user_by_name("alice")
    assert user is not None
    claims = realm.access_claims(user, realm.clients[CLIENT_ID], None, "openid")
    claims.update(overrides)
    return claims


@pytest.mark.parametrize(
    "typ",
    ["JWT", "jwt", "at+jwt", "AT+JWT", "At+Jwt", "application/at+jwt", "Application/AT+JWT", "application/jwt", None],
)
def test_access_token_header_types_accepted(manager: AuthManager, keycloak_realm: Realm, typ: str | None):
    token = keycloak_realm.sign(alice_claims(keycloak_realm), header={"typ": typ})
    assert header_of(token).get("typ") == typ
    assert manager.verify(token).login == "alice"


@pytest.mark.parametrize(
    "typ", ["logout+jwt", "application/logout+jwt", "dpop+jwt", "JOSE", "secevent+jwt", "at+jwt ", "", 1, ["JWT"]]
)
def test_other_header_types_refused(manager: AuthManager, keycloak_realm: Realm, typ: Any):
    with pytest.raises(InvalidToken, match="unexpected token type"):
        manager.verify(keycloak_realm.sign(alice_claims(keycloak_realm), header={"typ": typ}))


def test_rfc9068_client_setting_over_http(
    make_manager: Any, keycloak_server: KeycloakTestServer, keycloak_realm: Realm
):
    """A client with Keycloak's at+jwt setting: its tokens verify, and logins through it work."""
    keycloak_realm.add_client(RFC9068_CLIENT, RFC9068_SECRET, rfc9068_header=True)
    openid = KeycloakOpenID(
        server_url=keycloak_server.url, realm_name="test", client_id=RFC9068_CLIENT, client_secret_key=RFC9068_SECRET
    )
    tokens = openid.token("alice", USERS["alice"][0])
    assert header_of(tokens["access_token"])["typ"] == "at+jwt"
    assert header_of(tokens["id_token"])["typ"] == "JWT"  # the setting changes access tokens only
    manager = make_manager(client_id=RFC9068_CLIENT, client_secret=RFC9068_SECRET)
    assert manager.verify(tokens["access_token"]).login == "alice"
    login = manager.login("sso", login="bob", password=USERS["bob"][0])  # the provider checks Keycloak's at+jwt token
    assert login.login == "bob"
    refreshed = manager.refresh(login.refresh_token)
    assert manager.verify(refreshed.access_token).login == "bob"


def test_keycloak_id_refresh_and_logout_tokens_refused(manager: AuthManager, keycloak_realm: Realm):
    tokens = keycloak_realm.issue("alice", CLIENT_ID)
    for token in (tokens["id_token"], tokens["refresh_token"]):
        with pytest.raises(InvalidToken):
            manager.verify(token)
    user = keycloak_realm.user_by_name("alice")
    assert user is not None
    client = keycloak_realm.clients[CLIENT_ID]
    session = keycloak_realm.start_session(user, CLIENT_ID)
    for header_typ in ("logout+jwt", "JWT", "at+jwt"):  # current Keycloak, older Keycloak, a forgery
        logout = keycloak_realm.logout_token(user, client, session, header_typ=header_typ)
        with pytest.raises(InvalidToken, match="unexpected token type"):
            manager.verify(logout)


@pytest.mark.parametrize("claim", ["ID", "Refresh", "Logout", "Offline", "DPoP", "bearer", None, ""])
@pytest.mark.parametrize("header_typ", ["JWT", "at+jwt"])
def test_claim_typ_other_than_bearer_refused(
    manager: AuthManager, keycloak_realm: Realm, claim: str | None, header_typ: str
):
    claims = alice_claims(keycloak_realm, typ=claim)
    if claim is None:
        del claims["typ"]
    with pytest.raises(InvalidToken, match="unexpected token type"):
        manager.verify(keycloak_realm.sign(claims, header={"typ": header_typ}))


def test_logout_event_refused_even_when_typ_says_bearer(manager: AuthManager, keycloak_realm: Realm):
    """A logout token is recognised by its ``events`` claim too, not only by Keycloak's ``typ`` claim."""
    for events in ({LOGOUT_EVENT: {}}, {}):
        token = keycloak_realm.sign(alice_claims(keycloak_realm, events=events))
        with pytest.raises(InvalidToken, match="unexpected token type"):
            manager.verify(token)


def test_id_token_checks_refuse_access_tokens_and_logout_tokens(manager: AuthManager, keycloak_realm: Realm):
    """The ID-token path (SSO nonce check) takes ID tokens only: not an at+jwt token, not a logout token."""
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    verifier = KeycloakVerifier(
        issuer=keycloak_realm.issuer,
        keys=provider.keys,
        clients=frozenset({CLIENT_ID}),
        audiences=frozenset({CLIENT_ID}),
        client_check="aud",
        leeway=10.0,
    )
    id_token = keycloak_realm.issue("alice", CLIENT_ID)["id_token"]
    id_claims = verifier.claims(id_token, typ="ID")
    assert id_claims is not None and id_claims["typ"] == "ID"
    as_at_jwt = keycloak_realm.sign(id_claims, header={"typ": "at+jwt"})
    with pytest.raises(InvalidToken, match="unexpected token type"):
        verifier.claims(as_at_jwt, typ="ID")
    with pytest.raises(InvalidToken, match="unexpected token type"):
        verifier.claims(keycloak_realm.sign({**id_claims, "events": {LOGOUT_EVENT: {}}}), typ="ID")
    with pytest.raises(InvalidToken, match="unexpected token type"):  # an access token is not an ID token
        verifier.claims(keycloak_realm.sign(alice_claims(keycloak_realm, aud=CLIENT_ID)), typ="ID")
