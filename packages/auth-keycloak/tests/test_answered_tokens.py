"""The access token in Keycloak's answer to our own token request (a password login, a code
exchange, a refresh): every check but the signature's (``KeycloakVerifier.answered_claims``).

The signature would be checked with keys fetched from the same server over the same connection,
fetched again for a key the token names that we do not hold, so it adds nothing to what the
connection already vouches for (OpenID Connect Core 3.1.3.7, item 6, for ID tokens alike). What
stays: the issuer, Keycloak's token kind, the header's rules, the times, the client. A token a
client presents is checked in full (test_tokens.py); a login asks Keycloak for no keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import CLIENT_ID, OTHER_CLIENT_ID, USERS, KeycloakTestServer, Realm
from authcore import AuthManager, InvalidToken, TokenExpired

CERTS = "/protocol/openid-connect/certs"


def verifier_of(manager: AuthManager) -> Any:
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    return provider._verifier


def answered(realm: Realm, client: str = CLIENT_ID, **overrides: Any) -> str:
    """The access token of a token-endpoint answer, with *overrides* in its claims."""
    token: str = realm.issue("alice", client, overrides=overrides)["access_token"]
    return token


def test_a_password_login_asks_keycloak_for_no_keys(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer, keycloak_realm: Realm
) -> None:
    """Not at the first login, nor after Keycloak rotated its key: the keys are fetched when a
    client presents a Keycloak token (the full check), never to read our own request's answer."""
    manager = make_manager()
    keycloak_server.reset_hits()
    password = USERS["alice"][0]
    assert manager.login("sso", login="alice", password=password).identity.login == "alice"
    keycloak_realm.rotate_keys(drop_old=True)
    assert manager.login("sso", login="alice", password=password).identity.login == "alice"
    assert keycloak_server.hits(CERTS) == 0
    assert manager.verify(answered(keycloak_realm)).login == "alice"  # presented: checked in full
    assert keycloak_server.hits(CERTS) == 1


def test_the_answer_keeps_every_check_but_the_signature(manager: AuthManager, keycloak_realm: Realm) -> None:
    verifier = verifier_of(manager)
    now = int(time.time())
    assert verifier.answered_claims(answered(keycloak_realm))["preferred_username"] == "alice"
    with pytest.raises(TokenExpired):
        verifier.answered_claims(answered(keycloak_realm, exp=now - 3600, iat=now - 7200))
    for overrides in (
        {"nbf": now + 3600},  # not valid yet
        {"exp": "soon"},
        {"typ": "Refresh"},  # Keycloak's kind: a refresh token is no access token
        {"typ": "ID"},
        {"events": {"http://schemas.openid.net/event/backchannel-logout": {}}},  # a logout token
    ):
        with pytest.raises(InvalidToken):
            verifier.answered_claims(answered(keycloak_realm, **overrides))
    with pytest.raises(InvalidToken):  # issued to another client
        verifier.answered_claims(answered(keycloak_realm, OTHER_CLIENT_ID))
    assert verifier.answered_claims(answered(keycloak_realm, iss="https://elsewhere/realms/x")) is None


def test_the_answers_header_is_still_read(manager: AuthManager, keycloak_realm: Realm) -> None:
    """No "none" algorithm, no header parameters that would fetch keys, a header that parses."""
    verifier = verifier_of(manager)
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    for token in (
        keycloak_realm.sign(claims, alg="none"),
        keycloak_realm.sign(claims, header={"jku": "http://evil/"}),
        keycloak_realm.sign(claims, header={"crit": ["exp"]}),
        "e30." + keycloak_realm.sign(claims).split(".", 1)[1],  # a header without alg or kid
        "!!!." + keycloak_realm.sign(claims).split(".", 1)[1],
    ):
        with pytest.raises(InvalidToken):
            verifier.answered_claims(token)


@pytest.mark.parametrize(
    "token",
    ["", "x", "a.b", "a.b.c.d", "é.é.é", "." * 3, "a" * 20_000, "e30.e30.", "W10.W10.W10"],
)
def test_malformed_answers_are_not_ours(manager: AuthManager, token: str) -> None:
    assert verifier_of(manager).answered_claims(token) is None
