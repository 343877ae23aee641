"""Bearer tokens: what Keycloak issues for us verifies; forgeries and other clients' tokens do not."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest
from keycloak import KeycloakOpenID

from auth_keycloak import KeycloakProvider
from auth_keycloak.testing import (
    CLIENT_ID,
    CLIENT_SECRET,
    OTHER_CLIENT_ID,
    OTHER_CLIENT_SECRET,
    USERS,
    KeycloakTestServer,
    Realm,
)
from authcore import AuthManager, InvalidCredentials, InvalidToken, TokenExpired
from authcore.testing.race import outcomes, race

CERTS = "/protocol/openid-connect/certs"


def provider_of(manager: AuthManager) -> KeycloakProvider:
    provider = manager.provider("sso")
    assert isinstance(provider, KeycloakProvider)
    return provider


def access(realm: Realm, login: str = "alice", client: str = CLIENT_ID, **overrides: Any) -> str:
    token: str = realm.issue(login, client, overrides=overrides)["access_token"]
    return token


def test_token_from_keycloak_over_http_verifies(manager: AuthManager, keycloak_server: KeycloakTestServer):
    openid = KeycloakOpenID(
        server_url=keycloak_server.url, realm_name="test", client_id=CLIENT_ID, client_secret_key=CLIENT_SECRET
    )
    token = openid.token("alice", USERS["alice"][0])["access_token"]
    verified = manager.verify(token)
    assert verified.login == "alice"
    assert verified.provider == "sso"
    assert {"own_proposals", "beamline:operate", "staff_area"} <= verified.permissions
    assert verified.session_id and verified.token_id


def test_token_login_gives_the_identity(manager: AuthManager, keycloak_realm: Realm):
    result = manager.login("sso", token=access(keycloak_realm, "bob"))
    assert result.login == "bob"
    assert "all_proposals" in result.permissions
    assert manager.verify(result.access_token).login == "bob"


def test_token_of_another_client_is_refused(manager: AuthManager, keycloak_server: KeycloakTestServer):
    other = KeycloakOpenID(
        server_url=keycloak_server.url,
        realm_name="test",
        client_id=OTHER_CLIENT_ID,
        client_secret_key=OTHER_CLIENT_SECRET,
    )
    token = other.token("alice", USERS["alice"][0])["access_token"]
    with pytest.raises(InvalidToken):
        provider_of(manager).verify_bearer(token)
    with pytest.raises(InvalidToken):
        manager.verify(token)
    with pytest.raises(InvalidCredentials):
        manager.login("sso", token=token)


def test_token_of_another_realm_is_not_ours(manager: AuthManager, keycloak_server: KeycloakTestServer):
    other = keycloak_server.add_realm("elsewhere")
    other.add_client(CLIENT_ID, CLIENT_SECRET)
    other.add_user("alice", "x")
    token = access(other)
    assert provider_of(manager).verify_bearer(token) is None  # another provider may own it
    with pytest.raises(InvalidToken):
        manager.verify(token)


def test_iss_rewritten_to_ours_but_signed_by_another_realm(manager: AuthManager, keycloak_server, keycloak_realm):
    other = keycloak_server.add_realm("elsewhere")
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    with pytest.raises(InvalidToken):  # other realm's key, our kid
        manager.verify(other.sign(claims, kid=keycloak_realm.active_kid))
    with pytest.raises(InvalidToken):  # other realm's key and kid
        manager.verify(other.sign(claims))


def test_audience_only_account(make_manager: Callable[..., AuthManager], keycloak_realm: Realm):
    ours = access(keycloak_realm)  # azp ours, aud "account"
    theirs = access(keycloak_realm, client=OTHER_CLIENT_ID)  # azp other, aud "account"
    default = make_manager()
    assert default.verify(ours).login == "alice"
    with pytest.raises(InvalidToken):
        default.verify(theirs)
    by_audience = make_manager(client_check="aud")
    with pytest.raises(InvalidToken):
        by_audience.verify(ours)  # Keycloak's default audience is only "account"
    mapped = access(keycloak_realm, aud=["account", CLIENT_ID])
    assert by_audience.verify(mapped).login == "alice"
    both = make_manager(client_check="both")
    assert both.verify(mapped).login == "alice"
    with pytest.raises(InvalidToken):
        both.verify(access(keycloak_realm, client=OTHER_CLIENT_ID, aud=["account", CLIENT_ID]))
    trusted = make_manager(trusted_clients=[OTHER_CLIENT_ID])
    assert trusted.verify(theirs).login == "alice"


def test_hs256_signed_with_the_realm_public_key(manager: AuthManager, keycloak_realm: Realm):
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    pem = keycloak_realm.active_key.public_pem()
    for secret in (pem, pem.strip(), keycloak_realm.active_key.public_key_b64().encode()):
        forged = keycloak_realm.sign(claims, alg="HS256", key=secret)
        with pytest.raises(InvalidToken):
            manager.verify(forged)


def test_alg_none_and_stripped_signatures(manager: AuthManager, keycloak_realm: Realm):
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    unsigned = keycloak_realm.sign(claims, alg="none")
    with pytest.raises(InvalidToken):
        manager.verify(unsigned)
    with pytest.raises(InvalidToken):
        manager.verify(unsigned.rstrip(".") + ".")
    good = keycloak_realm.sign(claims)
    head, body, _sig = good.split(".")
    with pytest.raises(InvalidToken):
        manager.verify(f"{head}.{body}.")
    other = keycloak_realm.sign({**claims, "preferred_username": "bob"})
    with pytest.raises(InvalidToken):  # bob's payload with alice's signature
        manager.verify(f"{head}.{other.split('.')[1]}.{good.split('.')[2]}")


def test_expired_and_not_yet_valid(manager: AuthManager, keycloak_realm: Realm):
    now = int(time.time())
    with pytest.raises(TokenExpired):
        manager.verify(access(keycloak_realm, exp=now - 3600, iat=now - 7200))
    assert manager.verify(access(keycloak_realm, exp=now - 2)).login == "alice"  # within the leeway
    with pytest.raises(InvalidToken):
        manager.verify(access(keycloak_realm, nbf=now + 3600))
    with pytest.raises(InvalidToken):
        manager.verify(access(keycloak_realm, iat=now + 3600))
    for bad in ("soon", None, True, 1e300, float("nan")):
        with pytest.raises(InvalidToken):
            manager.verify(access(keycloak_realm, exp=bad) if bad == bad else access(keycloak_realm, exp="nan"))


def test_wrong_token_types(manager: AuthManager, keycloak_realm: Realm):
    tokens = keycloak_realm.issue("alice", CLIENT_ID)
    with pytest.raises(InvalidToken):
        manager.verify(tokens["id_token"])  # typ ID
    with pytest.raises(InvalidToken):
        manager.verify(tokens["refresh_token"])  # HS-signed, typ Refresh
    with pytest.raises(InvalidToken):
        manager.verify(access(keycloak_realm, typ="Refresh"))


def test_header_tricks(manager: AuthManager, keycloak_realm: Realm):
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    # at+jwt is a valid access-token type (RFC 9068): test_token_types covers every header typ.
    for header in ({"jku": "http://evil/"}, {"jwk": {"kty": "RSA"}}, {"crit": ["exp"]}):
        with pytest.raises(InvalidToken):
            manager.verify(keycloak_realm.sign(claims, header=header))
    with pytest.raises(InvalidToken):  # the right key with another algorithm than the JWKS names
        manager.verify(keycloak_realm.sign(claims, alg="RS512"))
    with pytest.raises(InvalidToken):
        manager.verify(keycloak_realm.sign(claims, alg="PS256"))


def test_unknown_kid_storm_fetches_once_then_cools_down(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer, keycloak_realm: Realm
):
    manager = make_manager(jwks_refetch_cooldown=30)
    assert manager.verify(access(keycloak_realm)).login == "alice"
    assert keycloak_server.hits(CERTS) == 1
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    forged = [keycloak_realm.sign(claims, kid=secrets.token_urlsafe(8)) for _ in range(20)]

    def storm(_: int) -> None:
        for token in forged * 3:
            with pytest.raises(InvalidToken):
                manager.verify(token)

    results = race(storm)
    assert outcomes(results) == {"ok": 8}, results
    assert keycloak_server.hits(CERTS) == 2  # one single-flight refetch for 480 forged tokens


def test_unknown_kid_refetches_again_after_the_cooldown(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer, keycloak_realm: Realm
):
    manager = make_manager(jwks_refetch_cooldown=0.3)
    manager.verify(access(keycloak_realm))
    claims = keycloak_realm.access_claims(
        keycloak_realm.user_by_name("alice"), keycloak_realm.clients[CLIENT_ID], None, "openid"
    )
    for _ in range(3):
        for _ in range(10):
            with pytest.raises(InvalidToken):
                manager.verify(keycloak_realm.sign(claims, kid=secrets.token_urlsafe(8)))
        time.sleep(0.35)
    assert keycloak_server.hits(CERTS) == 1 + 3


def test_key_rotation_fetches_the_new_kid_once(
    make_manager: Callable[..., AuthManager], keycloak_server: KeycloakTestServer, keycloak_realm: Realm
):
    manager = make_manager()  # default cooldown: the first unknown kid after a fetch still refetches
    old = access(keycloak_realm)
    assert manager.verify(old).login == "alice"
    assert keycloak_server.hits(CERTS) == 1
    keycloak_realm.rotate_keys()
    for login in ("alice", "bob", "carol") * 5:
        assert provider_of(manager).verify_bearer(access(keycloak_realm, login)) is not None
    assert keycloak_server.hits(CERTS) == 2
    assert provider_of(manager).verify_bearer(old) is not None  # the old key stays until Keycloak drops it


def test_threads_verifying_different_users(make_manager: Callable[..., AuthManager], keycloak_realm: Realm):
    manager = make_manager()
    provider = provider_of(manager)
    tokens = {login: [access(keycloak_realm, login) for _ in range(4)] for login in USERS}
    mixups: list[str] = []
    logins = list(USERS) * 3

    def worker(index: int) -> None:
        login = logins[index]
        for _ in range(40):
            for token in tokens[login]:
                bearer = provider.verify_bearer(token)  # uncached
                verified = manager.verify(token)  # cached after the first call
                if bearer is None or bearer.identity.login != login or verified.login != login:
                    mixups.append(login)

    results = race(worker)
    assert outcomes(results) == {"ok": 8}, results
    assert mixups == []


BAD_TOKENS = [
    "",
    ".",
    "..",
    "a.b.c",
    "a.b",
    "a.b.c.d",
    "x" * 20000,
    "eyJ.eyJ.sig",
    "tökèn.with.ünïcode",
    "e30.e30.e30",  # {} . {} . garbage
    "W10.W10.W10",  # [] . []
    "bnVsbA.bnVsbA.bnVsbA",  # null
    "e30.eyJpc3MiOiAxfQ.e30",  # iss: 1
]


@pytest.mark.parametrize("token", BAD_TOKENS, ids=range(len(BAD_TOKENS)))
def test_malformed_tokens(manager: AuthManager, token: str):
    assert provider_of(manager).verify_bearer(token) is None
    with pytest.raises(InvalidToken):
        manager.verify(token)


def test_malformed_tokens_claiming_our_issuer(manager: AuthManager, keycloak_realm: Realm):
    import base64
    import json

    def seg(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    payload = seg({"iss": keycloak_realm.issuer})
    for header in ("", "e30", seg([]), seg({"alg": "RS256"}), seg({"alg": "RS256", "kid": 5}), "%%%"):
        with pytest.raises(InvalidToken):
            provider_of(manager).verify_bearer(f"{header}.{payload}.c2ln")


def test_introspection_mode_sees_revocation(make_manager: Callable[..., AuthManager], keycloak_server, keycloak_realm):
    tokens = keycloak_realm.issue("alice", CLIENT_ID)
    offline, online = make_manager(), make_manager(introspect=True)
    assert provider_of(online).verify_bearer(tokens["access_token"]) is not None
    openid = KeycloakOpenID(
        server_url=keycloak_server.url, realm_name="test", client_id=CLIENT_ID, client_secret_key=CLIENT_SECRET
    )
    openid.logout(tokens["refresh_token"])
    assert provider_of(offline).verify_bearer(tokens["access_token"]) is not None  # offline: valid until exp
    with pytest.raises(InvalidToken):
        provider_of(online).verify_bearer(tokens["access_token"])
